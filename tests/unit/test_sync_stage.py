"""The sync stage's pure parts: what a sync's line says, how a failure reads, when a
container that just started can take a reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from paless_deploy.stages.sync import Synced, _failure, _settled, describe


def test_the_line_of_a_sync() -> None:
    done = [Synced("web", "web-1", "web", 2, "SIGHUP (granian)"),
            Synced("web", "web-2", "web", 2, "SIGHUP (granian)", "tar: Read-only file system"),
            Synced("worker", "w-1", "worker", 1, "SIGHUP (celery worker)")]
    assert describe(done) == ("web: 2 file(s) into 1 of 2 container(s), reloaded by SIGHUP "
                              "(granian); worker: 1 file(s) into 1 of 1 container(s), reloaded "
                              "by SIGHUP (celery worker)")


def test_a_failure_names_what_is_missing_and_that_the_image_follows() -> None:
    assert "cannot run `sh` or `tar`" in _failure(127, "sh: tar: not found")
    assert _failure(1, "tar: x: Read-only file system").startswith("tar: x: Read-only")
    assert "the rebuilt image brings the change" in _failure(1, "")


def _pod(ready: bool, started_s_ago: float, probe: bool) -> dict:
    started = (datetime.now(UTC) - timedelta(seconds=started_s_ago)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    container = {"name": "web", **({"readinessProbe": {"httpGet": {}}} if probe else {})}
    return {"spec": {"containers": [container]},
            "status": {"containerStatuses": [{"name": "web", "ready": ready,
                                              "state": {"running": {"startedAt": started}}}]}}


def test_a_container_takes_a_reload_once_ready_or_settled() -> None:
    assert _settled(_pod(True, 0, probe=True), "web")
    assert not _settled(_pod(False, 60, probe=True), "web")  # its probe decides
    assert not _settled(_pod(False, 0, probe=False), "web")  # its handlers may not be there
    assert _settled(_pod(False, 10, probe=False), "web")
    assert not _settled(_pod(True, 10, probe=False), "other")
