"""Backup, restore, seeded branches and --rollback-data on real PostgreSQL and MinIO (the
sandbox's real node), asserting on what holds the data: the rows psql reads, the objects
mc lists and reads back.

One module, one story, so that few stacks are deployed (the real node has 2 CPUs): the
source namespace is deployed and filled, backed up, destroyed; a new namespace is
deployed and the snapshot restored into it; a branch is seeded from that one; then a
migration fails there and --rollback-data returns data and images to before; then a
rollout after a good migration fails and the same happens; without --rollback-data the
report says how to restore, and a snapshot of the half-migrated database is refused by a
namespace whose image is older. Bad inputs that need the cluster (a namespace without
PostgreSQL, a disk too small for the snapshot) end each with exit 2 and nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.cluster import Sandbox
from tests.fixtures.realdata import (
    Objects,
    Stack,
    add_migrations,
    realdata_project,
    require_real_stack,
)
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.fixtures.waiting import eventually
from tests.integration.deploy_helpers import CliRun, Project, delete_instances, run_cli

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.realnode]

DEADLINES = ("--timeout", "15m", "--progress-deadline", "4m")
SOURCE_ROWS = ["invoice-1", "receipt-2", "letter-3"]
BRANCH_SECRETS = {"POSTGRES_PASSWORD": "branch-owner-password-1",
                  "PAPERLESS_APP_DB_PASSWORD": "branch-app-password-1",
                  "MINIO_ROOT_PASSWORD": "branch-minio-password-1"}
DEV_OWNER_PASSWORD = "dev-postgres-password-changeme"


@dataclass
class Story:
    """What the module's tests share: the project, the namespaces, what was put in."""

    project: Project
    sandbox: Sandbox
    tmp: Path
    suffix: str
    objects: dict[str, str]  # key -> sha256, as put into the source bucket
    namespaces: list[str]
    restore: dict | None = None  # the restore's report, and the app pods before it

    def ns(self, role: str) -> str:
        name = f"t-data-{role}-{self.suffix}"
        if name not in self.namespaces:
            self.namespaces.append(name)
        return name

    def cli(self, namespace: str | None, *args: str, env: dict | None = None,
            project: Project | None = None, timeout: float = 900) -> CliRun:
        return run_cli(project or self.project, self.sandbox.kubeconfig, namespace, *args,
                       env=env, timeout=timeout)

    def deploy(self, namespace: str, *args: str, env: dict | None = None,
               project: Project | None = None) -> CliRun:
        """`all`; any snapshot it takes goes under the test's directory, never the home's."""
        env = {"PALESS_SNAPSHOT_DIR": str(self.tmp / "before-migrate"), **(env or {})}
        return self.cli(namespace, *DEADLINES, "all", *args, env=env, project=project)


@pytest.fixture(scope="module")
def story(sandbox, real_node, tmp_path_factory) -> Iterator[Story]:
    require_real_stack(sandbox)
    tmp = tmp_path_factory.mktemp("data-real")
    story = Story(realdata_project(tmp / "project"), sandbox, tmp, uuid.uuid4().hex[:5], {},
                  [])
    try:
        yield story
    finally:
        delete_instances(sandbox, story.namespaces)


@pytest.fixture(scope="module")
def source(story: Story) -> Stack:
    """The source namespace, deployed and filled: three rows, three objects (one of 3 MB,
    one with a space in its key, one at the bucket's top)."""
    namespace = story.ns("source")
    run = story.deploy(namespace)
    assert run.returncode == 0, str(run)
    stack = Stack(story.sandbox, namespace)
    stack.add_documents(*SOURCE_ROWS)
    objects = Objects(story.sandbox, namespace)
    for key, data in (("documents/originals/invoice-1.pdf", os.urandom(3_000_000)),
                      ("documents/a b/receipt-2.txt", b"receipt two\n"),
                      ("letter-3.txt", b"letter three\n")):
        objects.put(key, data)
    story.objects.update(objects.listing())
    assert len(story.objects) == 3, story.objects
    return stack


