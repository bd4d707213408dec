"""Objects recorded from the sandbox (tests/fixtures/recorded, written by its record.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from paless_deploy.core.apiviews import Node
from paless_deploy.core.diagnosis.findings import Policy

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
LATER = datetime(2030, 1, 1, tzinfo=UTC)  # long after every recording: grace periods passed


def load(case: str) -> dict:
    """One recorded case: {"namespace", "items", "events", maybe "storageClasses"}."""
    return json.loads((RECORDED / f"{case}.json").read_text())


def one(doc: dict, kind: str) -> dict:
    """The single object of `kind` in a recorded case."""
    (obj,) = [o for o in doc["items"] if o["kind"] == kind]
    return obj


def all_of(doc: dict, kind: str) -> list[dict]:
    """Every object of `kind` in a recorded case."""
    return [o for o in doc["items"] if o["kind"] == kind]


def cluster_policy() -> Policy:
    """The default policy on the recorded three-node sandbox, our registry at 127.0.0.1:5000."""
    nodes = json.loads((RECORDED / "nodes.json").read_text())["items"]
    return Policy(registry="127.0.0.1:5000").with_nodes(Node.of(n) for n in nodes)
