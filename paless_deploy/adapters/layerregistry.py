"""The door for a registry of our own, served on 127.0.0.1 for one delivery: the Docker
engine pushes an image to it and a k3s node's containerd pulls it from it, so an image
reaches containerd as its changed layers only.

Both ends skip what the other already holds: the engine asks (HEAD) for each layer and
uploads only those it is told are missing, and this registry answers "present" for every
blob the node's containerd already has (`present`, read from containerd before the push);
containerd then fetches only the blobs it lacks. Blobs received are kept in a directory of
the delivery only; the size of every blob ever received is remembered (`sizes.json` in the
cache directory), because a "present" answer must carry the blob's exact size, which goes
into the manifest the engine writes. The registry speaks the part of the distribution API
(v2) that `docker push` and containerd's pull use: blob HEAD/GET, monolithic and chunked
uploads, cross-repository mounts, manifests by tag or digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

CACHE_NAME = "k3s-layers"  # ~/.cache/paless-deploy/<this>
SIZES_FILE = "sizes.json"
PORT_FILE = "port"
CHUNK = 1 << 20
_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_UPLOADS = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$")
_UPLOAD = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[0-9a-f-]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_DEFAULT_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def cache_dir() -> Path:
    """Where the sizes of the blobs received and the registry's port are kept."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "paless-deploy" / CACHE_NAME


ABANDONED_S = 6 * 3600  # a delivery's blobs left this long: its process was killed


def _forget_abandoned(cache: Path) -> None:
    """Delete the blob directories of deliveries whose process died before cleaning up."""
    now = time.time()
    for old in cache.glob("blobs-*"):
        try:
            if now - old.stat().st_mtime > ABANDONED_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


