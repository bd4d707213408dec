"""dev's pure decisions: which changes count, bursts, path -> apps, what rolls out, what
is forwarded to localhost."""

from __future__ import annotations

import pytest

from paless_deploy.core.plan.devloop import (
    AppContext,
    Coalescer,
    ForwardTarget,
    app_of_pod,
    changed_objects,
    classify,
    forward_pod,
    forward_targets,
    is_editor_temp,
    is_watched,
    pod_port,
)

# The Paless layout: web and worker share the root context; an app of its own in api/.
CONTEXTS = [
    AppContext("web", "", "Dockerfile.web",
               frozenset({".dockerignore", "Dockerfile.web", "src", "src/app.py"})),
    AppContext("worker", "", "Dockerfile.worker",
               frozenset({".dockerignore", "Dockerfile.worker", "src", "src/app.py",
                          "src/tasks.py"})),
    AppContext("api", "api", "api/Dockerfile",
               frozenset({"Dockerfile", "main.go", "go.mod"})),
]
ENV_FILES = {"paless.env", ".context-management/.env"}


@pytest.mark.parametrize("name", [".app.py.swp", "app.py~", ".#app.py", "#app.py#", "4913",
                                  "app.py___jb_tmp___", ".goutputstream-XYZ1", "x.kate-swp"])
def test_editor_temporaries(name: str) -> None:
    assert is_editor_temp(name)
    assert not is_watched(f"src/{name}")


@pytest.mark.parametrize(("path", "watched"), [
    ("src/app.py", True), ("k8s/overlays/dev/web.yaml", True), ("paless.env", True),
    (".context-management/.env", True), (".git/index.lock", True), (".git/HEAD", False),
    (".git/objects/ab/cdef", False), ("src/__pycache__/app.cpython-311.pyc", False),
    (".venv/lib/x.py", False), (".mypy_cache/x.json", False),
])
def test_what_is_watched(path: str, watched: bool) -> None:
    assert is_watched(path) is watched


def test_a_burst_ends_after_quiet_or_at_the_most_after_max_wait() -> None:
    c = Coalescer(quiet_s=0.2, max_wait_s=10)
    assert not c.due(0.0) and c.wait_s(0.0) is None and not c.pending
    c.add({"a"}, 1.0)
    c.add({"b"}, 1.1)
    assert not c.due(1.25) and c.wait_s(1.25) == pytest.approx(0.05)
    assert c.due(1.31) and c.first_at == 1.0
    assert c.take() == {"a", "b"} and not c.pending and c.first_at is None
    # a stream that never pauses still flushes after max_wait
    t = 5.0
    while t < 15.05:
        c.add({f"f{t}"}, t)
        if c.due(t):
            break
        t += 0.1
    assert t == pytest.approx(15.0, abs=0.11)
    c.add(set(), 20.0)  # nothing new: no new burst
    assert len(c.take()) > 90 and not c.pending


@pytest.mark.parametrize(("paths", "apps", "render", "reload", "ignored"), [
    ({"src/tasks.py"}, ("worker",), False, False, ()),
    ({"src/app.py"}, ("web", "worker"), False, False, ()),  # a shared context: both
    ({"Dockerfile.web"}, ("web",), False, False, ()),
    ({"api/main.go"}, ("api",), False, False, ()),
    ({".dockerignore"}, ("web", "worker"), False, False, ()),
    ({"api/.dockerignore"}, ("api",), False, False, ()),
    ({"README.md"}, (), False, False, ("README.md",)),  # excluded by .dockerignore
    ({"k8s/overlays/dev/web.yaml"}, (), True, False, ()),
    ({"paless.env"}, (), True, True, ()),
    ({".git/index.lock", "src/tasks.py"}, ("worker",), False, False, ()),
])
def test_paths_to_apps(paths, apps, render, reload, ignored) -> None:
    change = classify(paths, CONTEXTS, ENV_FILES)
    assert (change.apps, change.render, change.reload, change.ignored) == (apps, render,
                                                                          reload, ignored)
    assert ".git/index.lock" not in change.paths
    assert change.anything is bool(apps or render)


def deployment(name: str, image: str, replicas: int = 1) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": name, "image": image}]}}}}


