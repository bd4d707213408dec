"""Findings: what went wrong, why, the fix, and whether it ends the deploy now (the Policy).

Codes (stable: the JSON report's `errors[].code`, listed in the README):

| code | detected from | fatal (default policy) |
| --- | --- | --- |
| `image-pull` | container waiting ErrImagePull / ImagePullBackOff / InvalidImageName | at once when the registry says not found / unauthorized / no such host / HTTP vs HTTPS, else after the grace period |
| `crash-loop` | container CrashLoopBackOff, or restarted after exiting non-zero | when restarts exceed `allowed_restarts` |
| `oom-killed` | container (last) terminated with reason OOMKilled | when restarts exceed `allowed_restarts` |
| `config-error` | container waiting CreateContainerConfigError (missing Secret/ConfigMap or key) | after the grace period (the object may arrive in the same apply) |
| `unschedulable` | PodScheduled=False Unschedulable / FailedScheduling | at once when the requests exceed the largest node's allocatable; after the grace period when no node matches selector/affinity/taints; otherwise tolerated (capacity may free up, a claim may bind) |
| `mount-failed` | FailedMount / FailedAttachVolume events of a pod whose containers did not start | after the grace period when a Secret/ConfigMap/claim is not found; otherwise tolerated |
| `not-ready` | containers running but not ready (readiness probe failing: Unhealthy events) | never: the progress deadline decides |
| `create-failed` | ReplicaSet / StatefulSet FailedCreate (quota, admission, missing ServiceAccount) | after the grace period |
| `progress-deadline` | Deployment Progressing=False ProgressDeadlineExceeded | at once |
| `job-failed` | Job Failed (or FailureTarget): BackoffLimitExceeded, DeadlineExceeded, ... | at once |
| `pvc-pending` | PVC Pending, no PV matches (FailedBinding) | never: the progress deadline decides |
| `provisioning-failed` | PVC ProvisioningFailed event (missing StorageClass, provisioner error) | after the grace period |
| `deadline` | the overall `--timeout` passed (`deadline_finding`) | at once |
| `missing-reference` | preflight: a Secret/ConfigMap/claim or key a pod template needs does not exist | at once |
| `missing-image` | preflight: an image of ours is not in the registry | at once |

A PVC Pending under a WaitForFirstConsumer StorageClass is not a finding at all.
`Policy(tolerate_all=True)` (the CLI's tolerate flag) makes every finding non-fatal: the
progress deadline then decides. Per object, the annotations `paless.io/allowed-restarts`
and `paless.io/failure-grace` (on the object or its pod template) tune the policy; a bad
value is a ConfigError found by `lint` before anything is applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.apiviews import Node
from paless_deploy.core.configuration.durations import parse_duration
from paless_deploy.core.diagnosis.eventlog import age
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.objects import nested, ref_of
from paless_deploy.core.manifests.podspec import template_annotations
from paless_deploy.core.reporting.report import ErrorReport, scrub

ANNOTATION_ALLOWED_RESTARTS = "paless.io/allowed-restarts"
ANNOTATION_FAILURE_GRACE = "paless.io/failure-grace"
ANNOTATION_SETTLE = "paless.io/settle"

CODES: Mapping[str, str] = {
    "image-pull": "an image cannot be pulled",
    "crash-loop": "a container keeps exiting and restarting",
    "oom-killed": "a container was killed for exceeding its memory limit",
    "config-error": "a container cannot be created: a Secret/ConfigMap or key is missing",
    "unschedulable": "no node can run the pod",
    "mount-failed": "a volume cannot be mounted",
    "not-ready": "containers run but never become ready",
    "create-failed": "a controller cannot create pods (quota, admission)",
    "progress-deadline": "a Deployment made no progress within its deadline",
    "job-failed": "a Job failed",
    "pvc-pending": "a volume claim is not bound",
    "provisioning-failed": "a volume cannot be provisioned",
    "deadline": "the overall deadline passed",
    "missing-reference": "a referenced Secret/ConfigMap/claim or key does not exist",
    "missing-image": "an image is not in the registry",
}


@dataclass(frozen=True)
class Finding:
    """One diagnosed failure: what, why, how to fix it, and whether it ends the deploy now."""

    code: str
    resource: str  # "Kind/name"
    reason: str  # the Kubernetes reason (ImagePullBackOff, FailedCreate, ...)
    message: str  # the cause, one sentence
    hint: str  # the fix
    commands: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    fatal: bool = True
    workload: str = ""  # "Kind/name" of the awaited object whose diagnosis found it

    def to_error_report(self) -> ErrorReport:
        """The design's JSON error object; the evidence goes along for CI reports (JUnit)."""
        return ErrorReport(code=self.code, resource=self.resource, reason=self.reason,
                           message=self.message, hint=self.hint, commands=list(self.commands),
                           evidence=list(self.evidence), workload=self.workload)

    def scrubbed(self, secrets: Sequence[str]) -> Finding:
        """The finding with every known secret value replaced in the text we did not write
        (container messages and logs end up in message and evidence)."""
        return replace(self, message=scrub(self.message, secrets), hint=scrub(self.hint, secrets),
                       evidence=tuple(scrub(line, secrets) for line in self.evidence))


