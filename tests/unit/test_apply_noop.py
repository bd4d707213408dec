"""When may the apply of an object be skipped? Only when it would change nothing.

On objects recorded from the sandbox (tests/fixtures/recorded/applied.json, written by
record_applied.py): the body paless-deploy applied and the object as the server keeps it,
for the ten kinds of the benchmark's generated tree and the Paless stack's objects. Every
single change of the body, every removal of a field we applied and every drift of a live
value must make the apply run.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from paless_deploy.core.manifests.objdiff import apply_changes_nothing

PAIRS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "recorded" /
                    "applied.json").read_text())
MANAGER = "paless-deploy"
IDENTITY = (("kind",), ("metadata", "name"), ("metadata", "namespace"))  # who, not what


def ids(pair: dict) -> str:
    return f"{pair['body']['kind']}/{pair['body']['metadata']['name']}"


def leaves(obj: object, path: tuple = ()) -> Iterator[tuple]:
    """Paths of every scalar (and empty map or list) of a JSON document."""
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            yield from leaves(value, (*path, key))
    elif isinstance(obj, list) and obj:
        for i, value in enumerate(obj):
            yield from leaves(value, (*path, i))
    else:
        yield path


def at(obj: object, path: tuple) -> object:
    for step in path:
        obj = obj[step]  # type: ignore[index]
    return obj


def with_value(obj: dict, path: tuple, value: object) -> dict:
    copied = copy.deepcopy(obj)
    at(copied, path[:-1])[path[-1]] = value  # type: ignore[index]
    return copied


def without(obj: dict, path: tuple) -> dict:
    copied = copy.deepcopy(obj)
    parent = at(copied, path[:-1])
    if isinstance(parent, list):
        parent.pop(path[-1])
    else:
        del parent[path[-1]]  # type: ignore[attr-defined]
    return copied


def changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, dict):
        return {"added": "x"}
    if isinstance(value, list):
        return ["added"]
    return "x"


# Owned whole, with server defaults inside: a field left out of it could not be told from a
# default, so these are applied every time (as before), at no risk.
ALWAYS_APPLIED = {"StatefulSet": "volumeClaimTemplates (apiVersion, kind, volumeMode, status)"}


@pytest.mark.parametrize("pair", PAIRS, ids=ids)
def test_an_object_as_applied_needs_no_apply(pair: dict) -> None:
    expected = pair["body"]["kind"] not in ALWAYS_APPLIED
    assert apply_changes_nothing(pair["live"], pair["body"], MANAGER) is expected


@pytest.mark.parametrize("pair", PAIRS, ids=ids)
def test_any_changed_value_is_applied(pair: dict) -> None:
    body = pair["body"]
    for path in leaves(body):
        if path in IDENTITY or at(body, path) is None:
            continue
        changed_body = with_value(body, path, changed(at(body, path)))
        assert not apply_changes_nothing(pair["live"], changed_body, MANAGER), path


@pytest.mark.parametrize("pair", PAIRS, ids=ids)
def test_an_added_list_item_or_field_is_applied(pair: dict) -> None:
    body = pair["body"]
    for path in leaves(body):
        parent = at(body, path[:-1]) if path else None
        if isinstance(parent, list):
            grown = with_value(body, path[:-1], [*parent, copy.deepcopy(parent[-1])])
            assert not apply_changes_nothing(pair["live"], grown, MANAGER), path
    labelled = copy.deepcopy(body)
    labelled["metadata"].setdefault("labels", {})["added"] = "x"
    assert not apply_changes_nothing(pair["live"], labelled, MANAGER)


@pytest.mark.parametrize("pair", PAIRS, ids=ids)
def test_a_field_left_out_of_the_manifest_is_applied_so_the_server_removes_it(
        pair: dict) -> None:
    body = pair["body"]
    for path in leaves(body):
        if path in IDENTITY or at(body, path) is None:
            continue
        assert not apply_changes_nothing(pair["live"], without(body, path), MANAGER), path


@pytest.mark.parametrize("pair", PAIRS, ids=ids)
def test_a_drifted_live_value_is_corrected(pair: dict) -> None:
    body, live = pair["body"], pair["live"]
    for path in leaves(body):
        if path in IDENTITY or path[0] in ("stringData",) or at(body, path) is None:
            continue
        try:
            current = at(live, path)
        except (KeyError, IndexError, TypeError):
            continue  # (the server keeps it elsewhere: Secret stringData is data)
        drifted = with_value(live, path, changed(current))
        assert not apply_changes_nothing(drifted, body, MANAGER), path
        gone = without(live, path)
        assert not apply_changes_nothing(gone, body, MANAGER), path


def test_a_changed_secret_value_is_applied() -> None:
    (pair,) = [p for p in PAIRS if p["body"]["kind"] == "Secret"]
    body = copy.deepcopy(pair["body"])
    body["stringData"]["token"] = "new"
    assert not apply_changes_nothing(pair["live"], body, MANAGER)
    live = copy.deepcopy(pair["live"])
    live["data"]["token"] = "ZHJpZnQ="  # someone edited the data
    assert not apply_changes_nothing(live, pair["body"], MANAGER)


@pytest.mark.parametrize("pair", PAIRS[:3], ids=ids)
def test_without_our_apply_entry_in_its_version_the_apply_runs(pair: dict) -> None:
    live = copy.deepcopy(pair["live"])
    for entry in live["metadata"]["managedFields"]:
        if entry["manager"] == MANAGER:
            entry["manager"] = "kubectl"
    assert not apply_changes_nothing(live, pair["body"], MANAGER)
    live = copy.deepcopy(pair["live"])
    for entry in live["metadata"]["managedFields"]:
        entry["apiVersion"] = "example.com/v0"
    assert not apply_changes_nothing(live, pair["body"], MANAGER)
    live = copy.deepcopy(pair["live"])
    del live["metadata"]["managedFields"]
    assert not apply_changes_nothing(live, pair["body"], MANAGER)


def test_a_field_owned_by_us_but_left_out_is_found_through_list_keys() -> None:
    """A Service port is keyed by port and the protocol the server defaulted: the key is
    looked up in the live list, the field in the body's item at the same place."""
    (pair,) = [p for p in PAIRS if p["body"]["kind"] == "Service"
               and p["body"]["metadata"]["name"] == "web"]
    body = copy.deepcopy(pair["body"])
    port = body["spec"]["ports"][0]
    assert "protocol" not in port  # the server defaulted it; the key has it
    port.pop("name", None)
    assert not apply_changes_nothing(pair["live"], body, MANAGER)


