"""Image warm-up decisions (core.plan.warmup): which node, which images, which pod.

Pure: Node views built from Node objects as the API server returns them.
"""

from __future__ import annotations

from paless_deploy.core.apiviews import Node
from paless_deploy.core.plan.warmup import (
    NAME_PREFIX,
    WARM_UP_LABEL,
    candidate_nodes,
    warm_up_pods,
)

REAL = {"key": "sandbox.paless.io/real", "value": "true", "effect": "NoSchedule"}
APP_IMAGE = "registry.local/paless-web:abc123"


def node(name: str, *, labels: dict | None = None, taints: list | None = None,
         images: tuple[str, ...] = (), ready: bool = True, cordoned: bool = False) -> Node:
    return Node.of({
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if cordoned else {})},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "images": [{"names": list(images)}] if images else []}})


def deployment(name: str, image: str, **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}],
                                           **spec}}}}


def test_one_laptop_node_gets_one_pod_for_the_images_of_what_waits() -> None:
    laptop = [node("k3s", images=("postgres:18.1",))]
    objects = [(deployment("postgres", "postgres:18.1"), False),
               (deployment("web", APP_IMAGE), True),
               (deployment("worker", APP_IMAGE), True),
               (deployment("scheduler", "registry.local/paless-scheduler:abc123"), True)]
    pods = warm_up_pods(objects, laptop)
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"] == {"generateName": NAME_PREFIX, "labels": {WARM_UP_LABEL: "true"}}
    assert pod["spec"]["nodeName"] == "k3s" and pod["spec"]["restartPolicy"] == "Never"
    assert [c["image"] for c in pod["spec"]["containers"]] == [
        APP_IMAGE, "registry.local/paless-scheduler:abc123"]  # each image once
    for container in pod["spec"]["containers"]:
        assert container["command"] == ["sh", "-c", "exit 0"]  # no program of the image
        assert container["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"] == {"cpu": "10m", "memory": "16Mi"}


def test_nothing_when_the_node_has_the_images_or_nothing_waits() -> None:
    laptop = [node("k3s", images=(APP_IMAGE,))]
    assert warm_up_pods([(deployment("web", APP_IMAGE), True)], laptop) == []
    bare = [node("k3s")]
    assert warm_up_pods([(deployment("web", APP_IMAGE), False)], bare) == []
    # an image the first objects use is pulled by their own pods
    assert warm_up_pods([(deployment("a", APP_IMAGE), False),
                         (deployment("b", APP_IMAGE), True)], bare) == []


def test_a_pool_of_nodes_gets_nothing_a_pinned_template_gets_its_node() -> None:
    pool = [node("a"), node("b"), node("real", labels={"sandbox.paless.io/real": "true"},
                                         taints=[REAL])]
    assert warm_up_pods([(deployment("web", APP_IMAGE), True)], pool) == []
    pinned = deployment("web", APP_IMAGE, nodeSelector={"sandbox.paless.io/real": "true"},
                        tolerations=[{"key": "sandbox.paless.io/real", "operator": "Equal",
                                      "value": "true", "effect": "NoSchedule"}],
                        imagePullSecrets=[{"name": "pull"}])
    pods = warm_up_pods([(pinned, True)], pool)
    assert [p["spec"]["nodeName"] for p in pods] == ["real"]
    assert pods[0]["spec"]["tolerations"] == pinned["spec"]["template"]["spec"]["tolerations"]
    assert pods[0]["spec"]["imagePullSecrets"] == [{"name": "pull"}]


def test_candidates_follow_taints_selectors_readiness_and_cordons() -> None:
    tainted = node("t", taints=[REAL])
    plain, down, cordoned = node("p"), node("d", ready=False), node("c", cordoned=True)
    nodes = [tainted, plain, down, cordoned]
    assert [n.name for n in candidate_nodes({}, nodes) or []] == ["p"]
    tolerate_all = {"tolerations": [{"operator": "Exists"}]}
    assert [n.name for n in candidate_nodes(tolerate_all, nodes) or []] == ["t", "p"]
    by_key = {"tolerations": [{"key": "sandbox.paless.io/real", "operator": "Exists"}]}
    assert [n.name for n in candidate_nodes(by_key, nodes) or []] == ["t", "p"]
    wrong_value = {"tolerations": [{"key": "sandbox.paless.io/real", "value": "no"}]}
    assert [n.name for n in candidate_nodes(wrong_value, nodes) or []] == ["p"]
    soft = node("s", taints=[{"key": "k", "effect": "PreferNoSchedule"}])
    assert [n.name for n in candidate_nodes({}, [soft]) or []] == ["s"]
    assert [n.name for n in candidate_nodes({"nodeName": "t"}, nodes) or []] == ["t"]
    affinity: dict = {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}
    assert candidate_nodes(affinity, nodes) is None  # not evaluated: no warm-up
    assert warm_up_pods([(deployment("web", APP_IMAGE, **affinity), True)], [plain]) == []


def test_nothing_under_a_resource_quota_of_the_tree() -> None:
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
             "spec": {"hard": {"pods": "40"}}}
    objects = [(quota, False), (deployment("web", APP_IMAGE), True)]
    assert warm_up_pods(objects, [node("k3s")]) == []
    assert len(warm_up_pods(objects[1:], [node("k3s")])) == 1
