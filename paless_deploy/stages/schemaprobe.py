"""Which migrations an image carries: one short-lived Pod of that image (the pod template of
the migrate Job, or of web), whose command lists the migration files without a database.

The Pod runs where the template's pods run (its node selector, tolerations, DNS settings,
security context and environment), without volumes, and is deleted afterwards.
"""

from __future__ import annotations

import copy
import secrets
from functools import partial
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, TransportError, cluster_errors, with_retries
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.data import schema
from paless_deploy.core.data.schema import Migration
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.labels import MANAGED_BY, TOOL
from paless_deploy.core.manifests.objects import nested
from paless_deploy.core.manifests.podspec import pod_spec

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

PROBE_TIMEOUT_S = 180
POD = by_kind("Pod")
KEPT_POD_FIELDS = ("nodeSelector", "tolerations", "affinity", "dnsPolicy", "dnsConfig",
                   "securityContext", "imagePullSecrets", "serviceAccountName",
                   "priorityClassName")
KEPT_CONTAINER_FIELDS = ("image", "imagePullPolicy", "env", "envFrom", "workingDir",
                         "securityContext", "resources")


def probe_pod(template_owner: JsonDict, name: str) -> JsonDict | None:
    """The Pod that lists the migrations of `template_owner`'s first container's image."""
    spec = pod_spec(template_owner) or {}
    containers = spec.get("containers") or []
    if not containers:
        return None
    container = {k: copy.deepcopy(v) for k, v in containers[0].items()
                 if k in KEPT_CONTAINER_FIELDS}
    container.update(name="schema", command=["python3", "-c", schema.IMAGE_SCRIPT])
    container.pop("args", None)
    pod_fields = {k: copy.deepcopy(v) for k, v in spec.items() if k in KEPT_POD_FIELDS}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {MANAGED_BY: TOOL,
                                                  "paless.io/purpose": "schema-probe"}},
            "spec": {**pod_fields, "restartPolicy": "Never", "activeDeadlineSeconds":
                     PROBE_TIMEOUT_S, "automountServiceAccountToken": False,
                     "containers": [container]}}


def image_migrations(kube: Kube, namespace: str, template_owner: JsonDict
                     ) -> frozenset[Migration] | None:
    """The migrations the image carries; None when the pod could not tell (it did not run,
    printed no list: not a Django image, or a node that runs nothing for real)."""
    name = f"paless-schema-{secrets.token_hex(4)}"
    body = probe_pod(template_owner, name)
    if body is None:
        return None
    with cluster_errors(kube, "starting the pod that reads the image's migrations", namespace):
        kube.create(POD, body, namespace)
    try:
        ended = kube.watch_until(POD, name, namespace, _ended, PROBE_TIMEOUT_S)
        if ended is None or nested(ended, "status", "phase") not in ("Succeeded", "Failed"):
            return None
        try:
            text = kube.logs(namespace, name, "schema", timeout=(5, 30))
        except (ApiError, TransportError):
            return None
        return schema.parse_image_migrations(text)
    finally:
        try:
            with_retries(partial(kube.delete, POD, name, namespace))
        except (ApiError, TransportError):
            pass  # labelled as ours; a leftover probe is harmless and says what it was


def _ended(pod: JsonDict | None) -> bool:
    return pod is None or nested(pod, "status", "phase") in ("Succeeded", "Failed")
