"""preflight.check_references: every Secret/ConfigMap/claim and key a pod template needs exists."""

from __future__ import annotations

import json

from paless_deploy.core.plan.preflight import check_references, pod_references

SECRET_VALUE = "s3cr3t-dev-value"


def workload(kind: str = "Deployment", **pod_spec) -> dict:
    spec = {"containers": [{"name": "web", "image": "web"}], **pod_spec}
    if kind == "Pod":
        return {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": spec}
    return {"kind": kind, "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"template": {"spec": spec}}}


def secret(name: str = "paless-secret", **data) -> dict:
    return {"kind": "Secret", "metadata": {"name": name, "namespace": "ns"},
            "stringData": data or {"POSTGRES_PASSWORD": SECRET_VALUE}}


def configmap(name: str = "paperless-config", **data) -> dict:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": data}


def nothing(kind: str, namespace: str, name: str) -> dict | None:
    return None


def env_ref(field: str, name: str, key: str, optional: bool = False) -> dict:
    ref: dict[str, str | bool] = {"name": name, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": key, "valueFrom": {field: ref}}


def test_missing_secret_key_names_object_field_and_key():
    dep = workload(containers=[{"name": "web", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"},
        env_ref("secretKeyRef", "paless-secret", "PAPERLESS_SECRET_KEY")]}])
    (f,) = check_references([dep, secret()], nothing)
    assert (f.code, f.resource, f.reason, f.fatal) == (
        "missing-reference", "Deployment/web", "MissingSecretKey", True)
    assert "spec.template.spec.containers[0].env[3].valueFrom.secretKeyRef" in f.message
    assert "PAPERLESS_SECRET_KEY" in f.message and "paless-secret" in f.message
    assert "k8s/base/config.yaml" in f.hint
    assert f.commands == ("kubectl -n ns describe secret paless-secret",)
    assert "POSTGRES_PASSWORD" in f.evidence[0]  # key names help; values never appear
    assert SECRET_VALUE not in json.dumps([f.__dict__ for f in [f]])


def test_missing_objects_of_every_reference_kind():
    dep = workload(
        "StatefulSet",
        initContainers=[{"name": "init", "envFrom": [{"configMapRef": {"name": "postgres-init"}}]}],
        containers=[{"name": "db", "env": [env_ref("configMapKeyRef", "cfg", "K")],
                     "envFrom": [{"secretRef": {"name": "creds"}}]}],
        volumes=[{"name": "a", "secret": {"secretName": "tls"}},
                 {"name": "b", "configMap": {"name": "rclone-config"}},
                 {"name": "c", "persistentVolumeClaim": {"claimName": "paperless-data-pvc"}},
                 {"name": "d", "projected": {"sources": [{"secret": {"name": "proj"}}]}}],
        imagePullSecrets=[{"name": "regcred"}])
    found = {(f.reason, f.message.split(" references ")[1].split(" (")[0]): f
             for f in check_references([dep], nothing)}
    assert set(found) == {
        ("MissingConfigMap", "ConfigMap postgres-init"), ("MissingConfigMap", "ConfigMap cfg"),
        ("MissingSecret", "Secret creds"), ("MissingSecret", "Secret tls"),
        ("MissingConfigMap", "ConfigMap rclone-config"),
        ("MissingPersistentVolumeClaim", "PersistentVolumeClaim paperless-data-pvc"),
        ("MissingSecret", "Secret proj"), ("MissingSecret", "Secret regcred")}
    paths = " ".join(f.message for f in found.values())
    for path in ("spec.template.spec.initContainers[0].envFrom[0].configMapRef",
                 "spec.template.spec.volumes[3].projected.sources[0].secret",
                 "spec.template.spec.volumes[2].persistentVolumeClaim",
                 "spec.template.spec.imagePullSecrets[0]"):
        assert path in paths
    assert all(f.resource == "StatefulSet/web" for f in found.values())


def test_optional_references_are_skipped():
    dep = workload(containers=[{"name": "web",
                                "env": [env_ref("secretKeyRef", "x", "K", optional=True)],
                                "envFrom": [{"configMapRef": {"name": "y", "optional": True}}]}],
                   volumes=[{"name": "v", "secret": {"secretName": "z", "optional": True}}])
    assert check_references([dep], nothing) == []


def test_cluster_objects_satisfy_references_and_are_looked_up_once():
    calls = []

    def existing(kind, namespace, name):
        calls.append((kind, namespace, name))
        return secret(name, PAPERLESS_SECRET_KEY="v") if kind == "Secret" else None

    deps = [workload(containers=[{"name": "web", "env": [
        env_ref("secretKeyRef", "paless-secret", "PAPERLESS_SECRET_KEY")]}]) for _ in range(3)]
    assert check_references(deps, existing) == []
    assert calls == [("Secret", "ns", "paless-secret")]


def test_rendered_objects_win_and_configmap_items_are_checked():
    job = workload("Job", volumes=[{"name": "c", "configMap": {
        "name": "rclone-config", "items": [{"key": "rclone.conf", "path": "rclone.conf"},
                                           {"key": "extra.conf", "path": "extra"}]}}])
    (f,) = check_references([job, configmap("rclone-config", **{"rclone.conf": "x"})], nothing)
    assert f.reason == "MissingConfigMapKey" and "extra.conf" in f.message
    assert f.resource == "Job/web"
    assert "spec.template.spec.volumes[0].configMap" in f.message


def test_pod_and_cronjob_paths():
    pod = workload("Pod", containers=[{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}])
    assert [r.path for r in pod_references(pod)] == ["spec.containers[0].envFrom[0].secretRef"]
    cron = {"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {
        "template": {"spec": {"containers": [{"name": "c", "envFrom": [
            {"secretRef": {"name": "s"}}]}]}}}}}}
    assert [r.path for r in pod_references(cron)] == [
        "spec.jobTemplate.spec.template.spec.containers[0].envFrom[0].secretRef"]
    assert list(pod_references({"kind": "Service", "metadata": {"name": "s"}})) == []


def test_secret_data_keys_count_as_present():
    dep = workload(containers=[{"name": "web", "env": [env_ref("secretKeyRef", "s", "K")]}])
    applied = {"kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
               "data": {"K": "c2VjcmV0"}}
    assert check_references([dep], lambda kind, ns, name: applied) == []