def test_only_changed_objects_roll_out() -> None:
    before = [deployment("web", "r/p-web:1"), deployment("worker", "r/p-worker:1")]
    after = [deployment("web", "r/p-web:2"), deployment("worker", "r/p-worker:1")]
    assert [o["metadata"]["name"] for o in changed_objects(after, before)] == ["web"]
    assert len(changed_objects(after, None)) == 2
    added = [*after, deployment("beat", "r/p-beat:1")]
    assert [o["metadata"]["name"] for o in changed_objects(added, before)] == ["web", "beat"]


def service(name: str, component: str, ports: list[dict], selector: dict | None = None) -> dict:
    return {"kind": "Service", "metadata": {"name": name, "labels": {
        "app.kubernetes.io/component": component}},
            "spec": {"selector": selector or {"app.kubernetes.io/component": component},
                     "ports": ports}}


def test_forward_targets_from_the_paless_services() -> None:
    objects = [
        service("web", "web", [{"name": "http", "port": 8000, "targetPort": "http"}]),
        service("minio", "minio", [{"name": "s3", "port": 9000, "targetPort": "s3"},
                                   {"name": "console", "port": 9001, "targetPort": "console"}]),
        service("minio-console", "minio", [{"name": "console", "port": 9001,
                                            "targetPort": "console"}]),
        service("postgres", "postgres", [{"port": 5432}]),
    ]
    web, console = forward_targets(objects)
    assert (web.name, web.service, web.port, web.target_port) == ("web", "web", 8000, "http")
    assert (console.name, console.service, console.port) == ("minio console", "minio", 9001)


def test_forward_targets_of_a_tree_with_other_names() -> None:
    objects = [service("paperless", "x", [{"port": 80, "targetPort": 8000}],
                       selector={"app": "paperless"})]
    objects[0]["metadata"]["labels"] = {"app": "paperless"}
    (web,) = forward_targets(objects)
    assert (web.port, web.target_port) == (80, 8000)
    headless = service("headless", "web", [{"port": 8000}])
    headless["spec"]["selector"] = {}
    assert forward_targets([headless]) == []


def pod(name: str, ready: bool, created: str, labels: dict | None = None,
        deleting: bool = False) -> dict:
    meta = {"name": name, "creationTimestamp": created,
            "labels": labels or {"app.kubernetes.io/component": "web"}}
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta,
            "spec": {"containers": [{"name": "web", "image": "localhost:5000/p-web:2",
                                     "ports": [{"name": "http", "containerPort": 8000}]}]},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_forward_pod_keeps_the_current_one_while_ready() -> None:
    target = ForwardTarget("web", "web", 8000, "http", {"app.kubernetes.io/component": "web"})
    old, new = pod("web-a", True, "2026-01-01T00:00:00Z"), pod("web-b", True,
                                                              "2026-01-01T00:01:00Z")
    assert forward_pod([old, new], target, "web-a") is old
    assert forward_pod([old, new], target, None) is new
    going = pod("web-a", True, "2026-01-01T00:00:00Z", deleting=True)
    assert forward_pod([going, new], target, "web-a") is new
    assert forward_pod([pod("web-c", False, "2026-01-01T00:02:00Z")], target) is None
    other = pod("db", True, "2026-01-01T00:03:00Z", labels={"app": "db"})
    assert forward_pod([other], target) is None
    assert pod_port(new, "http") == 8000 and pod_port(new, 9000) == 9000
    assert pod_port(new, "nope") is None


def test_app_of_pod_by_repository() -> None:
    repositories = {"localhost:5000/p-web": "web", "kind-registry:5000/p-web": "web"}
    assert app_of_pod(pod("web-a", True, "x"), repositories) == "web"
    elsewhere = pod("web-a", True, "x")
    elsewhere["spec"]["containers"][0]["image"] = "ghcr.io/acme/p-web:2"
    assert app_of_pod(elsewhere, repositories) is None
    ours = pod("web-a", True, "x")
    ours["spec"]["containers"][0]["image"] = "kind-registry:5000/p-web:abc@sha256:" + "0" * 64
    assert app_of_pod(ours, repositories) == "web"
