"""The build graph as in Paless's repository: the root Dockerfile builds the base
(`{REGISTRY}/{PROJECT_NAME}`), the Dockerfile.<name> images start FROM it, however spelled;
bases first, derived tags covering the base's tag, FROMs rewritten to the exact tag.

Pure: Dockerfile texts and fixture trees; base image IDs come from a recording stand-in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.dockerfile import copy_lines, from_lines, instructions
from paless_deploy.core.images.graph import (
    ProjectImages,
    build_graph,
    describe_bases,
    rewrite_froms,
)
from paless_deploy.stages.images import _plans
from paless_deploy.stages.project import load_config

APPS = ("paless", "web", "worker", "scheduler", "tools")
IMAGES = ProjectImages("localhost:5000", "paless", APPS)


@pytest.mark.parametrize(("image", "app"), [
    ("localhost:5000/paless:latest", "paless"),
    ("localhost:5000/paless", "paless"),
    ("127.0.0.1:5000/paless", "paless"),
    ("[::1]:5000/paless:dev", "paless"),
    ("localhost:5001/paless:latest", "paless"),  # another registry on this machine
    ("localhost:5000/paless-web:abc", "web"),
    ("127.0.0.1:5000/paless-tools", "tools"),
    ("localhost:5000/paless@sha256:" + "a" * 64, None),  # pinned by digest: someone's image
    ("paless:latest", None),  # Docker Hub's library/paless
    ("ghcr.io/paperless-ngx/paperless-ngx:2.18.4", None),
    ("registry.example.com/paless:latest", None),
    ("localhost:5000/other:latest", None),
])
def test_which_app_a_from_names(image: str, app: str | None) -> None:
    assert IMAGES.app_of(image) == app


def test_a_registry_with_a_path_and_aliases() -> None:
    images = ProjectImages("registry.example.com/team", "paless", APPS,
                           {"tools": "ghcr.io/acme/tools"})
    assert images.app_of("registry.example.com/team/paless:latest") == "paless"
    assert images.app_of("registry.example.com/paless:latest") is None
    assert images.app_of("localhost:5000/team/paless") == "paless"
    assert images.app_of("ghcr.io/acme/tools:1") == "tools"


PALESS = {
    "paless": "FROM python:3.12-slim\nCOPY src/ /usr/src/paperless/src/\n",
    "web": "FROM localhost:5000/paless:latest\nCMD [\"granian\"]\n",
    "worker": "ARG BASE=localhost:5000/paless:latest\nFROM ${BASE}\nCMD [\"celery\"]\n",
    "scheduler": "FROM --platform=$BUILDPLATFORM 127.0.0.1:5000/paless AS app\nCMD [\"beat\"]\n",
    "tools": ("FROM localhost:5000/paless-web:latest AS build\nRUN make\n"
              "FROM scratch\nCOPY --from=build /out /out\n"),
}


def test_bases_are_built_first_and_every_spelling_is_one_base() -> None:
    graph = build_graph(PALESS, {}, IMAGES)
    assert graph.needs("web") == graph.needs("worker") == graph.needs("scheduler") == ("paless",)
    assert graph.needs("tools") == ("web",)  # a multi-stage build FROM another app
    assert graph.needs("paless") == ()
    order = list(graph.order)
    assert order.index("paless") < min(order.index(a) for a in ("web", "worker", "scheduler"))
    assert order.index("web") < order.index("tools")
    assert graph.with_bases(["tools"]) == ["paless", "web", "tools"]
    assert graph.derived("paless") == [a for a in graph.order if a != "paless"]
    assert graph.bases == ["paless", "web"]
    assert describe_bases(graph, "web", {"paless": "localhost:5000/paless:abc"}) == (
        "built from paless (FROM localhost:5000/paless:latest -> localhost:5000/paless:abc); "
        "base of tools")
    assert graph.order == ("paless", "scheduler", "web", "tools", "worker")
    assert describe_bases(graph, "paless", {}) == "base of scheduler, web, tools, worker"
    assert describe_bases(graph, "worker", {}) == (
        "built from paless (FROM localhost:5000/paless:latest)")


def test_a_build_argument_decides_the_base() -> None:
    graph = build_graph(PALESS, {"worker": {"BASE": "python:3.12"}}, IMAGES)
    assert graph.needs("worker") == ()
    graph = build_graph({"worker": "ARG BASE\nFROM ${BASE:-localhost:5000/paless}\n"}, {},
                        IMAGES)
    assert graph.needs("worker") == ("paless",)


def test_an_app_built_from_its_own_image_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        build_graph({"paless": "FROM localhost:5000/paless:latest\n"}, {}, IMAGES,
                    {"paless": "Dockerfile"})
    assert info.value.code == "build-cycle"
    assert "Dockerfile (line 1) starts FROM localhost:5000/paless:latest" in info.value.message


def test_a_circle_of_apps_is_refused_naming_each_step() -> None:
    with pytest.raises(ConfigError) as info:
        build_graph({"web": "FROM localhost:5000/paless-worker\n",
                     "worker": "FROM scratch\nFROM localhost:5000/paless-web AS x\n"}, {}, IMAGES)
    message = info.value.message
    assert "circle" in message and "the image of worker" in message and "line 2" in message


def test_rewrite_names_the_exact_tag_and_keeps_everything_else() -> None:
    text = ("# syntax=docker/dockerfile:1\nARG BASE=localhost:5000/paless:latest\n"
            "FROM --platform=$BUILDPLATFORM ${BASE} AS app\nRUN echo \\\n  hi\n"
            "FROM app\nFROM localhost:5000/paless-web\n")
    graph = build_graph({"web": "FROM scratch\n", "worker": text}, {}, IMAGES)
    out = rewrite_froms(text, graph.uses["worker"], {"paless": "localhost:5000/paless:aaa",
                                                     "web": "localhost:5000/paless-web:bbb"})
    assert out == text.replace("${BASE} AS", "localhost:5000/paless:aaa AS").replace(
        "FROM localhost:5000/paless-web\n", "FROM localhost:5000/paless-web:bbb\n")
    assert next(f.image for f in from_lines(out, {})) == "localhost:5000/paless:aaa"


def test_instructions_join_continued_lines_and_drop_comments() -> None:
    text = "FROM a\nRUN one \\\n  # a comment\n  two\n# escape\nCOPY [\"s p\", \"/d\"]\n"
    found = instructions(text)
    assert [(i.keyword, [w.text for w in i.words], i.line) for i in found][:2] == [
        ("FROM", ["a"], 1), ("RUN", ["one", "two"], 2)]
    assert copy_lines(text)[0].sources == ("s p",)
    backtick = "# escape=`\nFROM a\nRUN x `\n  y\n"
    assert [w.text for w in instructions(backtick)[1].words] == ["x", "y"]


# -- tags: the base's content tag is part of the derived tag ------------------------------


def paless_tree(root: Path) -> Path:
    """Paless's layout, with web in a directory of its own so only its base ties it to src/."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("VERSION = 1\n")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    (root / ".dockerignore").write_text("web\n")
    (root / "web").mkdir()
    (root / "web" / "Dockerfile").write_text("FROM localhost:5000/paless:latest\nENV A=1\n")
    (root / "Dockerfile.worker").write_text(
        "ARG BASE_IMAGE=127.0.0.1:5000/paless\nFROM ${BASE_IMAGE}\n")
    return root


