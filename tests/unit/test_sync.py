"""dev's sync decisions on plain data: where a changed file lands in an app's image (its
own COPYs and its base's), what means a rebuild instead, how each process reloads, and
which synced changes a container still lacks.
"""

from __future__ import annotations

import pytest

from paless_deploy.core.images.dockerfile import image_chain
from paless_deploy.core.plan.sync import (
    AppImage,
    ImageSource,
    SyncFile,
    SyncLedger,
    app_image,
    container_process,
    destinations,
    plan_sync,
    reload_rule,
)

BASE = ("FROM python:3.12-slim\nWORKDIR /usr/src/paperless\n"
        "COPY requirements.txt ./\nRUN pip install -r requirements.txt\n"
        "COPY src/ /usr/src/paperless/src/\nCOPY --chown=1000:1000 static ./static\n"
        "ADD vendor.tar.gz /opt/\nCOPY --chmod=755 bin/* /usr/local/bin/\n"
        "COPY docker/*.conf /etc/paperless/\n"
        'CMD ["/init"]\n')
WEB = ("FROM localhost:5000/paless:latest\nENTRYPOINT []\n"
       'CMD ["granian", "--interface", "asginl", "paperless.asgi:application"]\n')
WORKER = ("FROM localhost:5000/paless:latest\nENTRYPOINT []\n"
          "CMD celery --app paperless worker --loglevel INFO\n")
API = "FROM node:20 AS build\nCOPY . /src\nRUN make\nFROM scratch\nCOPY --from=build /out /\n"


def source(dockerfile: str, text: str, context: str = "", base: str | None = None
           ) -> ImageSource:
    return ImageSource(dockerfile, context, tuple(image_chain(text, {}, None)), base)


SOURCES = {"paless": source("Dockerfile", BASE), "web": source("Dockerfile.web", WEB, "", "paless"),
           "worker": source("Dockerfile.worker", WORKER, "", "paless"),
           "api": source("api/Dockerfile", API, "api")}


def image(app: str) -> AppImage:
    return app_image(app, SOURCES)


@pytest.mark.parametrize(("path", "dest"), [
    ("src/documents/views.py", "/usr/src/paperless/src/documents/views.py"),
    ("src/manage.py", "/usr/src/paperless/src/manage.py"),
    ("static/app.css", "/usr/src/paperless/static/app.css"),  # relative to WORKDIR
    ("docker/a.conf", "/etc/paperless/a.conf"),  # a wildcard into a directory
])
def test_a_file_lands_where_the_bases_copy_puts_it(path: str, dest: str) -> None:
    landed, why = destinations(path, image("web"))
    assert why == "" and [d for d, _ in landed] == [dest]


@pytest.mark.parametrize(("path", "why"), [
    ("vendor.tar.gz", "ADD may unpack archives"),
    ("bin/tool", "COPY --chmod changes what is copied"),
    ("README.md", "no COPY of its image takes it"),
])
def test_files_no_copy_takes_verbatim_are_not_synced(path: str, why: str) -> None:
    landed, said = destinations(path, image("web"))
    assert landed == [] and why in said


def test_the_image_knows_its_process_and_its_dockerfiles() -> None:
    web, worker = image("web"), image("worker")
    assert (web.entrypoint, web.cmd) == ((), ("granian", "--interface", "asginl",
                                              "paperless.asgi:application"))
    assert worker.cmd == ("/bin/sh", "-c", "celery --app paperless worker --loglevel INFO")
    assert web.dockerfiles == {"Dockerfile", "Dockerfile.web"} and web.bases == ("paless",)
    assert image("paless").cmd == ("/init",)
    # a multi-stage build copies the build stage's output, not the sources: no rule
    assert image("api").rules == ()
    single = app_image("one", {"one": source("one/Dockerfile", "FROM scratch\nCOPY . /src\n",
                                             "one")})
    assert destinations("one/a/b.py", single)[0][0][0] == "/src/a/b.py"


CONTEXTS = {"paless": {"src/documents/views.py", "requirements.txt", "Dockerfile",
                       "vendor.tar.gz", "src/gone.py"},
            "web": {"src/documents/views.py", "requirements.txt", "Dockerfile.web"},
            "worker": {"src/documents/views.py", "requirements.txt", "Dockerfile.worker"}}
IMAGES = {a: image(a) for a in ("paless", "web", "worker")}


