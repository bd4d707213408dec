"""The typed views of API objects: read from recorded objects, and from half-written or
mistyped ones without raising."""

from __future__ import annotations

import pytest

from paless_deploy.core.apiviews import (
    Condition,
    ContainerStatus,
    Node,
    PodView,
    Replicas,
    Terminated,
)
from tests.unit.recorded import all_of, load, one


def test_a_recorded_oom_killed_pod() -> None:
    pod = PodView.of(all_of(load("oom"), "Pod")[0])
    assert pod.name.startswith("worker-") and pod.phase == "Running" and pod.node_name
    (worker,) = pod.statuses
    assert worker == ContainerStatus(
        name="worker", image="127.0.0.1:5000/paless-worker:0123abcd", ready=False, restarts=1,
        running=True, started_at="2026-11-26T07:09:33Z",
        last_terminated=Terminated("OOMKilled", 137))
    ready = pod.condition("Ready")
    assert ready is not None and ready.false and ready.reason == "ContainersNotReady"
    assert pod.condition("Nope") is None


def test_a_recorded_unschedulable_pod() -> None:
    pod = PodView.of(all_of(load("unschedulable-selector"), "Pod")[0])
    scheduled = pod.condition("PodScheduled")
    assert scheduled is not None and scheduled.false and scheduled.reason == "Unschedulable"
    assert "affinity/selector" in scheduled.message and scheduled.since
    assert pod.statuses == () and pod.node_name == "" and pod.phase == "Pending"


def test_init_containers_come_first_and_say_so() -> None:
    pod = PodView.of({"metadata": {"name": "p"}, "status": {
        "initContainerStatuses": [{"name": "init", "state": {"terminated": {
            "reason": "Completed", "exitCode": 0}}}],
        "containerStatuses": [{"name": "app", "state": {"waiting": {
            "reason": "PodInitializing"}}}]}})
    assert [(s.name, s.init) for s in pod.statuses] == [("init", True), ("app", False)]
    assert pod.main_statuses[0].waiting and pod.main_statuses[0].waiting_reason == \
        "PodInitializing"
    assert pod.init_statuses[0].terminated == Terminated("Completed", 0)


@pytest.mark.parametrize("pod", [
    {},
    {"metadata": None, "spec": "x", "status": []},
    {"metadata": {"name": "p", "labels": None, "deletionTimestamp": "2026-01-01T00:00:00Z"},
     "spec": {"containers": "x", "volumes": [None, {"persistentVolumeClaim": {}}]},
     "status": {"conditions": [None, {"type": "Ready"}],
                "containerStatuses": [{"name": 3, "restartCount": "two", "ready": "yes",
                                       "state": {"terminated": {"exitCode": "1"}}}]}},
])
def test_a_half_written_or_mistyped_pod_never_raises(pod: dict[str, object]) -> None:
    view = PodView.of(pod)
    assert view.phase == "" and view.restart_policy == "Always"
    for status in view.statuses:
        assert status.restarts == 0 and status.ready is False
        assert status.terminated == Terminated("", None)
    if view.deleting:
        assert view.conditions == (Condition("Ready"),) and view.claims == ()


def test_replicas_of_a_recorded_rollout_and_of_an_unset_count() -> None:
    deployment = one(load("slow-rollout"), "Deployment")
    assert Replicas.of(deployment) == Replicas(desired=3, total=3, updated=3)
    assert Replicas.of({"spec": {}}).desired == 1  # unset: the API server's default
    assert Replicas.of({"spec": {"replicas": 0}}).desired == 0
    sts = Replicas.of({"status": {"currentRevision": "a", "updateRevision": "b"}})
    assert (sts.current_revision, sts.update_revision) == ("a", "b")


def test_a_recorded_node() -> None:
    node = Node.of(load("nodes")["items"][0])
    assert node.name == "sandbox-node-1" and node.architecture == "amd64"
    assert (node.cpu_m, node.memory) == (4000, 16 * 2**30)
    assert not node.k3s and not node.docker_runtime


def test_a_node_without_node_info_takes_its_architecture_from_the_label() -> None:
    node = Node.of({"metadata": {"name": "n", "labels": {"kubernetes.io/arch": "arm64"}}})
    assert node.architecture == "arm64" and node.images == frozenset()
    assert (node.cpu_m, node.memory, node.addresses) == (0, 0, ())
