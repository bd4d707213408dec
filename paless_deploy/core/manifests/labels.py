"""The shared vocabulary: label and annotation keys, and the values this tool writes.

One definition each (design: "Labels and annotations"); every module reads them from here.
"""

from __future__ import annotations

TOOL = "paless-deploy"  # the value of managed-by, the field manager and the Lease name
PART_OF_VALUE = "paless"

# label keys
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE = "app.kubernetes.io/instance"
NAME = "app.kubernetes.io/name"

# annotation keys
PHASE = "paless.io/phase"
DEPENDS_ON = "paless.io/depends-on"  # "Kind/name, name": what an object waits for
INITIAL_REPLICAS = "paless.io/initial-replicas"
ALLOWED_RESTARTS = "paless.io/allowed-restarts"
FAILURE_GRACE = "paless.io/failure-grace"
BRANCH = "paless.io/branch"
COMMIT = "paless.io/commit"
CREATED_AT = "paless.io/created-at"
TTL = "paless.io/ttl"
DEPLOYED_AT = "paless.io/deployed-at"  # namespaces: the last `all`/`deploy` (gc counts idle time)
KEEP = "paless.io/keep"  # label on a namespace: "true" and gc never deletes it
URL = "paless.io/url"  # on an Ingress: the deployment's URL, when its rules cannot tell
RELOAD = "paless.io/reload"  # on a pod template: how dev reloads synced code (signal:HUP, none)
SLEEPING = "paless.io/sleeping"  # label on a namespace: "true" while gc keeps it asleep
SLEEPING_SINCE = "paless.io/sleeping-since"  # namespaces and workloads asleep: since when
SLEEP_REASON = "paless.io/sleep-reason"  # namespaces and workloads asleep: why
SLEEP_REPLICAS = "paless.io/sleep-replicas"  # workloads asleep: their replicas before
SEEDED_FROM = "paless.io/seeded-from"  # namespaces: the data they started with, and when

# field managers
FIELD_MANAGER = TOOL
INITIAL_REPLICAS_MANAGER = f"{TOOL}-initial"
SLEEP_MANAGER = f"{TOOL}-sleep"  # scales sleeping workloads to zero and back


def managed_selector() -> str:
    """The label selector of namespaces (and objects) this tool manages."""
    return f"{MANAGED_BY}={TOOL}"


def instance_selector(namespace: str) -> str:
    """The label selector of everything the tool applied for one namespace."""
    return f"{MANAGED_BY}={TOOL},{INSTANCE}={namespace}"


def tool_labels(namespace: str) -> dict[str, str]:
    """The labels render sets on every object it applies to `namespace`."""
    return {MANAGED_BY: TOOL, INSTANCE: namespace}
