"""The door to S3 object stores (MinIO): list buckets and objects, stream objects down and
up, delete them, make a bucket. The S3 API over HTTP with AWS Signature Version 4, on the
standard library's http.client (no SDK: five calls are all backup and restore need).

The store is reached through a port-forward to the MinIO pod (adapters.kube.kubectl), so
only 127.0.0.1 is ever spoken to; bodies are streamed, never held in memory. Failures
are `StoreError` with the store's own code (NoSuchBucket, AccessDenied, ...).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

from paless_deploy.adapters.kube.kubectl import Writer

CHUNK = 1 << 20
TIMEOUT_S = 60
UNSIGNED = "UNSIGNED-PAYLOAD"
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class StoreError(Exception):
    """The store answered with an error, or did not answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class StoredObject:
    """One object as the listing gives it."""

    key: str
    size: int
    etag: str  # without quotes: the MD5 of a single-part upload, `md5-N` of a multipart one


class ObjectStore:
    """One S3 endpoint and its credentials (region us-east-1, path-style addressing)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str,
                 region: str = "us-east-1") -> None:
        parts = urlsplit(endpoint)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self._conn: http.client.HTTPConnection | None = None

    # -- the calls ---------------------------------------------------------------------

    def buckets(self) -> list[str]:
        """Every bucket's name."""
        root = self._xml("GET", "/")
        return [str(b.findtext(f"{_NS}Name")) for b in root.iter(f"{_NS}Bucket")]

    def objects(self, bucket: str) -> Iterator[StoredObject]:
        """Every object of a bucket, in key order (ListObjectsV2, a page at a time)."""
        token = ""
        while True:
            query = {"list-type": "2", "max-keys": "1000"}
            if token:
                query["continuation-token"] = token
            root = self._xml("GET", f"/{bucket}", query)
            for item in root.iter(f"{_NS}Contents"):
                yield StoredObject(str(item.findtext(f"{_NS}Key")),
                                   int(item.findtext(f"{_NS}Size") or 0),
                                   str(item.findtext(f"{_NS}ETag") or "").strip('"'))
            if (root.findtext(f"{_NS}IsTruncated") or "").lower() != "true":
                return
            token = str(root.findtext(f"{_NS}NextContinuationToken") or "")

    def download(self, bucket: str, key: str, sink: Writer,
                 on_bytes: Callable[[int], None] | None = None) -> int:
        """Stream one object into `sink`; its size."""
        resp = self._send("GET", self._path(bucket, key))
        if resp.status != 200:
            raise self._error(resp)
        done = 0
        while chunk := resp.read(CHUNK):
            sink.write(chunk)
            done += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
        return done

    def upload(self, bucket: str, key: str, source: BinaryIO, size: int,
               on_bytes: Callable[[int], None] | None = None) -> str:
        """Stream `size` bytes of `source` as one object (a single PUT); its ETag."""
        resp = self._send("PUT", self._path(bucket, key), body=_Counted(source, on_bytes),
                          length=size)
        if resp.status != 200:
            raise self._error(resp)
        resp.read()
        return str(resp.getheader("ETag") or "").strip('"')

    def delete(self, bucket: str, key: str) -> None:
        resp = self._send("DELETE", self._path(bucket, key))
        resp.read()
        if resp.status not in (200, 204, 404):
            raise self._error(resp)

    def ensure_bucket(self, bucket: str) -> bool:
        """Make the bucket when it is missing; True when it was made."""
        resp = self._send("HEAD", f"/{bucket}")
        resp.read()
        if resp.status == 200:
            return False
        resp = self._send("PUT", f"/{bucket}", length=0)
        if resp.status != 200:
            raise self._error(resp)
        resp.read()
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- HTTP and signatures -----------------------------------------------------------

    @staticmethod
    def _path(bucket: str, key: str) -> str:
        return f"/{bucket}/{quote(key, safe='/-_.~')}"

    def _xml(self, method: str, path: str, query: dict[str, str] | None = None
             ) -> ElementTree.Element:
        resp = self._send(method, path, query=query)
        if resp.status != 200:
            raise self._error(resp)
        try:
            return ElementTree.fromstring(resp.read())
        except ElementTree.ParseError as exc:
            raise StoreError(resp.status, "BadResponse", f"not XML: {exc}") from None

    def _send(self, method: str, path: str, *, query: dict[str, str] | None = None,
              body: object = None, length: int | None = None) -> http.client.HTTPResponse:
        query_text = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                              for k, v in sorted((query or {}).items()))
        headers = self._signed(method, path, query_text)
        if length is not None:
            headers["Content-Length"] = str(length)
        url = path + (f"?{query_text}" if query_text else "")
        for attempt in (1, 2):  # a kept-alive connection the forward dropped: once more
            conn = self._connection()
            try:
                conn.request(method, url, body=body, headers=headers,  # type: ignore[arg-type]
                             encode_chunked=False)
                return conn.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 2 or body is not None:
                    raise StoreError(0, "Unreachable", str(exc) or type(exc).__name__) from None
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
        return self._conn

    def _signed(self, method: str, path: str, query: str) -> dict[str, str]:
        """The headers of a request signed with Signature Version 4 (payload unsigned)."""
        now = dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = f"{self.host}:{self.port}"
        headers = {"host": host, "x-amz-content-sha256": UNSIGNED, "x-amz-date": stamp}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([method, path, query,
                               *(f"{k}:{headers[k]}" for k in sorted(headers)), "",
                               signed, UNSIGNED])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {"Host": host, "x-amz-content-sha256": UNSIGNED, "x-amz-date": stamp,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                 f"SignedHeaders={signed}, Signature={signature}"}

    @staticmethod
    def _error(resp: http.client.HTTPResponse) -> StoreError:
        data = resp.read()
        code, message = resp.reason or "Error", ""
        try:
            root = ElementTree.fromstring(data)
            code = root.findtext("Code") or code
            message = root.findtext("Message") or ""
        except ElementTree.ParseError:
            message = data[:200].decode("utf-8", errors="replace")
        return StoreError(resp.status, code, message)


class _Counted:
    """A file-like body that tells `on_bytes` of every chunk http.client reads from it."""

    def __init__(self, source: BinaryIO, on_bytes: Callable[[int], None] | None) -> None:
        self.source, self.on_bytes = source, on_bytes

    def read(self, size: int = CHUNK) -> bytes:
        chunk = self.source.read(size)
        if chunk and self.on_bytes is not None:
            self.on_bytes(len(chunk))
        return chunk
