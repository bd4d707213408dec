"""Paless knowledge the rules add to their advice: tables to scan, not logic to follow.

The rules in `pods`, `workloads`, `claims` and `lint` know Kubernetes; what they can say
only because this is the Paless stack (what an app waits for, what each Job needs, why the
rclone sidecar exits, which Secret is rendered from which file) lives here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# --- the stack's services ---------------------------------------------------------------

# StatefulSets the apps depend on; named in hints while they are not ready.
DATA_SERVICES: tuple[str, ...] = ("postgres", "redis", "minio")
# App containers (web, worker, scheduler) exit while these do not answer.
APP_DEPENDENCIES: tuple[str, ...] = ("postgres", "redis")
# The component that must run once: Celery beat would run every periodic task twice.
SINGLE_INSTANCE_COMPONENT = "scheduler"
# Secrets rendered by the overlay from a file of the repository.
RENDERED_FROM: Mapping[str, str] = {"paless-secret": "k8s/base/config.yaml"}

# --- Jobs: name fragment -> what usually makes it fail ------------------------------------

JOB_HINTS: tuple[tuple[str, str], ...] = (
    ("bucket", ("The bucket Job fails when MinIO is not ready or the credentials are wrong: "
                "check the MinIO pod and the Job's logs.")),
    ("init", ("The database init Job fails when PostgreSQL is not ready or its SQL fails: "
              "check the postgres pod and the Job's logs.")),
    ("migrat", ("The migration fails when the database is unreachable or the owner role lacks "
                "rights: read the Job's logs.")),
)

# --- the rclone media sidecar: first matching row wins -------------------------------------

RCLONE_CONTAINER = "rclone"
FUSE = r"\bfuse"  # fuse, fusermount, /dev/fuse; not "refused"


@dataclass(frozen=True)
class LogHint:
    """A row of a log table: when the logs match `pattern` (or `unready` is not ready yet),
    `hint` is the advice."""

    pattern: str  # a regular expression over the lower-cased log lines
    hint: str
    unready: str = ""  # a data service whose unreadiness alone chooses this row


RCLONE_HINTS: tuple[LogHint, ...] = (
    LogHint(rf"{FUSE}|permission denied|operation not permitted",
            "rclone cannot use FUSE: the sidecar must run with securityContext.privileged: "
            "true and the node needs /dev/fuse."),
    LogHint(r"connection refused|no such host|dial tcp|timeout",
            "rclone cannot reach MinIO (minio:9000): check the MinIO pod and the bucket "
            "Job's logs; the object-storage phases must be ready first.", unready="minio"),
    LogHint(r"credential|access ?key|signature|config file|not found|didn't find",
            "rclone's credentials or configuration are wrong: check the keys "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY it takes from the Secret and the "
            "rclone-config ConfigMap, then recreate the pod."),
)
RCLONE_DEFAULT = ("The rclone media sidecar exits. Usual causes: not privileged (FUSE "
                  "permission denied: set privileged: true), MinIO not ready (check the MinIO "
                  "pod and the bucket Job), wrong credentials or missing rclone-config "
                  "ConfigMap. Its logs tell which.")

# --- single sentences the rules append ------------------------------------------------------

# image-pull: the cluster this stack targets first is k3s.
K3S_REGISTRIES = ("On k3s, every node must be able to pull from it: declare the registry "
                  "in /etc/rancher/k3s/registries.yaml on each node (an `http://` endpoint "
                  "for a plain-HTTP registry) and restart k3s.")
# oom-killed: the one memory knob of the stack.
MEMORY_TUNING = "worker: fewer PAPERLESS_TASK_WORKERS"
# mount-failed: the only FUSE user is the rclone sidecar.
FUSE_MOUNT = "The node needs FUSE (/dev/fuse) and the rclone sidecar must be privileged."
# create-failed under Pod Security admission.
PRIVILEGED_SIDECAR = "the rclone sidecar needs privileged"


def mentions_fuse(text: str) -> bool:
    """Whether a message is about FUSE (the rclone sidecar's mount)."""
    return re.search(FUSE, text, re.IGNORECASE) is not None


def is_data_service(name: str) -> bool:
    """Whether a container or workload name is one of the data services."""
    return any(service in name for service in DATA_SERVICES)


def job_hint(name: str) -> str | None:
    """What usually makes the Job called `name` fail, when the stack knows it."""
    return next((hint for fragment, hint in JOB_HINTS if fragment in name), None)


def rclone_hint(logs: str, unready: tuple[str, ...]) -> str:
    """The advice for a crashing rclone sidecar, from its log tail (lower-cased)."""
    for row in RCLONE_HINTS:
        if (row.unready and row.unready in unready) or re.search(row.pattern, logs):
            return row.hint
    return RCLONE_DEFAULT


def dependency_hint(container: str, unready: tuple[str, ...], namespace: str) -> str | None:
    """For an app container that crashes while postgres or redis is not ready: say so."""
    waiting = [s for s in APP_DEPENDENCIES if s in unready]
    if is_data_service(container) or not waiting:
        return None
    waiting_for = " and ".join(waiting)
    return (f"{waiting_for} is not ready yet: app containers exit when the database or "
            "Redis does not answer. The phases deploy data services first; check their "
            f"pods (`kubectl -n {namespace} get pods -l app.kubernetes.io/component="
            f"{waiting[0]}`).")


def rendered_from(secret: str) -> str | None:
    """The repository file a Secret of the stack is rendered from, if it is one."""
    return RENDERED_FROM.get(secret)
