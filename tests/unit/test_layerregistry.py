"""The registry of our own a k3s import goes through, spoken to over HTTP on loopback as
`docker push` and containerd's pull speak to it: chunked and monolithic uploads, mounts,
blobs the node holds answered "present" with their remembered size, manifests by tag and
digest, a wrong digest refused, the port kept between deliveries.
"""

from __future__ import annotations

import hashlib
import http.client
import json
from pathlib import Path

import pytest

from paless_deploy.adapters.layerregistry import LayerRegistry


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def request(registry: LayerRegistry, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, chunks: list[bytes] | None = None
            ) -> http.client.HTTPResponse:
    host, port = registry.host.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    if chunks is not None:
        conn.putrequest(method, path)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for chunk in chunks:
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    else:
        conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    return response


def push_blob(registry: LayerRegistry, data: bytes, chunks: int = 3) -> str:
    start = request(registry, "POST", "/v2/app/blobs/uploads/")
    assert start.status == 202
    location = start.headers["Location"]
    size = max(1, len(data) // chunks)
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    patched = request(registry, "PATCH", location, chunks=parts)
    assert patched.status == 202 and patched.headers["Range"] == f"0-{len(data) - 1}"
    put = request(registry, "PUT", f"{location}?digest={digest(data)}", body=b"")
    assert put.status == 201, put.body  # type: ignore[attr-defined]
    return digest(data)


@pytest.fixture
def held() -> set[str]:
    return set()


@pytest.fixture
def registry(tmp_path: Path, held: set[str]):
    with LayerRegistry(held.__contains__, cache=tmp_path / "cache") as running:
        yield running


def test_a_chunked_upload_is_served_back_and_a_wrong_digest_refused(registry) -> None:
    data = b"layer " * 5000
    blob = push_blob(registry, data)
    assert registry.received() == [blob]
    got = request(registry, "GET", f"/v2/app/blobs/{blob}")
    assert got.status == 200 and got.body == data  # type: ignore[attr-defined]
    head = request(registry, "HEAD", f"/v2/other/blobs/{blob}")
    assert head.status == 200 and head.headers["Content-Length"] == str(len(data))
    start = request(registry, "POST", "/v2/app/blobs/uploads/")
    request(registry, "PATCH", start.headers["Location"], chunks=[b"abc"])
    wrong = request(registry, "PUT", f"{start.headers['Location']}?digest={digest(b'xyz')}",
                    body=b"")
    assert wrong.status == 400


def test_monolithic_upload_mount_and_manifests(registry) -> None:
    data = b"config"
    put = request(registry, "POST", f"/v2/app/blobs/uploads/?digest={digest(data)}", body=data)
    assert put.status == 201
    mounted = request(registry, "POST",
                      f"/v2/web/blobs/uploads/?mount={digest(data)}&from=app", body=b"")
    assert mounted.status == 201
    absent = request(registry, "POST", f"/v2/web/blobs/uploads/?mount={digest(b'nope')}&from=x",
                     body=b"")
    assert absent.status == 202
    manifest = json.dumps({"schemaVersion": 2}).encode()
    media = "application/vnd.docker.distribution.manifest.v2+json"
    stored = request(registry, "PUT", "/v2/app/manifests/v1", body=manifest,
                     headers={"Content-Type": media})
    assert stored.headers["Docker-Content-Digest"] == digest(manifest)
    for ref in ("v1", digest(manifest)):
        got = request(registry, "GET", f"/v2/app/manifests/{ref}")
        assert (got.status, got.headers["Content-Type"], got.body) == (  # type: ignore[attr-defined]
            200, media, manifest)
    assert request(registry, "GET", "/v2/app/manifests/v2").status == 404


def test_blobs_the_node_holds_are_present_with_their_remembered_size(
        tmp_path: Path, held: set[str]) -> None:
    data = b"x" * 1234
    with LayerRegistry(held.__contains__, cache=tmp_path / "cache") as first:
        blob = push_blob(first, data)
        port = first.host
    assert json.loads((tmp_path / "cache" / "sizes.json").read_text()) == {blob: 1234}
    with LayerRegistry(held.__contains__, cache=tmp_path / "cache") as second:
        assert second.host == port  # the engine remembers which layers went where
        assert request(second, "HEAD", f"/v2/app/blobs/{blob}").status == 404  # gone, not held
        held.add(blob)
        head = request(second, "HEAD", f"/v2/app/blobs/{blob}")
        assert head.status == 200 and head.headers["Content-Length"] == "1234"
        assert request(second, "GET", f"/v2/app/blobs/{blob}").status == 404  # never asked
        assert second.received() == []
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith("blobs-")]
