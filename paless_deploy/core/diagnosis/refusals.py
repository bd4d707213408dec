"""The API server's refusals, classified by what the server says, not by the status code.

A 403 is RBAC denying the user only when the server says so (`User "x" cannot ...`); a
quota, an admission policy or webhook, a claim whose class cannot expand and a namespace
being deleted are 403s too, and a policy may answer 422 or 400. `RULES` is the table: one
row per cause, with its error code, its exit code, how to recognise the server's words,
and the one paragraph that names the object, the field and the fix. Only RBAC is exit 4;
the others are refusals of the manifests (exit 2 when found before anything is applied;
a refusal met while applying, after other objects were applied, is exit 1).

Pure: it reads the server's Status (and, when known, the object sent and the object
live), and returns a `Refusal`; `adapters.kube.cluster_errors`, the dry run, `diff` and
the apply call it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from paless_deploy.core.apitypes import ApiObject, JsonValue
from paless_deploy.core.errors import (
    ClusterError,
    ExitCode,
    PalessError,
    Refused,
    whole_words,
)
from paless_deploy.core.manifests.objects import nested
from paless_deploy.core.manifests.quantities import QuantityError, format_bytes, parse_quantity

SERVER_WORDS = 2000  # a server's message longer than this is cut, at a word boundary


@dataclass(frozen=True)
class Answer:
    """What the API server answered to one request it refused, and what we know around it."""

    status: int
    reason: str  # the Status reason: Forbidden, Invalid, Conflict, ...
    message: str  # the Status message, whole
    causes: tuple[Mapping[str, str], ...] = ()  # details.causes: field, reason, message
    resource: str = ""  # Kind/name of the object concerned ("" when not about one)
    namespace: str = ""
    sent: ApiObject | None = None  # the object sent (rendered)
    live: ApiObject | None = None  # the object as the cluster has it, when read before
    doing: str = ""  # what the tool was doing ("applying Deployment/web")
    autoscaler: str | None = None  # an HPA scaling the object (for a conflict on replicas)

    @property
    def words(self) -> str:
        """The server's reason without its `<resource> "<name>" is forbidden: ` preamble,
        whole (cut only past SERVER_WORDS characters, and then at a word boundary)."""
        text = _PREAMBLE.sub("", self.message.strip(), count=1)
        return whole_words(text, SERVER_WORDS)


_PREAMBLE = re.compile(r'^[\w.-]+ "[^"]*" is (?:forbidden|invalid): ')


@dataclass(frozen=True)
class Refusal:
    """One refusal, classified: which row, and the paragraph for the user."""

    cause: str
    code: str
    exit_code: ExitCode  # when found before anything is applied
    resource: str
    field: str  # the field the server or the comparison names ("" when none)
    message: str  # the object, the field and the server's full reason
    fix: str
    reason: str  # the server's Status reason

    def error(self, applying: bool = False) -> PalessError:
        """The error to raise: exit 4 for RBAC (ClusterError), else exit 2 before
        anything is applied, 1 when other objects of this run were applied already."""
        if self.exit_code == ExitCode.CLUSTER:
            return ClusterError(self.message, self.fix, code=self.code, resource=self.resource,
                                reason=self.reason)
        exit_code = ExitCode.FAILED if applying else self.exit_code
        return Refused(self.message, self.fix, code=self.code, resource=self.resource,
                       reason=self.reason, exit_code=exit_code)


@dataclass(frozen=True)
class RefusalRule:
    """One row of the table: a cause the server names, and how to say it."""

    cause: str
    code: str
    exit_code: ExitCode
    says: str  # what the server says, for the documentation's table
    matches: Callable[[Answer], re.Match[str] | bool | None]
    explain: Callable[[Answer, re.Match[str] | None], tuple[str, str, str]]  # field, what, fix


# --- RBAC -----------------------------------------------------------------------------------

_RBAC = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\w+) resource "(?P<resource>[^"]+)"'
                   r'(?: in API group "(?P<group>[^"]*)")?'
                   r'(?: (?:in the namespace "(?P<namespace>[^"]+)"|at the cluster scope))?')
_ESCALATION = re.compile(r'user "(?P<user>[^"]*)" \(groups=.*\) is attempting to grant RBAC '
                         r"permissions not currently held")


def _rbac(answer: Answer) -> re.Match[str] | None:
    if answer.status != 403:
        return None
    return _RBAC.search(answer.message) or _ESCALATION.search(answer.message)


def _explain_rbac(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    where = f" in namespace {answer.namespace}" if answer.namespace else ""
    doing = f" while {answer.doing}" if answer.doing else ""
    what = f"Not authorised{where}{doing}: {answer.words}"
    if match is None or "verb" not in match.groupdict():
        return "", what, ("The kubeconfig's user may not grant the permissions this Role or "
                          "RoleBinding names: apply it with a user who holds them (an admin), "
                          "or remove it from the manifests.")
    verb, resource = match["verb"], match["resource"]
    scope = (f"-n {match['namespace']}" if match["namespace"] else
             "(cluster-wide)" if "cluster scope" in match.group(0) else "")
    fix = (f"The kubeconfig's user may not {verb} {resource} {scope}: use a kubeconfig whose "
           f"user may (`kubectl auth can-i {verb} {resource} {scope}` says), ask an admin for a "
           "Role or ClusterRole that grants it, or deploy into a namespace you are allowed to "
           "write (-n)" + (" or remove the cluster-scoped objects from the manifests"
                           if not match["namespace"] else "") + ".")
    return "", what, " ".join(fix.split())


# --- admission -----------------------------------------------------------------------------

_WEBHOOK = re.compile(r'admission webhook "(?P<name>[^"]+)" denied the request:?\s*(?P<why>.*)',
                      re.DOTALL)
_POLICY = re.compile(r"ValidatingAdmissionPolicy '(?P<name>[^']+)' with binding "
                     r"'(?P<binding>[^']+)' denied request:\s*(?P<why>.*)", re.DOTALL)


def _explain_webhook(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    assert match is not None
    name, why = match["name"], match["why"].strip() or "(no message)"
    what = f"{_subject(answer)}: denied by the admission webhook {name}: {why}"
    fix = (f"The cluster's admission webhook {name} refuses the object as written: change the "
           "manifest so that it passes (its words above say what it wants), or ask the "
           "cluster's admin about the webhook (`kubectl get validatingwebhookconfigurations,"
           "mutatingwebhookconfigurations` lists them).")
    return "", what, fix


def _explain_policy(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    assert match is not None
    name, why = match["name"], match["why"].strip() or "(no message)"
    what = (f"{_subject(answer)}: denied by ValidatingAdmissionPolicy {name} (binding "
            f"{match['binding']}): {why}")
    fix = (f"The cluster's policy {name} refuses the object as written: change the manifest so "
           f"that it passes (\"{why}\"), or ask the cluster's admin about the policy "
           f"(`kubectl get validatingadmissionpolicy {name} -o yaml` shows its rules).")
    return "", what, fix


def _explain_admission(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    what = f"{_subject(answer)}: refused by the API server's admission: {answer.words}"
    fix = ("An admission plugin of the cluster refuses the object (this is not about your "
           "rights): change the manifest so that it passes, or ask the cluster's admin.")
    return "", what, fix


# --- quota ----------------------------------------------------------------------------------

_QUOTA = re.compile(r"exceeded quota: (?P<name>[^,]+), requested: (?P<requested>.*?), "
                    r"used: (?P<used>.*?), limited: (?P<limited>[^\s]*)")


def _explain_quota(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    assert match is not None
    name = match["name"].strip()
    requested, used, limited = (_pairs(match[k]) for k in ("requested", "used", "limited"))
    said = {resource: (hard, _over(used.get(resource, "0"), requested.get(resource, "0"),
                                   hard, resource)) for resource, hard in limited.items()}
    if any(over for _, over in said.values()):  # name only the resources that are over
        said = {resource: pair for resource, pair in said.items() if pair[1]}
    parts = [f"ResourceQuota {name} allows {resource}={hard}; used {used.get(resource, '0')}, "
             f"requested {requested.get(resource, '0')}" + (f": {over} over" if over else "")
             for resource, (hard, over) in said.items()]
    ns = f" -n {answer.namespace}" if answer.namespace else ""
    what = f"{_subject(answer)}: {answer.words}"
    fix = ("; ".join(parts) + ". Ask for less in the manifests, delete what uses the quota "
           f"in the namespace, or have an admin raise it (`kubectl describe resourcequota "
           f"{name}{ns}` shows what it counts).")
    return "", what, fix


def _pairs(text: str) -> dict[str, str]:
    """`requests.cpu=2,requests.memory=1Gi` -> {resource: quantity}."""
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            pairs[key] = value
    return pairs


def _over(used: str, requested: str, hard: str, resource: str) -> str:
    """How far `used + requested` passes `hard`, said as the quota would ("4Gi", "500m")."""
    try:
        excess = parse_quantity(used) + parse_quantity(requested) - parse_quantity(hard)
    except QuantityError:
        return ""
    if excess <= 0:
        return ""
    if any(word in resource for word in ("storage", "memory")):
        return format_bytes(int(excess.to_integral_value()))
    if "cpu" in resource and excess != excess.to_integral_value():
        return f"{int((excess * 1000).to_integral_value())}m"
    return str(excess.normalize() if excess != excess.to_integral_value() else int(excess))


# --- claims ---------------------------------------------------------------------------------

_CANNOT_GROW = "only dynamically provisioned pvc can be resized"
_CANNOT_SHRINK = "field can not be less than status.capacity"


def _sizes(answer: Answer) -> tuple[str, str]:
    """(the claim's size now, the size the manifests ask for)."""
    path = ("spec", "resources", "requests", "storage")
    now = nested(answer.live, "status", "capacity", "storage") or nested(answer.live, *path)
    return str(now or "its current size"), str(nested(answer.sent, *path) or "a new size")


def _claim_fix(answer: Answer, now: str, wanted: str) -> str:
    name = answer.resource.split("/", 1)[-1]
    ns = f" -n {answer.namespace}" if answer.namespace else ""
    return (f"Keep {now} in the manifests (the data stays as it is). For a volume of {wanted}, "
            "back up its data first (`kubectl cp` from a pod that mounts it, or the "
            f"database's own dump), delete the claim (`kubectl delete pvc {name}{ns}`, or "
            "`paless-deploy destroy --delete-data`; a static PersistentVolume must be made "
            f"{wanted} too), deploy again so that it is created at {wanted}, and restore the "
            "data.")


def _explain_grow(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    now, wanted = _sizes(answer)
    what = (f"{_subject(answer)} cannot grow from {now} to {wanted}: its volume was not "
            "provisioned by a StorageClass that allows expansion (the server: "
            f"{answer.words})")
    fix = (_claim_fix(answer, now, wanted) + " Or use a StorageClass with "
           "allowVolumeExpansion: true for new claims.")
    return "spec.resources.requests.storage", what, fix


def _explain_shrink(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    now, wanted = _sizes(answer)
    what = (f"{_subject(answer)} cannot shrink from {now} to {wanted} (the server: "
            f"{answer.words})")
    return ("spec.resources.requests.storage", what,
            "A claim never shrinks in Kubernetes. " + _claim_fix(answer, now, wanted))


# --- immutable fields -----------------------------------------------------------------------

_IMMUTABLE = re.compile(r"field is immutable|is immutable|updates to \w+ spec for fields other "
                        r"than|spec: Forbidden: spec is immutable")
# What a live StatefulSet's spec may change; any other field is fixed at creation.
STATEFULSET_MUTABLE = frozenset({"replicas", "ordinals", "template", "updateStrategy",
                                 "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy",
                                 "minReadySeconds"})


def _immutable(answer: Answer) -> bool:
    return answer.status == 422 and bool(_IMMUTABLE.search(answer.message))


def changed_fields(sent: ApiObject | None, live: ApiObject | None,
                   mutable: frozenset[str] = STATEFULSET_MUTABLE) -> list[str]:
    """The spec fields the manifests set to something else than the live object holds,
    among those a live object cannot change (defaults the server added do not count)."""
    sent_spec, live_spec = nested(sent, "spec") or {}, nested(live, "spec") or {}
    return [f"spec.{key}" for key, value in sent_spec.items()
            if key not in mutable and not _holds(live_spec.get(key), value)]


def _holds(live: JsonValue, want: JsonValue) -> bool:
    """`live` has every field of `want` with the same value (defaults may be added)."""
    if isinstance(want, Mapping):
        return isinstance(live, Mapping) and all(_holds(live.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(live, list) and len(live) == len(want)
                and all(_holds(a, b) for a, b in zip(live, want, strict=True)))
    if isinstance(want, str) and isinstance(live, str) and want != live:
        return _same_quantity(live, want)
    return bool(live == want)


def _same_quantity(a: str, b: str) -> bool:
    try:
        return parse_quantity(a) == parse_quantity(b)
    except QuantityError:
        return False


def _explain_immutable(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    kind, _, name = answer.resource.partition("/")
    fields = changed_fields(answer.sent, answer.live) if kind == "StatefulSet" else []
    fields = fields or [c.get("field", "") for c in answer.causes if c.get("field")]
    values = []
    for path in fields[:4]:
        was, wants = _value_at(answer.live, path), _value_at(answer.sent, path)
        if was is not None and wants is not None and len(was + wants) < 120:
            values.append(f"{path} is {was}, the manifests say {wants}")
    named = ", ".join(fields[:4]) or "a field"
    now = f" ({'; '.join(values)})" if values else ""
    what = (f"{answer.resource}: {named} cannot be changed on a live {kind or 'object'}{now}; "
            f"the server: {answer.words}")
    ns = f" -n {answer.namespace}" if answer.namespace else ""
    if kind == "StatefulSet":
        fix = (f"Put the old value back in the manifests; or delete the StatefulSet but not its "
               f"pods and claims (`kubectl delete statefulset {name}{ns} --cascade=orphan`) and "
               "deploy again: the new StatefulSet adopts its pods and claims, and the data "
               "stays (claims keep the size they were made with).")
    elif kind == "PersistentVolumeClaim":
        fix = ("Put the old value back in the manifests; a claim's spec is fixed once it is "
               "made (only its size may grow, where its class allows it). To change it, back "
               "up its data, delete the claim, deploy again and restore the data.")
    else:
        fix = (f"Put the old value back in the manifests, or delete the object (`kubectl delete "
               f"{kind.lower()} {name}{ns}`) and deploy again so that it is created anew.")
    return (fields[0] if fields else ""), what, fix


def _value_at(obj: ApiObject | None, path: str) -> str | None:
    value = nested(obj, *path.split("."))
    if value is None or isinstance(value, (Mapping, list)):
        return None
    return str(value)


# --- the rest -------------------------------------------------------------------------------

_TERMINATING = re.compile(r"unable to create new content in namespace (?P<ns>\S+) because it "
                          r"is being terminated")


def _explain_terminating(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    assert match is not None
    ns = match["ns"]
    what = f"Namespace {ns} is being deleted: the server refuses new objects in it ({answer.words})"
    fix = (f"Wait until it is gone (`kubectl get namespace {ns}`) and deploy again, or deploy "
           "into another namespace (-n).")
    return "", what, fix


_CONFLICT_MANAGERS = re.compile(r'conflict with "([^"]+)"')


def _explain_conflict(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    managers = sorted(set(_CONFLICT_MANAGERS.findall(answer.message)))
    if not managers:
        return "", f"{_subject(answer)}: {answer.words}", (
            "The object changed while it was written: run the command again.")
    who = ", ".join(managers)
    if "kube-controller-manager" in managers and ".spec.replicas" in answer.message:
        scaler = (f"HorizontalPodAutoscaler/{answer.autoscaler}" if answer.autoscaler
                  else "a HorizontalPodAutoscaler (not in the manifests)")
        return "spec.replicas", (
            f"{answer.resource}: spec.replicas is owned by kube-controller-manager because "
            f"{scaler} scales it: {answer.message}"), (
            "Leave spec.replicas to the autoscaler: remove it from the manifest (set the "
            "count used at creation with the annotation paless.io/initial-replicas), or "
            "re-run with --force-conflicts after the command to take it back once.")
    return "", f"{answer.resource}: fields we apply are owned by {who}: {answer.message}", (
        "Someone changed them with another tool (e.g. `kubectl edit`/`scale`). Re-run the "
        "command with --force-conflicts after it (`paless-deploy all --force-conflicts`) to "
        "take them over, or remove them from the manifests.")


def _explain_invalid(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    fields = [f"{c.get('field')}: {c.get('message')}" for c in answer.causes if c.get("field")]
    words = answer.words
    if fields and not all(f in answer.message for f in fields):
        words = f"{words} ({'; '.join(fields)})"
    field = next((str(c.get("field")) for c in answer.causes if c.get("field")), "")
    return field, f"{_subject(answer)}: {words}", (
        "Fix each field named (the server's words say which and why); `paless-deploy render` "
        "shows what was sent.")


_PRIVILEGED_MOUNT = "Bidirectional mount propagation is available only to privileged containers"


def _explain_privileged_mount(answer: Answer, match: re.Match[str] | None
                              ) -> tuple[str, str, str]:
    field, what, _ = _explain_invalid(answer, match)
    return field, what, (
        "A container whose mount propagates back to the node (mountPropagation: "
        "Bidirectional, as the rclone sidecar's FUSE mount of the bucket does) must be "
        "privileged: set securityContext.privileged: true on it, as k8s/base does; a "
        "container that only reads such a mount uses HostToContainer.")


def _explain_unknown_kind(answer: Answer, match: re.Match[str] | None) -> tuple[str, str, str]:
    kind = answer.resource.split("/", 1)[0] or "this kind"
    return "", f"{_subject(answer)}: {answer.words}", (
        f"Install the CRD or controller that serves {kind} (`kubectl api-resources` lists what "
        "the cluster serves), or remove the object from the manifests.")


def _subject(answer: Answer) -> str:
    return answer.resource or "The request"


# --- the table ------------------------------------------------------------------------------

RULES: Sequence[RefusalRule] = (
    RefusalRule("rbac", "forbidden", ExitCode.CLUSTER,
                'RBAC denies the user: `User "u" cannot <verb> resource "<r>"`, or may not '
                "grant a Role's permissions", _rbac, _explain_rbac),
    RefusalRule("namespace-terminating", "namespace-terminating", ExitCode.FAILED,
                "the namespace is being deleted", lambda a: _TERMINATING.search(a.message),
                _explain_terminating),
    RefusalRule("webhook", "admission-denied", ExitCode.USAGE,
                'an admission webhook denies it: `admission webhook "w" denied the request`',
                lambda a: _WEBHOOK.search(a.message), _explain_webhook),
    RefusalRule("policy", "policy-denied", ExitCode.USAGE,
                "a ValidatingAdmissionPolicy denies it (403, 422 or 400, as its reason says)",
                lambda a: _POLICY.search(a.message), _explain_policy),
    RefusalRule("quota", "quota-exceeded", ExitCode.USAGE,
                "a ResourceQuota would be exceeded: `exceeded quota: q, requested: ...`",
                lambda a: _QUOTA.search(a.message), _explain_quota),
    RefusalRule("claim-cannot-grow", "claim-cannot-grow", ExitCode.USAGE,
                "a bigger claim whose StorageClass cannot expand: `only dynamically "
                "provisioned pvc can be resized`", lambda a: _CANNOT_GROW in a.message,
                _explain_grow),
    RefusalRule("claim-cannot-shrink", "claim-cannot-shrink", ExitCode.USAGE,
                "a smaller claim than its volume: `field can not be less than status.capacity`",
                lambda a: _CANNOT_SHRINK in a.message, _explain_shrink),
    RefusalRule("immutable", "immutable-field", ExitCode.USAGE,
                "a field fixed at creation changed (422 `field is immutable`, a StatefulSet's "
                "spec beyond replicas, template, ...)", _immutable, _explain_immutable),
    RefusalRule("admission", "admission-denied", ExitCode.USAGE,
                "any other 403: an admission plugin (LimitRange, PodSecurity, ...)",
                lambda a: a.status == 403, _explain_admission),
    RefusalRule("conflict", "apply-conflict", ExitCode.FAILED,
                "409: fields we apply are owned by another field manager",
                lambda a: a.status == 409, _explain_conflict),
    RefusalRule("unknown-kind", "unknown-kind", ExitCode.USAGE,
                "404 on the kind's path: no CRD serves it",
                lambda a: a.status == 404 and "could not find the requested resource"
                in a.message, _explain_unknown_kind),
    RefusalRule("privileged-mount", "invalid-manifest", ExitCode.USAGE,
                "422: a Bidirectional mount in a container that is not privileged (the rclone "
                "sidecar without its privilege)", lambda a: _PRIVILEGED_MOUNT in a.message,
                _explain_privileged_mount),
    RefusalRule("invalid", "invalid-manifest", ExitCode.USAGE,
                "400 or 422: an invalid value, an unknown field (strict field validation), a "
                "type the schema refuses", lambda a: a.status in (400, 422), _explain_invalid),
)


def classify(answer: Answer) -> Refusal | None:
    """The first row of RULES whose words the server said; None when the answer is not a
    refusal of the request (a 5xx, a 404 of an object, a 401: the caller decides)."""
    for rule in RULES:
        found = rule.matches(answer)
        if found:
            return _refusal(rule, answer, found if isinstance(found, re.Match) else None)
    return None


def refusal_of(cause: str, answer: Answer) -> Refusal:
    """The refusal of a known cause (a kind discovery found unserved, before any request)."""
    rule = next(rule for rule in RULES if rule.cause == cause)
    return _refusal(rule, answer, None)


def _refusal(rule: RefusalRule, answer: Answer, match: re.Match[str] | None) -> Refusal:
    field, message, fix = rule.explain(answer, match)
    return Refusal(rule.cause, rule.code, rule.exit_code, answer.resource, field, message, fix,
                   answer.reason)


def is_rbac(answer: Answer) -> bool:
    """RBAC denies the user (the one refusal that is exit 4)."""
    return bool(_rbac(answer))
