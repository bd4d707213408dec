"""The dry run's report of refusals (stages.validate): a kind the manifests' own CRD
defines is never blamed on a missing CRD."""

from __future__ import annotations

from paless_deploy.core.diagnosis.refusals import Answer, Refusal, refusal_of
from paless_deploy.core.errors import Refused
from paless_deploy.stages.validate import _defined_by_tree, _one_error


def unknown(kind: str, api_version: str) -> tuple[Refusal, dict[str, object]]:
    obj: dict[str, object] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
    return refusal_of("unknown-kind", Answer(404, "NotFound",
                                             f"The cluster does not serve {kind}.",
                                             resource=f"{kind}/x")), obj


def test_a_kind_no_crd_of_the_tree_defines_asks_for_the_crd() -> None:
    refusal, obj = unknown("Certificate", "cert-manager.io/v1")
    err = _one_error([_defined_by_tree(refusal, obj, {})], "Nothing was applied to ns.", Refused)
    assert err.code == "unknown-kind" and err.exit_code == 2
    assert "CRD" in err.hint
    assert "Nothing was applied to ns." in err.message


def test_a_kind_the_trees_crd_defines_names_that_crd_and_the_version() -> None:
    crds = {("example.com", "Widget"): "CustomResourceDefinition/widgets.example.com"}
    refusal, obj = unknown("Widget", "example.com/v2")
    err = _one_error([_defined_by_tree(refusal, obj, crds)], "Nothing more was applied to ns.",
                     Refused)
    assert "Install the CRD" not in err.hint
    assert ("CustomResourceDefinition/widgets.example.com of the manifests defines Widget but "
            "does not serve example.com/v2") in err.hint
    assert "Nothing more was applied to ns." in err.message


def test_only_an_unknown_kind_is_rewritten() -> None:
    crds = {("example.com", "Widget"): "CustomResourceDefinition/widgets.example.com"}
    _, obj = unknown("Widget", "example.com/v2")
    invalid = refusal_of("invalid", Answer(422, "Invalid", "spec.size: Invalid value",
                                           resource="Widget/x"))
    assert _defined_by_tree(invalid, obj, crds) == invalid
