"""The real k8s/ overlays, rendered through the render stage: schema and policy checks.

Each policy check is a function returning violations, also run against a bad object.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from paless_deploy.core.configuration.variables import VARIABLES
from paless_deploy.core.images.imageref import has_tag_or_digest
from paless_deploy.core.manifests.kinds import CLUSTER_SCOPED_KINDS
from paless_deploy.core.manifests.podspec import pod_spec
from paless_deploy.core.plan.graph import build_graph
from paless_deploy.core.plan.plan import plan_phases
from paless_deploy.stages.render import render_overlay

PROJECT = Path(__file__).resolve().parents[2]
NAMESPACE = "paless"
OVERLAYS = ("dev", "staging", "prod")
APPS = ("web", "worker", "scheduler")
APP_IMAGES = {app: f"localhost:5000/paless-{app}:abc123" for app in APPS}
TARGET_KUBERNETES = (1, 34)

# The Secret keys each container may read (ours: least privilege, no envFrom of the Secret).
ALLOWED_SECRET_KEYS: dict[str, frozenset[str]] = {
    "web": frozenset({"PAPERLESS_APP_DB_PASSWORD", "PAPERLESS_SECRET_KEY", "REDIS_PASSWORD"}),
    "worker": frozenset({"PAPERLESS_APP_DB_PASSWORD", "PAPERLESS_SECRET_KEY", "REDIS_PASSWORD"}),
    "scheduler": frozenset({"PAPERLESS_APP_DB_PASSWORD", "PAPERLESS_SECRET_KEY",
                            "REDIS_PASSWORD"}),
    "migrate": frozenset({"POSTGRES_PASSWORD", "PAPERLESS_SECRET_KEY"}),
    # the app user, limited to the bucket: never MinIO's root
    "rclone": frozenset({"MINIO_APP_USER", "MINIO_APP_PASSWORD"}),
}
APP_COMPONENTS = frozenset({"web", "worker", "scheduler", "migrate"})
PRIVILEGED_EXCEPTION = "rclone"  # FUSE needs it; the one documented exception
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


def variables_for(overlay: str, **overrides: str) -> dict[str, str]:
    """The defaults of variables.py, the namespace, and for prod non-development credentials."""
    values = {v.name: v.default for v in VARIABLES if v.default is not None}
    values["PALESS_NAMESPACE"] = NAMESPACE
    if overlay == "prod":
        for v in VARIABLES:
            if v.dev_default is not None:
                values[v.name] = f"prod-{v.name.lower()}-not-a-dev-value"
        values["STORAGE_CLASS"] = "standard"
    values.update(overrides)
    return values


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


_cache: dict[tuple, list[dict]] = {}


def rendered(overlay: str, **overrides: str) -> list[dict]:
    """Render an overlay once per set of variables (kustomize runs are the slow part)."""
    key = (overlay, tuple(sorted(overrides.items())))
    if key not in _cache:
        _cache[key] = render_overlay(
            PROJECT, overlay, NAMESPACE, variables_for(overlay, **overrides), APP_IMAGES
        )
    return copy.deepcopy(_cache[key])


def by_name(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def label(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def spec_of(obj: dict) -> dict:
    """The pod spec of a workload that has one."""
    spec = pod_spec(obj)
    assert spec is not None, label(obj)
    return spec


def pods(objects: list[dict]) -> Iterator[tuple[dict, dict]]:
    """(object, pod spec) for every object with a pod template."""
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield obj, spec


def containers(spec: dict, *, init: bool = True) -> list[dict]:
    keys = ("initContainers", "containers") if init else ("containers",)
    return [c for key in keys for c in spec.get(key) or []]


def component(obj: dict) -> str | None:
    return (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component")


# --- policy checks: each returns a list of violations -------------------------------------


def check_long_running_containers(objects: list[dict]) -> list[str]:
    """Long-running containers need requests, limits, readiness and liveness probes."""
    problems = []
    for obj, spec in pods(objects):
        if obj["kind"] not in LONG_RUNNING_KINDS:
            continue
        for c in containers(spec, init=False):
            resources = c.get("resources") or {}
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(part) or {}):
                        problems.append(f"{label(obj)} {c['name']}: no {part}.{resource}")
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    problems.append(f"{label(obj)} {c['name']}: no {probe}")
    return problems


PROBE_PATHS = yaml.safe_load((PROJECT / "k8s" / "probe-paths.yaml").read_text())
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def check_probe_paths(objects: list[dict]) -> list[str]:
    """Every HTTP probe of an app container asks a path the app answers without
    credentials (k8s/probe-paths.yaml): a 401 is a failed probe."""
    problems = []
    for obj, spec in pods(objects):
        app = component(obj)
        for c in containers(spec, init=False):
            for probe in PROBES:
                get = (c.get(probe) or {}).get("httpGet")
                if not get or app not in APP_COMPONENTS:
                    continue
                allowed = PROBE_PATHS.get(app) or []
                if get.get("path", "/") not in allowed:
                    problems.append(f"{label(obj)} {c['name']}: {probe} asks "
                                    f"{get.get('path')!r}, which {app} does not answer without "
                                    f"credentials (k8s/probe-paths.yaml allows {allowed})")
    return problems


def check_security_contexts(objects: list[dict]) -> list[str]:
    """Every pod has a securityContext; only the rclone sidecar is privileged."""
    problems = []
    for obj, spec in pods(objects):
        if not spec.get("securityContext"):
            problems.append(f"{label(obj)}: pod without securityContext")
        for c in containers(spec):
            context = c.get("securityContext") or {}
            if context.get("privileged") and c["name"] != PRIVILEGED_EXCEPTION:
                problems.append(f"{label(obj)} {c['name']}: privileged")
            if not context.get("privileged") and context.get("allowPrivilegeEscalation", True) \
                    and c["name"] != PRIVILEGED_EXCEPTION:
                problems.append(f"{label(obj)} {c['name']}: allowPrivilegeEscalation not false")
    return problems


def check_images_pinned(objects: list[dict]) -> list[str]:
    """No image without a tag or digest, none tagged `latest`."""
    problems = []
    for obj, spec in pods(objects):
        for c in containers(spec):
            image = c["image"]
            if not has_tag_or_digest(image) or image.rsplit("/", 1)[-1].endswith(":latest"):
                problems.append(f"{label(obj)} {c['name']}: image {image!r} not pinned")
    return problems


def check_secret_access(objects: list[dict]) -> list[str]:
    """No envFrom of a Secret anywhere; app containers read only the keys they need."""
    problems = []
    for obj, spec in pods(objects):
        for c in containers(spec):
            for source in c.get("envFrom") or []:
                if "secretRef" in source:
                    problems.append(f"{label(obj)} {c['name']}: envFrom of a whole Secret")
            keys = {
                env["valueFrom"]["secretKeyRef"]["key"]
                for env in c.get("env") or []
                if "secretKeyRef" in (env.get("valueFrom") or {})
            }
            if component(obj) in APP_COMPONENTS:
                extra = keys - ALLOWED_SECRET_KEYS.get(c["name"], frozenset())
                if extra:
                    problems.append(f"{label(obj)} {c['name']}: reads {sorted(extra)}")
    return problems


def check_hpa_targets(objects: list[dict]) -> list[str]:
    """HPA-managed Deployments leave spec.replicas out and carry initial-replicas."""
    problems = []
    for hpa in (o for o in objects if o["kind"] == "HorizontalPodAutoscaler"):
        target = by_name(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        if "replicas" in target["spec"]:
            problems.append(f"{label(target)}: spec.replicas set although {label(hpa)} owns it")
        initial = (target["metadata"].get("annotations") or {}).get("paless.io/initial-replicas")
        if not (initial and initial.isdigit()):
            problems.append(f"{label(target)}: no paless.io/initial-replicas")
    return problems


def check_scheduler(objects: list[dict]) -> list[str]:
    """Exactly one beat scheduler, replaced with Recreate, never autoscaled."""
    scheduler = by_name(objects, "Deployment", "scheduler")
    problems = []
    if scheduler["spec"].get("replicas") != 1:
        problems.append("scheduler: replicas is not 1")
    if (scheduler["spec"].get("strategy") or {}).get("type") != "Recreate":
        problems.append("scheduler: strategy is not Recreate")
    if any(o["kind"] == "HorizontalPodAutoscaler"
           and o["spec"]["scaleTargetRef"]["name"] == "scheduler" for o in objects):
        problems.append("scheduler: has an HPA")
    return problems


def check_node_ports(objects: list[dict], *, allowed: bool) -> list[str]:
    """No fixed nodePort unless allowed (dev with MINIO_CONSOLE_NODEPORT set)."""
    if allowed:
        return []
    return [
        f"{label(o)}: fixed nodePort {port['nodePort']}"
        for o in objects if o["kind"] == "Service"
        for port in o["spec"].get("ports") or [] if "nodePort" in port
    ]


def check_cluster_scoped_names(objects: list[dict], namespace: str) -> list[str]:
    """Cluster-scoped objects carry the namespace in their name (branch namespaces coexist)."""
    return [
        f"{label(o)}: cluster-scoped name without {namespace!r}"
        for o in objects
        if o["kind"] in CLUSTER_SCOPED_KINDS and namespace not in o["metadata"]["name"]
    ]


# --- the real overlays --------------------------------------------------------------------


def schema_version() -> str:
    """The newest schema version kubernetes-validate ships that is <= TARGET_KUBERNETES."""
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", v)[:3])
    usable = [v for v in set(all_versions()) if key(v)[:2] <= TARGET_KUBERNETES]
    return max(usable, key=key)


def test_every_object_validates_against_the_kubernetes_schema(overlay: str) -> None:
    version = schema_version()
    assert version.startswith("1.34"), version
    for obj in rendered(overlay):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {label(obj)} invalid: {exc.message} at {list(exc.path)}")


def test_schema_validation_can_fail() -> None:
    svc = by_name(rendered("dev"), "Service", "minio-console")
    svc["spec"]["ports"][0]["nodePort"] = "${MINIO_CONSOLE_NODEPORT}"  # as Kustomize emits it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(svc, schema_version(), strict=True)


def test_no_placeholder_left(overlay: str) -> None:
    from paless_deploy.core.manifests.render import to_yaml
    assert "${" not in to_yaml(rendered(overlay))


@pytest.mark.parametrize("check", [
    check_long_running_containers, check_security_contexts, check_images_pinned,
    check_secret_access, check_hpa_targets, check_scheduler, check_probe_paths,
])
def test_policy(overlay: str, check) -> None:
    assert check(rendered(overlay)) == []


def test_no_fixed_node_port_unless_dev_sets_one(overlay: str) -> None:
    assert check_node_ports(rendered(overlay), allowed=False) == []
    assert check_cluster_scoped_names(rendered(overlay), NAMESPACE) == []


def test_dev_node_port_is_fixed_only_when_set() -> None:
    objects = rendered("dev", MINIO_CONSOLE_NODEPORT="30090")
    assert by_name(objects, "Service", "minio-console")["spec"]["ports"][0]["nodePort"] == 30090


def test_dev_volumes_carry_the_namespace() -> None:
    objects = rendered("dev")
    for claim, short in (("paperless-data-pvc", "data"), ("paperless-media-pvc", "media")):
        pvc = by_name(objects, "PersistentVolumeClaim", claim)
        pv = by_name(objects, "PersistentVolume", pvc["spec"]["volumeName"])
        assert pv["metadata"]["name"] == f"paless-{short}-{NAMESPACE}"
        assert pv["spec"]["hostPath"]["path"] == f"/var/lib/paless/{NAMESPACE}/{short}"
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pv["spec"]["storageClassName"] == pvc["spec"]["storageClassName"] == "manual"
        assert pv["spec"]["claimRef"] == {"namespace": NAMESPACE, "name": claim}


def test_prod_and_staging_have_no_host_path_and_use_the_variables() -> None:
    for overlay in ("staging", "prod"):
        objects = rendered(overlay, SHARED_VOLUME_ACCESS_MODE="ReadWriteMany")
        assert not [o for o in objects if o["kind"] == "PersistentVolume"]
        pvc = by_name(objects, "PersistentVolumeClaim", "paperless-media-pvc")
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
        expected_class = "standard" if overlay == "prod" else "local-path"
        assert pvc["spec"]["storageClassName"] == expected_class
        assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"


def _gibibytes(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Mi|Gi|Ti)", quantity)
    assert match is not None, quantity
    number, unit = match.groups()
    return int(number) * {"Mi": 1 / 1024, "Gi": 1, "Ti": 1024}[unit]


def test_staging_and_dev_volumes_are_smaller_than_prod() -> None:
    def sizes(overlay: str) -> dict[str, float]:
        return {
            o["metadata"]["name"]: _gibibytes(
                o["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])
            for o in rendered(overlay) if o["kind"] == "StatefulSet"
        }
    prod, staging, dev = sizes("prod"), sizes("staging"), sizes("dev")
    assert prod == {"minio": 20, "postgres": 10, "redis": 2}
    assert all(dev[n] < staging[n] < prod[n] for n in prod)


def test_each_app_pod_mounts_the_bucket_on_a_volume_of_its_own_in_dev() -> None:
    # on dev's hostPath claim the sidecars' FUSE mounts stacked in one node directory and a
    # rollout broke the new pod (k8s/overlays/dev/media-per-pod.yaml); elsewhere each pod
    # mounts the claim at a path of its own already
    for overlay in ("dev", "prod"):
        for app in APPS:
            volumes = spec_of(by_name(rendered(overlay), "Deployment", app))["volumes"]
            media = next(v for v in volumes if v["name"] == "media")
            if overlay == "dev":
                assert media == {"name": "media", "emptyDir": {}}, (app, media)
            else:
                assert media["persistentVolumeClaim"]["claimName"] == "paperless-media-pvc"


def test_rclone_mount_propagation_and_probe(overlay: str) -> None:
    for app in APPS:
        spec = spec_of(by_name(rendered(overlay), "Deployment", app))
        app_container, sidecar = spec["containers"]
        assert app_container["image"] == APP_IMAGES[app]
        media = next(m for m in app_container["volumeMounts"] if m["name"] == "media")
        assert media["mountPropagation"] == "HostToContainer"
        sidecar_media = next(m for m in sidecar["volumeMounts"] if m["name"] == "media")
        assert sidecar_media["mountPropagation"] == "Bidirectional"
        assert sidecar["securityContext"]["privileged"] is True
        assert "minio:paperless-media" in sidecar["args"]
        assert sidecar_media["mountPath"] in " ".join(sidecar["livenessProbe"]["exec"]["command"])
        assert {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists",
                "effect": "NoSchedule"} in spec["tolerations"]


def test_phases_of_the_stack(overlay: str) -> None:
    phases = {p.name: [label(o) for o in p.objects] for p in plan_phases(rendered(overlay))}
    assert "Job/minio-init" in phases["object-storage-init"]
    assert phases["data-init"] == ["Job/postgres-init"]
    assert phases["migrate"] == ["Job/migrate"]
    assert "StatefulSet/minio" in phases["object-storage"]
    assert {"StatefulSet/postgres", "StatefulSet/redis"} <= set(phases["data"])
    assert phases["scheduler"] == ["Deployment/scheduler"]
    assert phases["worker"] == ["Deployment/worker"]
    assert {"Deployment/web", "Ingress/web", "HorizontalPodAutoscaler/worker",
            "PodDisruptionBudget/web"} <= set(phases["web"])


def test_the_stack_graph_keeps_the_paless_order_and_parallel_data_services(overlay: str
                                                                           ) -> None:
    graph = build_graph(rendered(overlay))
    wave = {n.ref: w for w, members in enumerate(graph.waves())
            for n in (graph.nodes[i] for i in members)}
    # MinIO, PostgreSQL and Redis wait for none of each other
    assert wave["StatefulSet/minio"] == wave["StatefulSet/postgres"] == wave["StatefulSet/redis"]
    # their Jobs after them; the migration after the database's init Job
    assert wave["Job/minio-init"] > wave["StatefulSet/minio"]
    assert wave["Job/postgres-init"] > wave["StatefulSet/postgres"]
    assert wave["Job/migrate"] > wave["Job/postgres-init"]
    # the Paless startup order, stated in k8s/ with paless.io/depends-on
    assert wave["Job/migrate"] < wave["Deployment/scheduler"] == wave["Deployment/worker"] \
        < wave["Deployment/web"] < wave["Ingress/web"]
    stated = {n.ref: {graph.nodes[x.on].ref for x in n.needs if x.rule == "depends-on"}
              for n in graph.nodes}
    assert stated["Deployment/scheduler"] == {"StatefulSet/minio", "StatefulSet/redis",
                                              "Job/migrate"}
    assert stated["Deployment/worker"] == stated["Deployment/scheduler"]
    assert stated["Deployment/web"] == {"Deployment/scheduler", "Deployment/worker"}


def test_migration_runs_as_owner_and_apps_as_app_role() -> None:
    objects = rendered("dev")
    config = by_name(objects, "ConfigMap", "paperless-config")["data"]
    migrate = spec_of(by_name(objects, "Job", "migrate"))["containers"][0]
    env = {e["name"]: e for e in migrate["env"]}
    assert env["PAPERLESS_DBUSER"]["valueFrom"]["configMapKeyRef"]["key"] == "POSTGRES_USER"
    assert env["PAPERLESS_DBPASS"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    assert migrate["image"] == APP_IMAGES["web"]
    assert config["PAPERLESS_DBUSER"] == config["PAPERLESS_APP_DB_USER"] != config["POSTGRES_USER"]
    init_sql = by_name(objects, "ConfigMap", "postgres-init")["data"]["init.sql"]
    assert '"uuid-ossp"' in init_sql and "pgcrypto" in init_sql
    init = spec_of(by_name(objects, "Job", "postgres-init"))["containers"][0]
    assert "ON_ERROR_STOP=1" in init["command"][-1]


# --- each policy check can fail -----------------------------------------------------------


def _bad(mutate) -> list[dict]:
    objects = rendered("dev")
    mutate(objects)
    return objects


def _web(objects: list[dict]) -> dict:
    return spec_of(by_name(objects, "Deployment", "web"))


@pytest.mark.parametrize(("check", "mutate", "expected"), [
    (check_long_running_containers,
     lambda o: _web(o)["containers"][0].pop("livenessProbe"), "no livenessProbe"),
    (check_probe_paths,
     lambda o: _web(o)["containers"][0]["readinessProbe"]["httpGet"].update(path="/api/"),
     "readinessProbe asks '/api/'"),
    (check_long_running_containers,
     lambda o: _web(o)["containers"][1]["resources"].pop("limits"), "no limits.cpu"),
    (check_security_contexts, lambda o: _web(o).pop("securityContext"), "without securityContext"),
    (check_security_contexts,
     lambda o: _web(o)["containers"][0]["securityContext"].update(privileged=True), "privileged"),
    (check_images_pinned,
     lambda o: _web(o)["containers"][1].update(image="rclone/rclone:latest"), "not pinned"),
    (check_images_pinned, lambda o: _web(o)["containers"][1].update(image="rclone/rclone"),
     "not pinned"),
    (check_secret_access,
     lambda o: _web(o)["containers"][0]["envFrom"].append({"secretRef": {"name": "paless-secret"}}),
     "envFrom of a whole Secret"),
    (check_secret_access, lambda o: _web(o)["containers"][0]["env"].append(
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "paless-secret",
                                                     "key": "POSTGRES_PASSWORD"}}}),
     "POSTGRES_PASSWORD"),
    (check_hpa_targets,
     lambda o: by_name(o, "Deployment", "worker")["spec"].update(replicas=2), "spec.replicas"),
    (check_scheduler,
     lambda o: by_name(o, "Deployment", "scheduler")["spec"].pop("strategy"), "Recreate"),
    (check_scheduler,
     lambda o: by_name(o, "Deployment", "scheduler")["spec"].update(replicas=2), "replicas"),
    (lambda o: check_node_ports(o, allowed=False),
     lambda o: by_name(o, "Service", "minio-console")["spec"]["ports"][0].update(nodePort=30090),
     "fixed nodePort"),
    (lambda o: check_cluster_scoped_names(o, NAMESPACE),
     lambda o: by_name(o, "PersistentVolume", f"paless-data-{NAMESPACE}")["metadata"].update(
         name="data-volume"), "cluster-scoped name"),
], ids=["no-liveness", "probe-needs-credentials", "no-limits", "no-pod-security-context", "privileged-app",
        "latest-tag", "no-tag", "envfrom-secret", "extra-secret-key", "hpa-target-replicas",
        "scheduler-rolling", "scheduler-replicas", "fixed-node-port", "cluster-scoped-name"])
def test_policy_check_catches_a_bad_object(check, mutate, expected: str) -> None:
    problems = check(_bad(mutate))
    assert problems and any(expected in p for p in problems), problems