def test_a_change_of_the_base_changes_every_derived_tag(tmp_path: Path) -> None:
    root = paless_tree(tmp_path)
    config = load_config(root, [], {}, {}, validate=False)
    asked: list[str] = []

    def local_id(ref: str) -> str:
        asked.append(ref)
        return "sha256:stale-latest"

    web_app = next(a for a in _apps(config) if a.name == "web")
    plans = {p.app.name: p for p in _plans(config, [web_app], None, local_id)}
    assert list(plans) == ["paless", "web"]  # the base comes with the app built from it
    assert plans["web"].needs == ("paless",)
    assert plans["web"].dockerfile == f"FROM {plans['paless'].ref}\nENV A=1\n"
    assert plans["paless"].ref == f"localhost:5000/paless:{plans['paless'].tag}"
    assert asked == []  # never the ID of a local :latest: the base's content tag stands in
    (root / "src" / "app.py").write_text("VERSION = 2\n")
    again = {p.app.name: p for p in _plans(config, _apps(config), None, local_id)}
    assert again["paless"].tag != plans["paless"].tag
    assert again["web"].tag != plans["web"].tag  # web's own context did not change
    assert again["worker"].dockerfile is not None
    assert again["worker"].dockerfile.endswith(f"FROM {again['paless'].ref}\n")


def _apps(config):
    from paless_deploy.stages.project import project_apps

    return project_apps(config.project_dir, config.project_name)


def test_base_image_set_by_the_user_wins_over_a_dockerfile_default(tmp_path: Path) -> None:
    """BASE_IMAGE's built-in default does not override `ARG BASE_IMAGE=<our base>`; a value
    the user sets does (and then worker is built from no app of ours)."""
    root = paless_tree(tmp_path)
    config = load_config(root, [], {}, {}, validate=False)
    worker = next(a for a in _apps(config) if a.name == "worker")
    assert [p.app.name for p in _plans(config, [worker], None, lambda ref: None)] == [
        "paless", "worker"]
    config = load_config(root, [], {}, {"BASE_IMAGE": "python:3.12"}, validate=False)
    plans = _plans(config, [worker], None, lambda ref: "sha256:python")
    assert [(p.app.name, p.needs, p.dockerfile) for p in plans] == [("worker", (), None)]
