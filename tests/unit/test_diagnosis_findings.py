"""diagnosis.findings: the Finding type, its codes, and the Policy that decides what is fatal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from paless_deploy.core.apiviews import Node
from paless_deploy.core.diagnosis import findings
from paless_deploy.core.diagnosis.findings import (
    ANNOTATION_ALLOWED_RESTARTS,
    ANNOTATION_FAILURE_GRACE,
    CODES,
    Finding,
    NodeCapacity,
    Policy,
    PolicyOverrides,
    policy_overrides,
)
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.reporting.report import ErrorReport
from tests.unit.recorded import cluster_policy


def test_policy_reads_the_cluster_nodes():
    policy = cluster_policy()
    assert policy.node_count == 3
    assert policy.largest_node == NodeCapacity(4000, 16 * 2**30)


def test_node_capacity_in_any_quantity_spelling():
    nodes = [{"status": {"allocatable": {"cpu": "7500m", "memory": "1e9"}}},
             {"status": {"allocatable": {"cpu": "0.5", "memory": "1Pi"}}},
             {"status": {}}]
    policy = Policy().with_nodes(Node.of(n) for n in nodes)
    assert policy.largest_node == NodeCapacity(7500, 2**50)
    assert Policy().with_nodes([]) == Policy()


def test_annotations_tune_the_policy():
    dep = {"kind": "Deployment", "metadata": {"name": "web", "annotations": {
        ANNOTATION_ALLOWED_RESTARTS: "1"}}, "spec": {"template": {"metadata": {
            "annotations": {ANNOTATION_FAILURE_GRACE: "2m", ANNOTATION_ALLOWED_RESTARTS: "7"}}}}}
    p = Policy().for_object(dep)
    assert (p.allowed_restarts, p.grace_s) == (7, 120.0)
    assert policy_overrides(dep) == PolicyOverrides(7, 120.0)
    assert Policy().for_object({"kind": "Service", "metadata": {"name": "s"}}) == Policy()
    with pytest.raises(ConfigError, match="paless.io/allowed-restarts"):
        Policy().for_object({"kind": "Pod", "metadata": {"name": "x", "annotations": {
            ANNOTATION_ALLOWED_RESTARTS: "many"}}})


def test_bad_failure_grace_names_the_object():
    with pytest.raises(ConfigError) as err:
        policy_overrides({"kind": "Job", "metadata": {"name": "migrate"}, "spec": {"template": {
            "metadata": {"annotations": {ANNOTATION_FAILURE_GRACE: "soon"}}}}})
    assert "Job/migrate: annotation paless.io/failure-grace" in err.value.message


def test_decide_respects_tolerate_all():
    f = Finding("crash-loop", "Pod/p", "CrashLoopBackOff", "m", "h")
    assert Policy().decide(f, True).fatal
    assert not Policy().decide(f, False).fatal
    assert not Policy(tolerate_all=True).decide(f, True).fatal


def test_to_error_report_matches_the_json_contract():
    f = Finding("config-error", "Pod/p", "CreateContainerConfigError", "m", "h",
                commands=("kubectl a", "kubectl b"), evidence=("e",))
    report = f.to_error_report()
    assert isinstance(report, ErrorReport)
    assert (report.code, report.resource, report.reason) == (f.code, f.resource, f.reason)
    assert report.commands == list(f.commands)


def test_every_code_is_documented():
    assert findings.__doc__
    for code in CODES:
        assert f"`{code}`" in findings.__doc__


def test_grace_period():
    policy = Policy(grace_s=10)
    since = "2026-01-01T00:00:00Z"
    assert not policy.past_grace(since, datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC))
    assert policy.past_grace(since, datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC))
    assert policy.past_grace(since, datetime(2026, 1, 1, 0, 0, 10))  # naive: taken as UTC
    assert policy.past_grace(None, datetime(2026, 1, 1, tzinfo=UTC))  # unknown: state decides
    assert policy.past_grace(since, None)