def test_a_source_change_is_synced_into_every_app_built_from_the_base() -> None:
    plan = plan_sync({"src/documents/views.py", "src/gone.py"}, IMAGES, CONTEXTS,
                     deleted={"src/gone.py"}, running={"web", "worker"})
    assert plan.apps == ("web", "worker") and not plan.why_not
    assert SyncFile("web", "src/gone.py", "/usr/src/paperless/src/gone.py", deleted=True) \
        in plan.files
    assert plan_sync({"src/documents/views.py"}, IMAGES, CONTEXTS, (), running={"web"}).apps \
        == ("web",)  # the base runs nowhere: nothing to sync into it


@pytest.mark.parametrize(("path", "why"), [
    ("Dockerfile", "is its Dockerfile"),  # the base's Dockerfile
    ("Dockerfile.web", "is its Dockerfile"),
    ("requirements.txt", "dependency manifest"),
    ("vendor.tar.gz", "ADD"),
])
def test_what_means_a_rebuild(path: str, why: str) -> None:
    plan = plan_sync({path, "src/documents/views.py"}, IMAGES, CONTEXTS, (), running={"web"})
    assert plan.files == () and why in plan.why_not["web"]


@pytest.mark.parametrize(("argv", "annotation", "signal", "name"), [
    (("granian", "--interface", "asginl"), None, "HUP", "granian"),
    (("/usr/local/bin/gunicorn", "app:wsgi"), None, "HUP", "gunicorn"),
    (("/bin/sh", "-c", "celery --app paperless worker"), None, "HUP", "celery worker"),
    (("celery", "--app", "paperless", "beat"), None, None, "celery beat"),
    (("sh", "serve.sh"), "signal:SIGUSR1", "USR1", "annotation"),
    (("granian",), "none", None, "annotation"),
])
def test_reload_rules(argv, annotation, signal, name) -> None:
    rule = reload_rule(argv, annotation)
    assert rule is not None and (rule.signal, rule.name) == (signal, name)


def test_a_process_without_a_rule_is_not_synced() -> None:
    assert reload_rule(("node", "server.js"), None) is None


def test_container_command_and_args_replace_the_images() -> None:
    assert container_process({}, ("/init",), ("web",)) == ("/init", "web")
    assert container_process({"command": ["celery"]}, ("/init",), ("x",)) == ("celery",)
    assert container_process({"args": ["beat"]}, ("celery",), ("worker",)) == ("celery", "beat")


def test_the_ledger_owes_synced_files_until_an_image_holds_them() -> None:
    ledger = SyncLedger()
    a = SyncFile("web", "src/a.py", "/app/a.py")
    b = SyncFile("web", "src/b.py", "/app/b.py")
    first = ledger.record([a])
    assert ledger.owed("web", "old") == [a]
    ledger.covers("new", first)  # planned after the first sync
    second = ledger.record([b])
    assert ledger.owed("web", "new") == [b] and ledger.owed("web", "old") == [a, b]
    ledger.settle("web", "new")
    assert ledger.owed("web", "old") == [b] and ledger.pending() == {"web": 1}
    ledger.covers("newer", second)
    ledger.settle("web", "newer")
    assert ledger.pending() == {} and ledger.owed("web", "old") == []


def _deployment(name: str, container: dict, annotations: dict | None = None) -> dict:
    return {"kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"annotations": annotations or {}},
                                  "spec": {"containers": [container],
                                           "initContainers": [{"name": "init",
                                                               "image": "r/p-web:1"}]}}}}


def test_container_rules_read_the_rendered_workloads() -> None:
    from paless_deploy.core.plan.sync import container_rules

    objects = [
        _deployment("web", {"name": "web", "image": "r/p-web:1"}),
        _deployment("worker", {"name": "worker", "image": "r/p-worker:1"}),
        _deployment("beat", {"name": "worker", "image": "r/p-worker:1",
                             "args": ["celery", "--app", "paperless", "beat"]}),
        _deployment("other", {"name": "x", "image": "nginx:1"}, {"paless.io/reload": "none"}),
        {"kind": "Job", "metadata": {"name": "migrate"},
         "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "r/p-web:1"}]}}}},
    ]
    apps = {"r/p-web:1": "web", "r/p-worker:1": "worker"}
    rules = container_rules(objects, IMAGES, apps.get)
    assert set(rules) == {("web", "web"), ("worker", "worker")}  # no Job, no init container
    assert rules[("web", "web")] is not None and rules[("web", "web")].name == "granian"
    # two templates run worker's container with different processes: no rule, no sync
    assert rules[("worker", "worker")] is None