class _Store:
    """The blobs and manifests of one delivery, and the sizes of every blob ever seen."""

    def __init__(self, cache: Path, present: Callable[[str], bool]) -> None:
        self.cache = cache
        self.cache.mkdir(parents=True, exist_ok=True)
        _forget_abandoned(cache)
        self.blobs = Path(tempfile.mkdtemp(prefix="blobs-", dir=cache))
        self.present = present
        self.lock = threading.Lock()
        self.sizes: dict[str, int] = self._read_sizes()
        self.manifests: dict[str, tuple[str, bytes]] = {}  # digest -> (media type, body)
        self.tags: dict[tuple[str, str], str] = {}  # (name, tag) -> manifest digest
        self.uploads: dict[str, Path] = {}

    def _read_sizes(self) -> dict[str, int]:
        try:
            data = json.loads((self.cache / SIZES_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def save_sizes(self) -> None:
        path = self.cache / SIZES_FILE
        partial = path.with_name(f"{SIZES_FILE}.{os.getpid()}")
        with self.lock:
            partial.write_text(json.dumps(self.sizes, sort_keys=True))
        partial.replace(path)

    def blob(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")

    def size(self, digest: str) -> int | None:
        """The blob's size when it is here or the node has it (and its size is known)."""
        if self.blob(digest).is_file():
            return self.blob(digest).stat().st_size
        with self.lock:
            known = self.sizes.get(digest)
        return known if known is not None and self.present(digest) else None

    def start_upload(self) -> str:
        upload = uuid.uuid4().hex
        path = self.blobs / f"upload-{upload}"
        path.touch()
        with self.lock:
            self.uploads[upload] = path
        return upload

    def finish_upload(self, upload: str, digest: str) -> bool:
        """Move a finished upload in place when its content has `digest`."""
        with self.lock:
            path = self.uploads.pop(upload, None)
        if path is None:
            return False
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
        if f"sha256:{h.hexdigest()}" != digest:
            path.unlink(missing_ok=True)
            return False
        path.replace(self.blob(digest))
        with self.lock:
            self.sizes[digest] = self.blob(digest).stat().st_size
        return True

    def close(self) -> None:
        shutil.rmtree(self.blobs, ignore_errors=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the delivery says what happened."""

    # -- answers ---------------------------------------------------------------------------

    def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
               head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._reply(status, {"Content-Type": "application/json"}, body)

    def _read_body(self) -> bytes:
        return b"".join(self._body_chunks())

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body, plain (Content-Length) or chunked, in pieces."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from self._exactly(size)
                self.rfile.readline()
        yield from self._exactly(int(self.headers.get("Content-Length") or 0))

    def _exactly(self, size: int) -> Iterator[bytes]:
        """`size` bytes of the request, in pieces (fewer if the client hangs up)."""
        while size:
            piece = self.rfile.read(min(size, CHUNK))
            if not piece:
                return
            size -= len(piece)
            yield piece

    # -- verbs -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _get(self, head: bool) -> None:
        path = urlsplit(self.path).path
        store = self.server.store
        if path in ("/v2", "/v2/"):
            self._reply(200, {"Content-Type": "application/json"}, b"{}", head)
            return
        if match := _BLOB.match(path):
            self._send_blob(match.group("digest"), head)
            return
        if match := _MANIFEST.match(path):
            ref = match.group("ref")
            digest = ref if ref.startswith("sha256:") else store.tags.get(
                (match.group("name"), ref), "")
            if digest in store.manifests:
                media, body = store.manifests[digest]
                self._reply(200, {"Content-Type": media, "Docker-Content-Digest": digest}, body,
                            head)
                return
            self._error(404, "MANIFEST_UNKNOWN", f"no manifest {ref}")
            return
        self._error(404, "NAME_UNKNOWN", path)

    def _send_blob(self, digest: str, head: bool) -> None:
        store = self.server.store
        size = store.size(digest)
        if size is None:
            self._error(404, "BLOB_UNKNOWN", digest)
            return
        headers = {"Content-Length": str(size), "Docker-Content-Digest": digest,
                   "Content-Type": "application/octet-stream"}
        if head:
            self._reply(200, headers, head=True)
            return
        path = store.blob(digest)
        if not path.is_file():  # the node has it: it never asks, and nobody else may
            self._error(404, "BLOB_UNKNOWN", digest)
            return
        self._reply(200, headers)
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile, CHUNK)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        match = _UPLOADS.match(parts.path)
        if not match:
            self._error(404, "UNSUPPORTED", parts.path)
            return
        name, query = match.group("name"), parse_qs(parts.query)
        store = self.server.store
        mount = (query.get("mount") or [""])[0]
        if mount and store.size(mount) is not None:
            self._read_body()
            self._reply(201, {"Location": f"/v2/{name}/blobs/{mount}",
                              "Docker-Content-Digest": mount})
            return
        upload = store.start_upload()
        digest = (query.get("digest") or [""])[0]
        if digest:  # monolithic: the body is the blob
            self._append(upload)
            self._finish(name, upload, digest)
            return
        self._read_body()
        self._reply(202, {"Location": f"/v2/{name}/blobs/uploads/{upload}", "Range": "0-0",
                          "Docker-Upload-UUID": upload})

    def _append(self, upload: str) -> int:
        path = self.server.store.uploads.get(upload)
        if path is None:
            return -1
        with open(path, "ab") as f:
            f.writelines(self._body_chunks())
            return f.tell()

    def _finish(self, name: str, upload: str, digest: str) -> None:
        if self.server.store.finish_upload(upload, digest):
            self._reply(201, {"Location": f"/v2/{name}/blobs/{digest}",
                              "Docker-Content-Digest": digest})
        else:
            self._error(400, "DIGEST_INVALID", f"the upload does not have the digest {digest}")

    def do_PATCH(self) -> None:
        match = _UPLOAD.match(urlsplit(self.path).path)
        if not match:
            self._error(404, "BLOB_UPLOAD_UNKNOWN", self.path)
            return
        upload = match.group("id")
        end = self._append(upload)
        if end < 0:
            self._error(404, "BLOB_UPLOAD_UNKNOWN", upload)
            return
        self._reply(202, {"Location": f"/v2/{match.group('name')}/blobs/uploads/{upload}",
                          "Range": f"0-{max(end - 1, 0)}", "Docker-Upload-UUID": upload})

    def do_PUT(self) -> None:
        parts = urlsplit(self.path)
        if match := _UPLOAD.match(parts.path):
            upload = match.group("id")
            if self._append(upload) < 0:
                self._error(404, "BLOB_UPLOAD_UNKNOWN", upload)
                return
            self._finish(match.group("name"), upload,
                         (parse_qs(parts.query).get("digest") or [""])[0])
            return
        if match := _MANIFEST.match(parts.path):
            body = self._read_body()
            digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
            media = self.headers.get("Content-Type") or _DEFAULT_MANIFEST_TYPE
            store = self.server.store
            store.manifests[digest] = (media, body)
            if not match.group("ref").startswith("sha256:"):
                store.tags[(match.group("name"), match.group("ref"))] = digest
            self._reply(201, {"Location": f"/v2/{match.group('name')}/manifests/{digest}",
                              "Docker-Content-Digest": digest})
            return
        self._error(404, "UNSUPPORTED", parts.path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store: _Store


class LayerRegistry:
    """A registry on 127.0.0.1 for the time of a `with` block (see the module's docstring).

    `present(digest)` says whether the node's containerd holds a blob already."""

    def __init__(self, present: Callable[[str], bool], cache: Path | None = None) -> None:
        self.cache = cache or cache_dir()
        self.store = _Store(self.cache, present)
        self.server: _Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`: the registry part of the references pushed to it."""
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.server = self._bind()
        self.server.store = self.store
        self.thread = threading.Thread(target=self.server.serve_forever, name="layer-registry",
                                       daemon=True)
        self.thread.start()
        return self

    def _bind(self) -> _Server:
        """The port of the last delivery when it is free (the Docker engine remembers which
        layers it pushed where), else any free one, remembered for the next."""
        port_file = self.cache / PORT_FILE
        try:
            port = int(port_file.read_text().strip())
        except (OSError, ValueError):
            port = 0
        try:
            server = _Server(("127.0.0.1", port), _Handler)
        except OSError:
            server = _Server(("127.0.0.1", 0), _Handler)
        port_file.write_text(str(server.server_address[1]))
        return server

    def received(self) -> list[str]:
        """The digests of the blobs pushed to it in this delivery."""
        return sorted(p.name.replace("-", ":", 1) for p in self.store.blobs.iterdir()
                      if p.name.startswith("sha256-"))

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.store.save_sizes()
        self.store.close()
