"""The refusal table (core.diagnosis.refusals) on the API server's own words.

Each Status below was recorded from the sandbox's kube-apiserver 1.34 (quota, policy,
claims, immutable StatefulSet, RBAC, a namespace being deleted) or copied from the
Kubernetes sources where the sandbox cannot produce it (a webhook, a Role escalation).
The corpus (tests/corpus/cases/refusals.yaml) runs the same causes through the CLI.
"""

from __future__ import annotations

import pytest

from paless_deploy.core.diagnosis.refusals import RULES, Answer, changed_fields, classify
from paless_deploy.core.errors import ClusterError, ExitCode, Refused, whole_words


def answer(status: int, reason: str, message: str, **kw) -> Answer:
    return Answer(status, reason, message, **kw)


QUOTA = ('persistentvolumeclaims "big" is forbidden: exceeded quota: storage-cap, requested: '
         'requests.storage=5Gi, used: requests.storage=0, limited: requests.storage=1Gi')
POLICY = ('deployments.apps "tiny" is forbidden: ValidatingAdmissionPolicy \'replicas\' with '
          "binding 'replicas-binding' denied request: at most 2 replicas in this namespace")
GROW = ('persistentvolumeclaims "static" is forbidden: only dynamically provisioned pvc can be '
        'resized and the storageclass that provisions the pvc must support resize')
SHRINK = ('PersistentVolumeClaim "static" is invalid: spec.resources.requests.storage: '
          'Forbidden: field can not be less than status.capacity')
STS = ('StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec for '
       "fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
       "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
       "are forbidden")
RBAC = ('resourcequotas "mine" is forbidden: User "restricted" cannot patch resource '
        '"resourcequotas" in API group "" in the namespace "sandbox-restricted"')
RBAC_CLUSTER = ('persistentvolumes "pv" is forbidden: User "restricted" cannot get resource '
                '"persistentvolumes" in API group "" at the cluster scope')
ESCALATION = ('roles.rbac.authorization.k8s.io "admin" is forbidden: user "dev" (groups='
              '["system:authenticated"]) is attempting to grant RBAC permissions not currently '
              'held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}')
WEBHOOK = ('admission webhook "validate.kyverno.svc" denied the request: resource Deployment/'
           'team/web was blocked: require-requests: CPU and memory requests are required')
TERMINATING = ('configmaps "settings" is forbidden: unable to create new content in namespace '
               'feature-x because it is being terminated')


def sts(service: str, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"serviceName": service, "replicas": 1, **spec}}


def claim(size: str, capacity: str | None = None) -> dict:
    obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "static"},
           "spec": {"resources": {"requests": {"storage": size}}}}
    if capacity:
        obj["status"] = {"capacity": {"storage": capacity}}
    return obj


@pytest.mark.parametrize(("status", "message", "cause", "code", "exit_code"), [
    (403, QUOTA, "quota", "quota-exceeded", ExitCode.USAGE),
    (403, POLICY, "policy", "policy-denied", ExitCode.USAGE),
    (422, POLICY, "policy", "policy-denied", ExitCode.USAGE),
    (403, WEBHOOK, "webhook", "admission-denied", ExitCode.USAGE),
    (400, WEBHOOK, "webhook", "admission-denied", ExitCode.USAGE),
    (403, GROW, "claim-cannot-grow", "claim-cannot-grow", ExitCode.USAGE),
    (422, SHRINK, "claim-cannot-shrink", "claim-cannot-shrink", ExitCode.USAGE),
    (422, STS, "immutable", "immutable-field", ExitCode.USAGE),
    (403, RBAC, "rbac", "forbidden", ExitCode.CLUSTER),
    (403, RBAC_CLUSTER, "rbac", "forbidden", ExitCode.CLUSTER),
    (403, ESCALATION, "rbac", "forbidden", ExitCode.CLUSTER),
    (403, TERMINATING, "namespace-terminating", "namespace-terminating", ExitCode.FAILED),
    (403, 'pods "p" is forbidden: maximum cpu usage per Container is 1, but limit is 2',
     "admission", "admission-denied", ExitCode.USAGE),
    (422, 'ConfigMap "Settings" is invalid: metadata.name: Invalid value: "Settings"',
     "invalid", "invalid-manifest", ExitCode.USAGE),
    (422, ('Deployment.apps "web" is invalid: spec.template.spec.containers[1].volumeMounts.'
           "mountPropagation: Forbidden: Bidirectional mount propagation is available only to "
           "privileged containers"), "privileged-mount", "invalid-manifest", ExitCode.USAGE),
    (409, 'Apply failed with 1 conflict: conflict with "kubectl-edit": .spec.replicas',
     "conflict", "apply-conflict", ExitCode.FAILED),
    (404, "the server could not find the requested resource", "unknown-kind", "unknown-kind",
     ExitCode.USAGE),
])
def test_each_cause_has_its_row(status, message, cause, code, exit_code):
    found = classify(answer(status, "Forbidden", message, resource="Kind/x"))
    assert found is not None
    assert (found.cause, found.code, found.exit_code) == (cause, code, exit_code)
    assert found.fix and found.message


