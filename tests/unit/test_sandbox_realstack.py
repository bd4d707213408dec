"""The real stack's pure parts: cache keys, what needs building, the recipes' build contexts,
the mirrors' hosts.toml and the CoreDNS objects."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from paless_sandbox.layout import BRIDGE_IP, CLUSTER_DNS_IP, REGISTRY_ADDR
from paless_sandbox.messages import SandboxError
from paless_sandbox.realstack import coredns, mirrors
from paless_sandbox.realstack.build import CONTEXTS, context_files
from paless_sandbox.realstack.cli import parser
from paless_sandbox.realstack.ensure import Options
from paless_sandbox.realstack.recipes import (
    BY_NAME,
    RECIPES,
    SID,
    TRIXIE,
    Found,
    classify,
    needs_build,
    recipe_key,
)

BUSYBOX = BY_NAME["busybox"]
CONTEXT = {"Dockerfile": b"ARG BASE\nFROM ${BASE}\n", "entry.sh*": b"#!/bin/sh\n"}


def test_the_key_is_a_function_of_the_context_the_base_and_the_go_recipe() -> None:
    key = recipe_key(BUSYBOX, CONTEXT)
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert recipe_key(BUSYBOX, dict(reversed(CONTEXT.items()))) == key  # order is not content
    assert recipe_key(BUSYBOX, {**CONTEXT, "Dockerfile": b"FROM scratch\n"}) != key
    assert recipe_key(BUSYBOX, {"Dockerfile": CONTEXT["Dockerfile"],  # the executable bit
                                "entry.sh": CONTEXT["entry.sh*"]}) != key
    assert recipe_key(replace(BUSYBOX, base=SID), CONTEXT) != key
    rclone = BY_NAME["rclone"]
    assert rclone.go is not None
    other_go = replace(rclone, go=replace(rclone.go, version="v1.71.2"))
    assert recipe_key(other_go, CONTEXT) != recipe_key(rclone, CONTEXT)


def test_a_go_binary_is_cached_by_its_recipe_and_its_own_main() -> None:
    go = BY_NAME["coredns"].go
    assert go is not None
    module = {"go/main.go": b"package main\n", "go/go.mod": b"module m\n"}
    slug = go.slug({**CONTEXT, **module})
    assert slug.startswith("coredns-v1.14.7-")
    assert go.slug({**module, "Dockerfile": b"FROM other\n"}) == slug  # the image's files: no
    assert go.slug({**module, "go/main.go": b"package main // changed\n"}) != slug


@pytest.mark.parametrize(("exists", "label", "found"), [
    (False, None, Found.MISSING),
    (True, None, Found.FOREIGN),
    (True, "k" * 16, Found.CURRENT),
    (True, "0" * 16, Found.STALE),  # built from another version of the recipe
])
def test_what_is_under_the_name_is_classified_by_its_label(exists, label, found) -> None:
    assert classify(BUSYBOX, "k" * 16, label, exists) is found


@pytest.mark.parametrize(("found", "rebuild", "builds"), [
    (Found.CURRENT, False, False),
    (Found.CURRENT, True, True), (Found.STALE, False, True),
    (Found.FOREIGN, False, True), (Found.MISSING, False, True),
])
def test_only_what_this_recipe_did_not_build_is_built(found, rebuild, builds) -> None:
    assert needs_build(found, rebuild) is builds


def test_every_recipe_has_a_context_whose_copies_it_holds() -> None:
    for recipe in RECIPES:
        dockerfile = (CONTEXTS / recipe.name / "Dockerfile").read_text()
        assert dockerfile.startswith("ARG BASE\nFROM ${BASE}"), recipe.name
        held = {p.rstrip("*").split("/")[0] for p in context_files(recipe)}
        if recipe.go:
            held.add(recipe.go.name)
        for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.MULTILINE):
            assert source.rstrip("/") in held, f"{recipe.name}: COPY {source}"


def test_the_debian_bases_say_where_packages_come_from() -> None:
    assert TRIXIE.sources_list() == (
        "deb http://deb.debian.org/debian trixie main\n"
        "deb http://deb.debian.org/debian trixie-updates main\n"
        "deb http://deb.debian.org/debian-security trixie-security main\n")
    assert SID.sources_list() == "deb http://deb.debian.org/debian sid main\n"
    assert TRIXIE.image == "paless-sandbox/debian:trixie-r3"


def test_docker_io_is_mirrored_at_the_registry_root_others_under_their_host() -> None:
    docker_io = mirrors.mirror_hosts_toml("docker.io", prefixed=False)
    assert f'[host."http://{REGISTRY_ADDR}"]' in docker_io
    assert "override_path" not in docker_io
    ghcr = mirrors.mirror_hosts_toml("ghcr.io", prefixed=True)
    assert f'[host."http://{REGISTRY_ADDR}/v2/ghcr.io"]' in ghcr
    assert "override_path = true" in ghcr
    assert ghcr.startswith("# written by scripts/sandbox (paless_sandbox.realstack)")
    assert set(mirrors.MIRRORED) == {"docker.io", "ghcr.io", "registry.k8s.io"}


def test_coredns_answers_on_the_bridge_behind_the_cluster_dns_ip() -> None:
    items = coredns.coredns_objects()["items"]
    assert isinstance(items, list)
    by_kind = {o["kind"]: o for o in items}
    assert by_kind["Service"]["spec"]["clusterIP"] == CLUSTER_DNS_IP
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["containers"][0]["image"] == BY_NAME["coredns"].reference
    assert coredns.corefile().count(f"bind {BRIDGE_IP}") == 2
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap"} <= set(by_kind)


def test_options_refuse_unknown_images_and_know_a_test_build() -> None:
    with pytest.raises(SandboxError, match="no real-stack image named nope"):
        Options(only=("nope",)).selected()
    assert [r.name for r in Options(only=("redis", "busybox")).selected()] == ["redis",
                                                                               "busybox"]
    assert not Options().is_test_build
    assert Options(push=False).is_test_build
    assert Options(tag_prefix="localtest/").is_test_build


def test_the_command_line_defaults_to_ensure() -> None:
    args = parser().parse_args(["ensure", "--only", "busybox,redis", "--no-push"])
    assert args.only == ("busybox", "redis") and args.no_push
    assert parser().parse_args([]).command is None
