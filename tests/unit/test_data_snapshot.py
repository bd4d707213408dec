"""The snapshot's manifest, schema versions and what runs in the PostgreSQL container: pure
decisions, on plain data."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from paless_deploy.core.data import postgres, schema
from paless_deploy.core.data.schema import SchemaVersion
from paless_deploy.core.data.snapshot import (
    FileEntry,
    FileState,
    Snapshot,
    checksum_problems,
    human_size,
    object_paths,
    parse_snapshot,
    progress_text,
    size_problems,
    snapshot_name,
)
from paless_deploy.core.errors import ConfigError

SHA = hashlib.sha256(b"dump").hexdigest()


def snapshot(**changes) -> Snapshot:
    base = {"name": "staging-20260101T000000Z", "created_at": "2026-01-01T00:00:00Z",
            "namespace": "staging", "overlay": "staging", "database": "paperless",
            "server_version": "18.1",
            "schema": SchemaVersion((("documents", "0001_initial"),)), "buckets": ("media",),
            "files": (FileEntry("postgres/database.dump", 4, SHA, "database"),
                      FileEntry("objects/media/a.pdf", 3, SHA, "object", bucket="media",
                                key="a.pdf", md5="m", etag="e")),
            "images": {"Deployment/web web": "registry/paless-web:1"}}
    return Snapshot(**{**base, **changes})


def test_the_manifest_reads_back_as_it_was_written():
    original = snapshot(duration_s=1.5, reason="backup")
    data = json.loads(json.dumps(original.to_json()))
    assert data["schema_version"] == "documents.0001_initial"
    assert data["buckets"] == [{"name": "media", "objects": 1, "size": 3}]
    again = parse_snapshot(data, "snap")
    assert again == original
    assert again.size == 7 and again.database_file == original.files[0]
    assert [f.key for f in again.objects("media")] == ["a.pdf"]


@pytest.mark.parametrize("data, phrase", [
    ({"format": "other"}, "is not a paless-snapshot manifest"),
    ([], "is not a paless-snapshot manifest"),
    ({"format": "paless-snapshot", "version": 2}, "format version '2'"),
    ({"format": "paless-snapshot", "version": 1}, "lacks or garbles"),
])
def test_a_manifest_that_is_not_one_is_exit_2(data, phrase):
    with pytest.raises(ConfigError) as err:
        parse_snapshot(data, "snap")
    assert err.value.exit_code == 2 and err.value.code == "bad-snapshot"
    assert phrase in err.value.message


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "manifest.json"])
def test_a_manifest_may_name_only_files_inside_its_directory(path):
    data = snapshot().to_json()
    data["files"][0]["path"] = path
    with pytest.raises(ConfigError, match="outside the snapshot"):
        parse_snapshot(data, "snap")


def test_a_bad_checksum_or_size_in_the_manifest_is_refused():
    data = snapshot().to_json()
    data["files"][0]["sha256"] = "not-a-digest"
    with pytest.raises(ConfigError, match="garbles"):
        parse_snapshot(data, "snap")


def test_sizes_are_checked_first_then_checksums():
    snap = snapshot()
    found = {"postgres/database.dump": FileState(2)}
    problems = size_problems(snap, found)
    assert problems == [("postgres/database.dump has 2 bytes, the manifest says 4 (truncated "
                         "or altered)"), "objects/media/a.pdf is missing"]
    hashed = {f.path: FileState(f.size, SHA) for f in snap.files}
    assert checksum_problems(snap, hashed) == []
    hashed["objects/media/a.pdf"] = FileState(3, "0" * 64)
    assert checksum_problems(snap, hashed)[0].startswith("objects/media/a.pdf: sha256 000000")


def test_object_keys_become_paths_unless_a_file_system_cannot_hold_them():
    paths = object_paths("media", ["a/b.pdf", "a", "x/../y", "c//d", "plain.txt", "/abs"])
    assert paths["a/b.pdf"] == "objects/media/a/b.pdf"
    assert paths["plain.txt"] == "objects/media/plain.txt"
    # `a` is also the directory of `a/b.pdf`; the others are not plain relative paths
    for key in ("a", "x/../y", "c//d", "/abs"):
        assert paths[key].startswith("objects/media/.keys/"), key
    assert len(set(paths.values())) == len(paths)


def test_names_sizes_and_progress_for_people():
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert snapshot_name("staging", moment) == "staging-20260102T030405Z"
    assert human_size(512) == "512 B" and human_size(3_400_000) == "3.4 MB"
    assert progress_text(0, 1_000_000_000) == "0 B of 1.0 GB (0%)"
    assert progress_text(123_000_000, 1_000_000_000) == "100.0 MB of 1.0 GB (10%)"
    assert progress_text(1_000_000_000, 1_000_000_000) == "1.0 GB of 1.0 GB (100%)"
    assert progress_text(120_000_000, None) == "100.0 MB so far"
    # a small copy is said at its start and end only
    assert progress_text(1_500_000, 3_000_000) == "0 B of 3.0 MB (0%)"


def test_the_schema_version_is_the_last_migration_of_each_app():
    version = schema.parse_applied("contenttypes|0001_initial\ndocuments|0001_initial\n"
                                   "documents|0002_note\n\nnot a line\n")
    assert version.version == "contenttypes.0001_initial, documents.0002_note"
    assert SchemaVersion().version == "none"
    assert SchemaVersion.from_json(version.to_json()) == version
    with pytest.raises(ValueError):
        SchemaVersion.from_json({"applied": ["no-dot"]})


def test_a_snapshot_is_newer_than_an_image_that_lacks_one_of_its_migrations():
    applied = SchemaVersion((("documents", "0001_initial"), ("documents", "0002_note")))
    image = schema.parse_image_migrations(
        "some warning\nPALESS-MIGRATIONS:[[\"documents\", \"0001_initial\"]]\n")
    assert image == frozenset({("documents", "0001_initial")})
    assert schema.unknown_to_image(applied, image) == [("documents", "0002_note")]
    assert schema.unknown_to_image(SchemaVersion(applied.applied[:1]), image) == []
    assert schema.parse_image_migrations("fixed kwok log text\n") is None
    assert schema.parse_image_migrations("PALESS-MIGRATIONS:[broken") is None
    assert schema.describe([("a", "1"), ("a", "2"), ("a", "3"), ("a", "4")]) == \
        "a.1, a.2, a.3 and 1 more"


def test_the_database_facts_read_from_the_info_script():
    info = postgres.parse_info("database=paperless\nserver_version=18.6 (Debian)\n"
                               "size=8123456\nmigration=documents|0001_initial\n")
    assert info is not None
    assert (info.database, info.server_version, info.size) == ("paperless", "18.6 (Debian)",
                                                               8123456)
    assert info.schema.version == "documents.0001_initial"
    assert postgres.parse_info("sh: psql: not found\n") is None


def test_no_credential_is_part_of_a_command_line():
    for script in (postgres.DUMP_SCRIPT, postgres.INFO_SCRIPT, postgres.RESTORE_SCRIPT):
        assert '"${POSTGRES_PASSWORD:-}"' in script  # read in the container, not passed
        assert postgres.command(script)[:2] == ["sh", "-c"]
    # the restore never drops the live database before its replacement is complete
    restore = postgres.RESTORE_SCRIPT
    assert restore.index("pg_restore") < restore.index('DROP DATABASE IF EXISTS :\\"db\\"'
                                                       .replace("\\", ""))
    assert "--single-transaction" in restore