def test_only_rbac_is_exit_4():
    assert [r.cause for r in RULES if r.exit_code == ExitCode.CLUSTER] == ["rbac"]


def test_every_403_is_classified_and_5xx_are_not_refusals():
    assert classify(answer(403, "Forbidden", "something new the server says")) is not None
    assert classify(answer(503, "ServiceUnavailable", "etcdserver: leader changed")) is None
    assert classify(answer(404, "NotFound", 'namespaces "x" not found')) is None


def test_quota_names_the_quota_and_how_far_over():
    found = classify(answer(403, "Forbidden", QUOTA, resource="PersistentVolumeClaim/big",
                            namespace="team"))
    assert found.message == ("PersistentVolumeClaim/big: exceeded quota: storage-cap, requested: "
                             "requests.storage=5Gi, used: requests.storage=0, limited: "
                             "requests.storage=1Gi")
    assert "ResourceQuota storage-cap allows requests.storage=1Gi; used 0, requested 5Gi: 4Gi " \
           "over" in found.fix
    assert "kubectl describe resourcequota storage-cap -n team" in found.fix


def test_quota_of_several_resources_and_counts():
    message = ("pods \"p\" is forbidden: exceeded quota: compute, requested: requests.cpu=500m,"
               "requests.memory=1Gi, used: requests.cpu=1800m,requests.memory=1Gi, limited: "
               "requests.cpu=2,requests.memory=4Gi")
    fix = classify(answer(403, "Forbidden", message)).fix
    assert "allows requests.cpu=2; used 1800m, requested 500m: 300m over" in fix
    assert "requests.memory" not in fix  # not over: not named
    counts = ("configmaps \"b\" is forbidden: exceeded quota: cap, requested: count/configmaps=1,"
              " used: count/configmaps=2, limited: count/configmaps=2")
    assert ": 1 over" in classify(answer(403, "Forbidden", counts)).fix


def test_policy_names_the_policy_and_its_message():
    found = classify(answer(403, "Forbidden", POLICY, resource="Deployment/tiny"))
    assert found.message == ("Deployment/tiny: denied by ValidatingAdmissionPolicy replicas "
                             "(binding replicas-binding): at most 2 replicas in this namespace")
    assert "kubectl get validatingadmissionpolicy replicas -o yaml" in found.fix


def test_webhook_names_the_webhook():
    found = classify(answer(403, "Forbidden", WEBHOOK, resource="Deployment/web"))
    assert "denied by the admission webhook validate.kyverno.svc: resource Deployment" in \
        found.message


def test_a_claim_that_cannot_grow_says_what_to_do_with_the_data():
    found = classify(answer(403, "Forbidden", GROW, resource="PersistentVolumeClaim/static",
                            namespace="dev", sent=claim("20Mi"), live=claim("10Mi", "10Mi")))
    assert found.message.startswith("PersistentVolumeClaim/static cannot grow from 10Mi to 20Mi")
    assert found.field == "spec.resources.requests.storage"
    for words in ("Keep 10Mi in the manifests", "back up its data",
                  "kubectl delete pvc static -n dev", "created at 20Mi", "restore the data",
                  "allowVolumeExpansion: true"):
        assert words in found.fix


