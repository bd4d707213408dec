"""diagnosis.hints: the Paless knowledge tables and the small lookups over them."""

from __future__ import annotations

from paless_deploy.core.diagnosis.hints import (
    APP_DEPENDENCIES,
    DATA_SERVICES,
    JOB_HINTS,
    RCLONE_DEFAULT,
    RCLONE_HINTS,
    dependency_hint,
    is_data_service,
    job_hint,
    mentions_fuse,
    rclone_hint,
    rendered_from,
)


def test_data_services():
    assert set(APP_DEPENDENCIES) <= set(DATA_SERVICES)
    assert is_data_service("postgres") and is_data_service("redis-master")
    assert not is_data_service("web")


def test_job_hints_by_name_fragment():
    assert job_hint("minio-bucket") == JOB_HINTS[0][1]
    assert job_hint("postgres-init") == JOB_HINTS[1][1]
    assert job_hint("migrate") == JOB_HINTS[2][1]
    assert job_hint("backup") is None


def test_rclone_rows_first_match_wins():
    fuse, minio, creds = (row.hint for row in RCLONE_HINTS)
    assert rclone_hint("fusermount: permission denied", ("minio",)) == fuse
    assert rclone_hint("", ("minio",)) == minio
    assert rclone_hint("dial tcp 10.0.0.1:9000: connection refused", ()) == minio
    assert rclone_hint("signaturedoesnotmatch", ()) == creds
    assert rclone_hint("", ()) == RCLONE_DEFAULT


def test_refused_is_not_about_fuse():
    assert mentions_fuse("fusermount: exit status 1") and mentions_fuse("open /dev/fuse")
    assert not mentions_fuse("dial tcp: connection refused")


def test_dependency_hint_only_for_app_containers():
    hint = dependency_hint("web", ("redis", "postgres", "minio"), "ns")
    assert hint is not None and hint.startswith("postgres and redis is not ready yet")
    assert "kubectl -n ns get pods -l app.kubernetes.io/component=postgres" in hint
    assert dependency_hint("postgres", ("redis",), "ns") is None
    assert dependency_hint("web", ("minio",), "ns") is None


def test_rendered_from():
    assert rendered_from("paless-secret") == "k8s/base/config.yaml"
    assert rendered_from("other") is None
