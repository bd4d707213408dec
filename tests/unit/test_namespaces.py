"""Namespaces the tool creates: label and annotations, and gc's expiry rule."""

from __future__ import annotations

import datetime as dt

import pytest

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.namespaces import (
    namespace_expiry,
    namespace_manifest,
    parse_rfc3339,
)
from paless_deploy.stages.project import load_config

NOW = dt.datetime(2025, 5, 10, 12, 0, 0, tzinfo=dt.UTC)
DAY = 86400.0


def config(tmp_path, **values):
    return load_config(tmp_path, [], {"PALESS_NAMESPACE": "paless-feature-x", **values},
                       environ={}, validate=False)


def test_manifest_carries_label_and_gc_annotations(tmp_path):
    manifest = namespace_manifest(config(tmp_path, PALESS_TTL="3d"), "feature/x", "abc123",
                                  now=NOW)
    meta = manifest["metadata"]
    assert meta["name"] == "paless-feature-x"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "paless-deploy"
    assert meta["annotations"] == {"paless.io/created-at": "2025-05-10T12:00:00Z",
                                   "paless.io/deployed-at": "2025-05-10T12:00:00Z",
                                   "paless.io/branch": "feature/x",
                                   "paless.io/commit": "abc123", "paless.io/ttl": "3d"}


def test_manifest_without_git_or_ttl_has_only_created_and_deployed_at(tmp_path):
    meta = namespace_manifest(config(tmp_path), None, None, now=NOW)["metadata"]
    assert meta["annotations"] == {"paless.io/created-at": "2025-05-10T12:00:00Z",
                                   "paless.io/deployed-at": "2025-05-10T12:00:00Z"}


def test_bad_ttl_is_a_config_error_naming_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="PALESS_TTL"):
        namespace_manifest(config(tmp_path, PALESS_TTL="soon"), None, None, now=NOW)


def ann(days_ago: float, ttl: str | None = None) -> dict:
    out = {"paless.io/created-at": (NOW - dt.timedelta(days=days_ago)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")}
    if ttl:
        out["paless.io/ttl"] = ttl
    return out


@pytest.mark.parametrize(("annotations", "older_than", "expired"), [
    (ann(4), 3 * DAY, True),
    (ann(2), 3 * DAY, False),
    (ann(2), None, False),  # no --older-than and no ttl: never
    (ann(0.1, "1h"), None, True),
    (ann(0.1, "12h"), None, False),
    (ann(0.1, "12h"), 3600.0, True),  # either rule expires it
    (ann(10, "soon"), None, False),  # unreadable ttl: kept, reported
])
def test_expiry(annotations, older_than, expired):
    assert namespace_expiry(annotations, None, older_than, NOW).expired is expired


def test_expiry_falls_back_to_creation_timestamp():
    created = NOW - dt.timedelta(days=5)
    assert namespace_expiry({}, created, 3 * DAY, NOW).expired
    assert not namespace_expiry({}, None, 3 * DAY, NOW).expired
    assert "unreadable" in namespace_expiry(ann(10, "soon"), None, None, NOW).reason


def test_parse_rfc3339():
    assert parse_rfc3339("2025-05-10T12:00:00Z") == NOW
    assert parse_rfc3339("yesterday") is None and parse_rfc3339(None) is None


def stamp(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_idle_time_counts_from_the_last_deploy():
    renewed = {**ann(30, "3d"), "paless.io/deployed-at": stamp(1)}
    expiry = namespace_expiry(renewed, None, 7 * DAY, NOW)
    assert not expiry.expired, "a branch deployed yesterday is in use"
    assert "expires in 2d" in expiry.reason and "last deployed 1d ago" in expiry.reason
    idle = {**ann(30, "3d"), "paless.io/deployed-at": stamp(4)}
    expiry = namespace_expiry(idle, None, None, NOW)
    assert expiry.expired and expiry.reason.startswith("ttl 3d expired 1d ago")
    assert "idle longer than 7d" in namespace_expiry(
        {**ann(30), "paless.io/deployed-at": stamp(8)}, None, 7 * DAY, NOW).reason


def test_the_keep_label_is_never_collected():
    expiry = namespace_expiry(ann(100, "1h"), None, DAY, NOW,
                              namespace_labels={"paless.io/keep": "true"})
    assert not expiry.expired and expiry.reason == "labelled paless.io/keep=true"
    assert namespace_expiry(ann(100), None, DAY, NOW,
                            namespace_labels={"paless.io/keep": "false"}).expired


def test_renewal_writes_the_deploy_time_ttl_and_commit(tmp_path):
    from paless_deploy.core.manifests.namespaces import renewal_annotations

    assert renewal_annotations(config(tmp_path, PALESS_TTL="3d"), "abc", now=NOW) == {
        "paless.io/deployed-at": "2025-05-10T12:00:00Z", "paless.io/ttl": "3d",
        "paless.io/commit": "abc"}
    assert renewal_annotations(config(tmp_path), None, now=NOW) == {
        "paless.io/deployed-at": "2025-05-10T12:00:00Z"}