def test_a_claim_never_shrinks():
    found = classify(answer(422, "Invalid", SHRINK, resource="PersistentVolumeClaim/static",
                            sent=claim("5Mi"), live=claim("10Mi", "10Mi")))
    assert "cannot shrink from 10Mi to 5Mi" in found.message
    assert found.fix.startswith("A claim never shrinks in Kubernetes. Keep 10Mi")


def test_an_immutable_statefulset_field_is_named_and_the_message_is_whole():
    found = classify(answer(422, "Invalid", STS, resource="StatefulSet/db", namespace="dev",
                            sent=sts("db-headless"), live=sts("db", podManagementPolicy="x")))
    assert found.field == "spec.serviceName"
    assert found.message.startswith("StatefulSet/db: spec.serviceName cannot be changed on a "
                                    "live StatefulSet (spec.serviceName is db, the manifests "
                                    "say db-headless)")
    assert found.message.endswith("'persistentVolumeClaimRetentionPolicy' and "
                                  "'minReadySeconds' are forbidden")
    assert "kubectl delete statefulset db -n dev --cascade=orphan" in found.fix


def test_changed_fields_ignore_defaults_and_mutable_fields():
    template = [{"metadata": {"name": "data"},
                 "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]
    live_template = [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                      "metadata": {"name": "data"},
                      "spec": {"volumeMode": "Filesystem",
                               "resources": {"requests": {"storage": "1024Mi"}}},
                      "status": {"phase": "Pending"}}]
    sent = sts("db", replicas=3, volumeClaimTemplates=template)
    live = sts("db", replicas=1, volumeClaimTemplates=live_template,
               podManagementPolicy="OrderedReady")
    assert changed_fields(sent, live) == []
    bigger = [{"metadata": {"name": "data"},
               "spec": {"resources": {"requests": {"storage": "2Gi"}}}}]
    assert changed_fields(sts("db", volumeClaimTemplates=bigger), live) == [
        "spec.volumeClaimTemplates"]


def test_rbac_says_what_the_user_may_not_do():
    found = classify(answer(403, "Forbidden", RBAC, namespace="sandbox-restricted",
                            doing="applying ResourceQuota/mine"))
    assert found.message.startswith("Not authorised in namespace sandbox-restricted while "
                                    "applying ResourceQuota/mine: User \"restricted\" cannot")
    assert "kubectl auth can-i patch resourcequotas -n sandbox-restricted" in found.fix
    cluster = classify(answer(403, "Forbidden", RBAC_CLUSTER))
    assert "(cluster-wide)" in cluster.fix and "cluster-scoped objects" in cluster.fix


def test_the_error_is_exit_4_for_rbac_2_before_applying_1_while_applying():
    rbac = classify(answer(403, "Forbidden", RBAC)).error()
    assert isinstance(rbac, ClusterError) and rbac.exit_code == 4 and rbac.code == "forbidden"
    quota = classify(answer(403, "Forbidden", QUOTA))
    assert isinstance(quota.error(), Refused) and quota.error().exit_code == 2
    assert quota.error(applying=True).exit_code == 1
    assert classify(answer(403, "Forbidden", RBAC)).error(applying=True).exit_code == 4


def test_the_servers_words_are_never_cut_mid_word():
    long = "refused because " + " ".join(f"word{i}" for i in range(2000))
    found = classify(answer(422, "Invalid", long, resource="ConfigMap/c"))
    kept = found.message.split("... (")[0]
    assert kept.split()[-1].startswith("word") and long.startswith(kept.split(": ", 1)[1])
    assert whole_words("alpha beta gamma", 12) == "alpha beta... (6 more characters)"
    assert whole_words("short", 12) == "short"