class RecordingKube:
    """The adapter's calls apply_object makes, answered from one recorded object."""

    server, kubeconfig = "https://k", "/k"

    def __init__(self, live: dict) -> None:
        self.live = live
        self.calls: list[str] = []

    def kind(self, api_version: str, kind: str):
        from paless_deploy.core.manifests.kinds import kind_of

        return kind_of(api_version, kind)

    def read(self, kind, name, namespace):
        self.calls.append("GET")
        return self.live

    def apply(self, kind, body, namespace, **options):
        self.calls.append("PATCH" + (" dry-run" if options.get("dry_run") else ""))
        return self.live


class Listed:
    def __init__(self, live: dict) -> None:
        self.live = live

    def get(self, kind, name, namespace):
        return self.live


@pytest.mark.parametrize("pair", [p for p in PAIRS if p["body"]["kind"] in (
    "Deployment", "Secret", "Service")][:3], ids=ids)
def test_an_unchanged_listed_object_is_neither_read_nor_applied(pair: dict) -> None:
    from paless_deploy.core.reporting.report import ObjectAction
    from paless_deploy.stages.apply import apply_object

    kube = RecordingKube(pair["live"])
    applied = apply_object(kube, pair["body"], listed=Listed(pair["live"]))  # type: ignore[arg-type]
    assert kube.calls == [] and applied.action == ObjectAction.UNCHANGED and applied.live is pair["live"]

    changed_body = copy.deepcopy(pair["body"])
    changed_body["metadata"]["labels"]["added"] = "x"
    kube = RecordingKube(pair["live"])
    apply_object(kube, changed_body, listed=Listed(pair["live"]))  # type: ignore[arg-type]
    assert kube.calls == ["PATCH"]  # listed: not read again, but applied

    kube = RecordingKube(pair["live"])
    apply_object(kube, pair["body"], dry_run=True)  # type: ignore[arg-type]
    assert kube.calls == ["GET", "PATCH dry-run"]  # diff still asks the server
