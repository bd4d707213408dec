"""Fixtures shared by the unit tests of the diagnosis."""

from __future__ import annotations

import pytest

from paless_deploy.core.diagnosis.findings import Policy
from tests.unit.recorded import cluster_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The default policy on the recorded three-node sandbox (see recorded.cluster_policy)."""
    return cluster_policy()