@pytest.fixture(scope="module")
def snapshot(story: Story, source: Stack) -> Path:
    """A backup of the source, then the source destroyed."""
    run = story.cli(source.namespace, "backup", "--to", str(story.tmp / "snapshots"))
    assert run.returncode == 0, str(run)
    path = Path(run.doc["snapshot"]["path"])
    destroyed = story.cli(source.namespace, "destroy", "--yes")
    assert destroyed.returncode == 0, str(destroyed)
    return path


@pytest.fixture(scope="module")
def restored(story: Story, snapshot: Path) -> Stack:
    """A new namespace, deployed empty, then the snapshot restored into it."""
    namespace = story.ns("restored")
    run = story.deploy(namespace)
    assert run.returncode == 0, str(run)
    stack = Stack(story.sandbox, namespace)
    assert stack.rows() == [], "a new namespace starts empty"
    before = stack.app_pods()
    run = story.cli(namespace, "restore", str(snapshot))
    assert run.returncode == 0, str(run)
    story.restore = {"doc": run.doc, "pods_before": before}
    return stack


def test_the_snapshot_names_every_file_with_its_size_and_checksum(story, snapshot, source):
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["source"]["namespace"] == source.namespace
    assert "documents.0001_initial" in manifest["schema_version"]
    assert any(image.endswith("-web") or "realdata-web" in image
               for image in manifest["images"].values()), manifest["images"]
    files = {f["path"]: f for f in manifest["files"]}
    for path, entry in files.items():
        data = (snapshot / path).read_bytes()
        assert len(data) == entry["size"], path
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], path
    keys = {f["key"]: f["sha256"] for f in manifest["files"] if f["role"] == "object"}
    assert keys == story.objects
    assert {f["role"] for f in manifest["files"]} >= {"database", "object", "manifests",
                                                      "configuration"}
    everything = b"".join(p.read_bytes() for p in snapshot.rglob("*") if p.is_file()
                          and p.suffix in (".json", ".yaml"))
    for secret in ("dev-postgres-password-changeme", "dev-minio-password-changeme",
                   "dev-app-db-password-changeme"):
        assert secret.encode() not in everything, f"{secret} in the snapshot"
    assert not list(snapshot.parent.glob("*.partial")), "nothing half-written is left"


def test_a_restore_into_a_new_namespace_brings_every_row_and_object_back(story, restored):
    assert restored.rows() == SOURCE_ROWS
    assert restored.migrations()[0] == "0001_initial"
    assert Objects(story.sandbox, restored.namespace).listing() == story.objects
    # the apps' least-privilege role reads the restored table (the dump's grants came along)
    app = restored.psql("SELECT count(*) FROM documents_document", user="paless_app",
                        password="dev-app-db-password-changeme", host="127.0.0.1")
    assert app.stdout.strip() == str(len(SOURCE_ROWS))


def test_a_restore_stops_the_apps_while_it_writes_and_starts_them_again(story, restored):
    assert story.restore is not None
    stopped = story.restore["doc"]["restored"]["apps_stopped"]
    assert {"Deployment/web", "Deployment/worker", "Deployment/scheduler"} <= set(stopped)
    assert not any(ref.startswith("StatefulSet/") for ref in stopped), stopped
    # new pods (the old ones were stopped), ready, and the namespace is not left asleep
    after = restored.app_pods()
    before = story.restore["pods_before"]
    assert after.keys() == before.keys() and after, (before, after)
    assert all(after[c]["uid"] != before[c]["uid"] and after[c]["ready"] for c in after), \
        (before, after)
    marks = json.loads(story.sandbox.kubectl(
        "get", "namespace", restored.namespace, "-o", "json").stdout)["metadata"].get(
        "labels") or {}
    assert marks.get("paless.io/sleeping") != "true", marks


