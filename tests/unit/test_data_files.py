"""The snapshot directory door on a real file system: files hashed as written, a snapshot
visible only once complete, a full disk named as such."""

from __future__ import annotations

import errno
import hashlib

import pytest

from paless_deploy.adapters import snapshots


def test_a_snapshot_is_a_partial_directory_until_its_manifest_is_written(tmp_path):
    partial = snapshots.start(tmp_path / "snaps", "ns-20260101T000000Z")
    assert partial.name == "ns-20260101T000000Z.partial"
    with snapshots.HashingFile(partial, "objects/b/a/key.txt") as out:
        out.write(b"hello ")
        out.write(b"world")
    assert (out.size, out.sha256, out.md5) == (
        11, hashlib.sha256(b"hello world").hexdigest(), hashlib.md5(b"hello world").hexdigest())
    final = snapshots.finish(partial, {"format": "paless-snapshot"})
    assert final.name == "ns-20260101T000000Z" and not partial.exists()
    assert snapshots.read_manifest(final) == {"format": "paless-snapshot"}
    assert snapshots.sizes(final, ["objects/b/a/key.txt", "missing"]) == {
        "objects/b/a/key.txt": 11}
    assert snapshots.sha256_of(final / "objects/b/a/key.txt") == out.sha256
    snapshots.start(tmp_path / "snaps", "other")
    with pytest.raises(FileExistsError):  # two backups in one second: the stage picks -1
        snapshots.start(tmp_path / "snaps", "other")


def test_a_full_disk_is_disk_full_with_what_is_left(tmp_path, monkeypatch):
    partial = snapshots.start(tmp_path, "ns")

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    out = snapshots.HashingFile(partial, "postgres/database.dump")
    monkeypatch.setattr(out, "_file", Full())
    with pytest.raises(snapshots.DiskFull) as err:
        out.write(b"x")
    assert err.value.errno == errno.ENOSPC and err.value.free > 0
    snapshots.discard(partial)
    assert not partial.exists()