@dataclass(frozen=True)
class NodeCapacity:
    """Allocatable CPU (millicores) and memory (bytes) of one node."""

    cpu_m: int
    memory: int


@dataclass(frozen=True)
class PolicyOverrides:
    """What an object's policy annotations ask for (None: not annotated)."""

    allowed_restarts: int | None = None
    grace_s: float | None = None
    settle_s: float | None = None


def policy_overrides(obj: ApiObject) -> PolicyOverrides:
    """The policy annotations of `obj` and its pod template (the template's win).

    A value that is not a whole number (restarts) or a duration (grace) is a ConfigError
    naming the object and the annotation: `lint` calls this at plan time for every object.
    """
    annotations = dict(nested(obj, "metadata", "annotations") or {})
    annotations.update(template_annotations(obj))
    restarts: int | None = None
    grace: float | None = None
    if ANNOTATION_ALLOWED_RESTARTS in annotations:
        text = str(annotations[ANNOTATION_ALLOWED_RESTARTS]).strip()
        if not text.isdigit():
            raise ConfigError(
                f"{ref_of(obj)}: annotation {ANNOTATION_ALLOWED_RESTARTS}={text!r} "
                "is not a whole number.",
                "Set it to the number of restarts to tolerate, e.g. \"5\".")
        restarts = int(text)
    if ANNOTATION_FAILURE_GRACE in annotations:
        grace = parse_duration(str(annotations[ANNOTATION_FAILURE_GRACE]),
                               f"{ref_of(obj)}: annotation {ANNOTATION_FAILURE_GRACE}")
    settle = None
    if ANNOTATION_SETTLE in annotations:
        settle = parse_duration(str(annotations[ANNOTATION_SETTLE]),
                                f"{ref_of(obj)}: annotation {ANNOTATION_SETTLE}", allow_zero=True)
    return PolicyOverrides(restarts, grace, settle)


@dataclass(frozen=True)
class Policy:
    """When a detected condition fails the deploy at once and when it is tolerated."""

    tolerate_all: bool = False
    allowed_restarts: int = 3
    grace_s: float = 10.0
    settle_s: float = 5.0  # a workload without readiness probes must run this long
    node_count: int = 1
    registry: str = ""
    largest_node: NodeCapacity | None = field(default=None)
    # the images of this project's apps (image -> app) a deploy applies; None: not known
    # (status), so a missing image is not said to be or not to be one of them
    app_images: tuple[tuple[str, str], ...] | None = None

    def app_of(self, image: str) -> str | None:
        """The app whose image this is, when the deploy knows it."""
        return dict(self.app_images or ()).get(image)

    def for_object(self, obj: ApiObject) -> Policy:
        """This policy tuned by the object's (or its pod template's) annotations.

        The pod template's annotations win over the object's own; a bad value is a
        ConfigError naming the object and the annotation.
        """
        overrides = policy_overrides(obj)
        policy = self
        if overrides.allowed_restarts is not None:
            policy = replace(policy, allowed_restarts=overrides.allowed_restarts)
        if overrides.grace_s is not None:
            policy = replace(policy, grace_s=overrides.grace_s)
        if overrides.settle_s is not None:
            policy = replace(policy, settle_s=overrides.settle_s)
        return policy

    def with_nodes(self, nodes: Iterable[Node]) -> Policy:
        """This policy with the node count and the largest allocatable of the cluster."""
        caps = [NodeCapacity(n.cpu_m, n.memory) for n in nodes]
        if not caps:
            return self
        return replace(self, node_count=len(caps), largest_node=NodeCapacity(
            max(c.cpu_m for c in caps), max(c.memory for c in caps)))

    def past_grace(self, since: str | None, now: datetime | None) -> bool:
        """Whether the grace period since `since` (an API timestamp) is over at `now`;
        True when either is unknown (then the state alone decides)."""
        return age(since, now) >= self.grace_s

    def decide(self, finding: Finding, fatal: bool) -> Finding:
        """The finding with its fatal flag, unless every failure is tolerated."""
        return replace(finding, fatal=fatal and not self.tolerate_all)