def test_the_data_survives_its_postgresql_pod_being_deleted(story, restored):
    before = json.loads(story.sandbox.kubectl("get", "pod", "-n", restored.namespace,
                                              "postgres-0", "-o", "json").stdout)
    story.sandbox.kubectl("delete", "pod", "-n", restored.namespace, "postgres-0",
                          "--wait=true")

    def back() -> bool:
        now = json.loads(story.sandbox.kubectl("get", "pod", "-n", restored.namespace,
                                               "postgres-0", "-o", "json",
                                               check=False).stdout or "{}")
        return bool(now) and now["metadata"]["uid"] != before["metadata"]["uid"] and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in now["status"].get("conditions", []))

    eventually(back, 180, "a new postgres-0 Ready")
    assert restored.rows() == SOURCE_ROWS


def test_a_seeded_branch_holds_the_source_rows_with_its_own_credentials(story, restored):
    branch = story.ns("branch")
    run = story.deploy(branch, "--seed-from", restored.namespace, env=BRANCH_SECRETS)
    assert run.returncode == 0, str(run)
    seed = run.doc["seed"]
    assert seed["source_namespace"] == restored.namespace and seed["duration_s"] > 0, seed
    stack = Stack(story.sandbox, branch)
    assert stack.rows() == SOURCE_ROWS
    assert Objects(story.sandbox, branch).listing() == story.objects
    # its own credentials, over TCP with password authentication: the source's owner
    # password is refused, its own accepted. psql runs in the branch's PostgreSQL pod and
    # dials the pod's own address (the socket and 127.0.0.1 trust local users; a pod of
    # another namespace is refused by the branch's NetworkPolicies before any password)
    host = stack.pod_ip("postgres-0")
    refused = stack.psql("SELECT 1", user="paperless", password=DEV_OWNER_PASSWORD,
                         host=host, check=False)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr, \
        refused.stderr
    accepted = stack.psql("SELECT count(*) FROM documents_document", user="paperless",
                          password=BRANCH_SECRETS["POSTGRES_PASSWORD"], host=host)
    assert accepted.stdout.strip() == str(len(SOURCE_ROWS))
    # the next deploy of the branch (CI passes the same flags) does not seed it again
    stack.add_documents("branch-only-4")
    again = story.deploy(branch, "--seed-from", restored.namespace, env=BRANCH_SECRETS)
    assert again.returncode == 0 and "seed" not in again.doc, str(again)
    assert "snapshot" not in again.doc, "no migration ran with a new image: no snapshot"
    assert stack.rows() == [*SOURCE_ROWS, "branch-only-4"]


def test_a_failed_migration_with_rollback_data_returns_data_and_images(story, restored):
    stack = restored
    web_before = stack.image_of("deployment", "web")
    project = _copy(story, "failing-migration")
    add_migrations(project, "0002_note.py", "0003_broken.py")
    run = story.deploy(stack.namespace, "--rollback-data", project=project)
    assert run.returncode == 1, str(run)
    assert run.doc["snapshot"]["schema_version"].count("documents.0001_initial") == 1
    assert Path(run.doc["snapshot"]["path"]).is_dir()
    assert run.doc["rolled_back_data"]["snapshot"] == run.doc["snapshot"]["name"]
    assert "--rollback-data returned the data" in run.doc["errors"][-1]["message"]
    # 0002 was applied (a new column, every title changed) before 0003 failed: all undone
    assert stack.migrations() == ["0001_initial"]
    assert "note" not in stack.columns()
    assert stack.rows() == SOURCE_ROWS
    assert stack.image_of("deployment", "web") == web_before
    assert Objects(story.sandbox, stack.namespace).listing() == story.objects


