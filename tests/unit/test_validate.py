"""The dry run's report of refusals (stages.validate): a kind the manifests' own CRD
defines is never blamed on a missing CRD."""

from __future__ import annotations

from paless_deploy.stages.validate import Refusal, _invalid_error


def unknown(kind: str, api_version: str) -> Refusal:
    return Refusal(f"{kind}/x", "unknown-kind", f"The cluster does not serve {kind}.",
                   api_version=api_version, kind=kind)


def test_a_kind_no_crd_of_the_tree_defines_asks_for_the_crd() -> None:
    err = _invalid_error([unknown("Certificate", "cert-manager.io/v1")], "ns",
                         "Nothing was applied", {})
    assert err.code == "invalid-manifest" and err.exit_code == 2
    assert "Install the CRD or controller that serves Certificate" in err.hint
    assert "Nothing was applied to ns." in err.message


def test_a_kind_the_trees_crd_defines_names_that_crd_and_the_version() -> None:
    crds = {("example.com", "Widget"): "CustomResourceDefinition/widgets.example.com"}
    err = _invalid_error([unknown("Widget", "example.com/v2")], "ns", "Nothing more was applied",
                         crds)
    assert "Install the CRD" not in err.hint
    assert ("CustomResourceDefinition/widgets.example.com of the manifests defines Widget but "
            "does not serve example.com/v2") in err.hint
    assert "Nothing more was applied to ns." in err.message
