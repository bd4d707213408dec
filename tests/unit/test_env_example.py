"""paless.env.example is complete and every overlay renders with its values.

The example is what a newcomer copies to paless.env: it must name every variable and
be enough, on its own, to render dev, staging and prod through the render stage.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paless_deploy.core.configuration.variables import VARIABLES
from paless_deploy.stages.project import load_config
from paless_deploy.stages.render import render_overlay

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "paless.env.example"
REFS = {app: f"localhost:5000/paless-{app}:0123456789ab" for app in ("web", "worker", "scheduler")}


def test_the_example_names_every_variable():
    text = EXAMPLE.read_text()
    named = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    missing = [v.name for v in VARIABLES if v.name not in named]
    assert not missing, f"paless.env.example lacks {missing}"


@pytest.mark.parametrize("overlay", ["dev", "staging", "prod"])
def test_every_overlay_renders_with_the_example_values(overlay):
    config = load_config(REPO, [EXAMPLE], {"OVERLAY": overlay}, environ={}, validate=False)
    assert config.source("POSTGRES_DB").startswith("paless.env.example")
    objects = render_overlay(REPO, overlay, config.namespace, config.substitution_values(), REFS)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "StatefulSet", "Job", "Secret", "ConfigMap"} <= kinds
    assert all(o["metadata"].get("namespace") in (None, config.namespace) for o in objects)
    text = repr(objects)
    left = [v.name for v in VARIABLES if v.substitutable and f"${{{v.name}}}" in text]
    assert not left, f"placeholders left unsubstituted: {left}"