def test_a_failed_rollout_after_the_migration_with_rollback_data_returns_both(story, restored):
    stack = restored
    web_before = stack.image_of("deployment", "web")
    project = _copy(story, "failing-rollout")
    add_migrations(project, "0002_note.py")
    _crash_web(project)
    run = story.deploy(stack.namespace, "--rollback-data", project=project)
    assert run.returncode == 1, str(run)
    assert [p["name"] for p in run.doc["phases"]][-1] == "web", "the migration went through"
    assert "Deployment/web" in run.doc["rolled_back"]
    assert stack.migrations() == ["0001_initial"]
    assert "note" not in stack.columns() and stack.rows() == SOURCE_ROWS
    assert stack.image_of("deployment", "web") == web_before


def test_without_rollback_data_the_report_says_how_to_restore(story, restored):
    project = _copy(story, "failing-plain")
    add_migrations(project, "0002_note.py", "0003_broken.py")
    run = story.deploy(restored.namespace, project=project)
    assert run.returncode == 1, str(run)
    path = run.doc["snapshot"]["path"]
    hint = run.doc["errors"][-1]["hint"]
    assert f"paless-deploy -n {restored.namespace} restore {path}" in hint
    assert "rolled_back_data" not in run.doc
    assert restored.migrations() == ["0001_initial", "0002_note"], "nothing restored silently"
    # a snapshot of this half-migrated database is newer than the branch's image
    newer = story.cli(restored.namespace, "backup", "--to", str(story.tmp / "newer"))
    assert newer.returncode == 0, str(newer)
    assert "documents.0002_note" in newer.doc["snapshot"]["schema_version"]
    branch = Stack(story.sandbox, story.ns("branch"))
    before = branch.rows()
    refused = story.cli(branch.namespace, "restore", newer.doc["snapshot"]["path"])
    assert refused.returncode == 2, str(refused)
    assert refused.doc["errors"][0]["code"] == "snapshot-newer"
    assert "documents.0002_note" in refused.doc["errors"][0]["message"]
    assert branch.rows() == before, "nothing changed"
    fixed = story.cli(restored.namespace, "restore", path)
    assert fixed.returncode == 0, str(fixed)
    assert restored.migrations() == ["0001_initial"] and restored.rows() == SOURCE_ROWS


def test_a_namespace_without_postgresql_is_exit_2(story, snapshot):
    empty = story.ns("empty")
    story.sandbox.kubectl("create", "namespace", empty)
    backup = story.cli(empty, "backup", "--to", str(story.tmp / "nothing"))
    assert backup.returncode == 2 and backup.doc["errors"][0]["code"] == "no-postgresql", \
        str(backup)
    restore = story.cli(empty, "restore", str(snapshot))
    assert restore.returncode == 2 and restore.doc["errors"][0]["code"] == "no-postgresql", \
        str(restore)
    assert not (story.tmp / "nothing").exists() or not any((story.tmp / "nothing").iterdir())


def test_a_disk_too_small_for_the_snapshot_is_exit_2_and_nothing_is_written(story, restored):
    small = story.tmp / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        run = story.cli(restored.namespace, "backup", "--to", str(small))
        assert run.returncode == 2, str(run)
        assert run.doc["errors"][0]["code"] == "no-space"
        assert "--to" in run.doc["errors"][0]["hint"]
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)
    assert restored.rows() == SOURCE_ROWS  # the source is only read


def _copy(story: Story, name: str) -> Project:
    dest = story.tmp / name
    shutil.copytree(story.project.dir, dest)
    return Project(dest, dest / story.project.env_file.name)


def _crash_web(project: Project) -> None:
    """web's pods crash-loop on their kwok node (the sandbox's failure marker)."""
    overlay = project.dir / "k8s" / "overlays" / "realdata" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + (
        "  - target: {kind: Deployment, name: web}\n"
        "    patch: |-\n"
        "      - {op: add, path: /spec/template/metadata/annotations, value: "
        "{sandbox.paless.io/fail: crash-loop, paless.io/allowed-restarts: '0', "
        "paless.io/failure-grace: 1s}}\n"))
