"""destroy and gc against the sandbox.

Every namespace here is created by the test with a unique `paless-test-gc` label, and
gc runs with that label as its selector: it can never touch another test's namespaces.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest

from paless_deploy.core.errors import ConfigError, ExitCode

pytestmark = pytest.mark.cluster

MANAGED = {"app.kubernetes.io/managed-by": "paless-deploy"}


def run_context(sandbox, tmp_path, namespace: str = "unused"):
    from paless_deploy.core.configuration.context import ConsoleSettings, RunContext
    from paless_deploy.stages.project import load_config

    config = load_config(tmp_path, [], {"PALESS_NAMESPACE": namespace}, environ={},
                         validate=False)
    return RunContext(config=config, started_monotonic=time.monotonic(),
                      started_at=time.time(), output="json", console=ConsoleSettings(quiet=True),
                      timeout_s=120, kubeconfig=str(sandbox.kubeconfig))


def gone(sandbox, *args: str) -> bool:
    res = sandbox.kubectl("get", *args, check=False)
    return res.returncode != 0 and "NotFound" in res.stderr


def apply(sandbox, *objects: dict, namespace: str | None = None) -> None:
    args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
    sandbox.kubectl(*args, input=json.dumps({"apiVersion": "v1", "kind": "List",
                                             "items": list(objects)}))


def instance_labels(namespace: str) -> dict:
    return {**MANAGED, "app.kubernetes.io/instance": namespace}


def volume(name: str, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": instance_labels(namespace)},
            "spec": {"capacity": {"storage": "1Mi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "manual",
                     "hostPath": {"path": f"/tmp/paless-test/{name}"}}}


def ns_object(name: str, tag: str, managed: bool = True, annotations: dict | None = None):
    labels = {"paless-test-gc": tag, **(MANAGED if managed else {})}
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}}}


@pytest.fixture
def tag(sandbox):
    """A unique label value; every namespace and PV carrying it is removed afterwards."""
    value = uuid.uuid4().hex[:8]
    yield value
    sandbox.kubectl("delete", "namespace", "-l", f"paless-test-gc={value}", "--wait=false",
                    check=False)


def test_destroy_removes_a_managed_namespace_and_its_volumes(sandbox, tmp_path, tag):
    from paless_deploy.commands.destroy import run_destroy

    name = f"t-destroy-managed-{tag}"
    apply(sandbox, ns_object(name, tag))
    apply(sandbox, volume(f"{name}-data", name))
    apply(sandbox, {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "cfg", "labels": instance_labels(name)}}, namespace=name)

    dry = run_destroy(run_context(sandbox, tmp_path, name), yes=False, dry_run=True)
    assert {(d["kind"], d["name"]) for d in dry.extra["deleted"]} == {
        ("Namespace", name), ("PersistentVolume", f"{name}-data")}
    assert not gone(sandbox, "namespace", name), "a dry run deletes nothing"
    assert not gone(sandbox, "pv", f"{name}-data")

    result = run_destroy(run_context(sandbox, tmp_path, name), yes=True)
    assert result.exit_code == 0
    assert gone(sandbox, "namespace", name), "destroy waits until the namespace is gone"
    assert gone(sandbox, "pv", f"{name}-data")
    assert result.extra["kept"] == []


def test_destroy_keeps_claims_of_a_namespace_it_did_not_create(sandbox, tmp_path, namespace):
    from paless_deploy.commands.destroy import run_destroy

    labels = instance_labels(namespace)
    apply(sandbox,
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ours", "labels": labels}},
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs"}},
          {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data", "labels": labels},
           "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Mi"}}}},
          namespace=namespace)
    ctx = run_context(sandbox, tmp_path, namespace)

    result = run_destroy(ctx, yes=True)
    assert gone(sandbox, "-n", namespace, "configmap", "ours")
    assert not gone(sandbox, "-n", namespace, "configmap", "theirs"), "unmanaged: untouched"
    assert not gone(sandbox, "-n", namespace, "pvc", "data"), "claims kept without --delete-data"
    assert not gone(sandbox, "namespace", namespace), "a namespace it did not create stays"
    assert [(k["kind"], k["name"]) for k in result.extra["kept"]] == [
        ("PersistentVolumeClaim", "data")]
    assert any("--delete-data" in w for w in result.warnings)

    result = run_destroy(ctx, yes=True, delete_data=True)
    assert gone(sandbox, "-n", namespace, "pvc", "data")
    assert not gone(sandbox, "-n", namespace, "configmap", "theirs")

    with pytest.raises(ConfigError) as caught:  # now it manages nothing there
        run_destroy(ctx, yes=True)
    assert caught.value.exit_code == ExitCode.USAGE


def test_destroy_refuses_a_namespace_with_nothing_managed(sandbox, tmp_path, namespace):
    from paless_deploy.commands.destroy import run_destroy

    apply(sandbox, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs"}},
          namespace=namespace)
    with pytest.raises(ConfigError) as caught:
        run_destroy(run_context(sandbox, tmp_path, namespace), yes=True)
    assert caught.value.exit_code == 2
    assert "manages nothing" in caught.value.message
    assert not gone(sandbox, "-n", namespace, "configmap", "theirs")


def test_destroy_without_yes_off_a_terminal_explains_yes(sandbox, tmp_path, tag):
    from paless_deploy.commands.destroy import run_destroy

    name = f"t-destroy-noyes-{tag}"
    apply(sandbox, ns_object(name, tag))
    with pytest.raises(ConfigError) as caught:  # pytest's stdin is not a terminal
        run_destroy(run_context(sandbox, tmp_path, name))
    assert caught.value.exit_code == 2 and "--yes" in caught.value.hint
    assert not gone(sandbox, "namespace", name)


def test_gc_removes_only_expired_managed_namespaces(sandbox, tmp_path, tag):
    from paless_deploy.commands.destroy import run_gc

    now = dt.datetime.now(dt.UTC)

    def stamp(hours_ago: float) -> str:
        return (now - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")

    old, ttl_over, fresh, foreign = (f"t-gc-{kind}-{tag}" for kind in
                                     ("old", "ttl", "fresh", "foreign"))
    apply(sandbox,
          ns_object(old, tag, annotations={"paless.io/created-at": stamp(24 * 5)}),
          ns_object(ttl_over, tag, annotations={"paless.io/created-at": stamp(2),
                                                "paless.io/ttl": "1h"}),
          ns_object(fresh, tag, annotations={"paless.io/created-at": stamp(0),
                                             "paless.io/ttl": "3d"}),
          ns_object(foreign, tag, managed=False,
                    annotations={"paless.io/created-at": stamp(24 * 30)}))
    apply(sandbox, volume(f"{old}-data", old))
    ctx = run_context(sandbox, tmp_path)
    three_days = 3 * 86400.0

    dry = run_gc(ctx, older_than=three_days, dry_run=True, selector=f"paless-test-gc={tag}")
    assert sorted(d["name"] for d in dry.extra["deleted"]) == sorted([old, ttl_over])
    for name in (old, ttl_over, fresh, foreign):
        assert not gone(sandbox, "namespace", name), "a dry run deletes nothing"

    result = run_gc(ctx, older_than=three_days, selector=f"paless-test-gc={tag}")
    assert gone(sandbox, "namespace", old) and gone(sandbox, "namespace", ttl_over)
    assert gone(sandbox, "pv", f"{old}-data")
    assert not gone(sandbox, "namespace", fresh)
    assert not gone(sandbox, "namespace", foreign), "never a namespace the tool did not create"
    assert [k["name"] for k in result.extra["kept"]] == [fresh]


def test_gc_skips_a_namespace_whose_lock_is_held(sandbox, tmp_path, tag):
    from paless_deploy.adapters.kube import connect
    from paless_deploy.commands.destroy import run_gc
    from paless_deploy.stages.lock import NamespaceLock

    name = f"t-gc-locked-{tag}"
    apply(sandbox, ns_object(name, tag, annotations={"paless.io/created-at":
                                                     "2020-01-01T00:00:00Z"}))
    with NamespaceLock(connect(str(sandbox.kubeconfig)), name, "a running deploy", 5):
        result = run_gc(run_context(sandbox, tmp_path), older_than=86400.0,
                        selector=f"paless-test-gc={tag}")
    assert not gone(sandbox, "namespace", name)
    assert result.extra["deleted"] == []
    assert "a running deploy" in result.warnings[0]
