"""Lint at plan time: rendered objects that apply cleanly but will misbehave, or whose
policy annotations cannot be read, found before anything is built or applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.diagnosis.findings import policy_overrides
from paless_deploy.core.diagnosis.hints import SINGLE_INSTANCE_COMPONENT
from paless_deploy.core.objects import name_of, nested
from paless_deploy.core.podspec import pod_containers


def check_policy_annotations(objects: Iterable[ApiObject]) -> None:
    """Raise ConfigError for the first `paless.io/allowed-restarts` or `paless.io/failure-grace`
    value (on an object or its pod template) that is not a whole number / a duration.

    The wait stage reads them only once pods misbehave; checked here, a typo stops the
    deploy before anything is applied instead of in the middle of a phase.
    """
    for obj in objects:
        policy_overrides(obj)


def manifest_warnings(objects: Iterable[ApiObject]) -> list[str]:
    """Warnings about rendered objects that will misbehave although they apply cleanly.

    - more than one scheduler (replicas > 1, an HPA, or a rolling update): Celery beat
      would run twice and duplicate every periodic task;
    - an image tagged `latest` (or untagged): re-pushing it changes nothing in the pod
      spec, so Kubernetes never rolls the new image out.
    """
    objects = list(objects)
    warnings: list[str] = []
    hpa_targets = {(nested(o, "spec", "scaleTargetRef", "name") or "") for o in objects
                   if o.get("kind") == "HorizontalPodAutoscaler"}
    for obj in objects:
        kind, name = obj.get("kind"), name_of(obj)
        component = (nested(obj, "metadata", "labels") or {}).get("app.kubernetes.io/component")
        if kind == "Deployment" and component == SINGLE_INSTANCE_COMPONENT:
            replicas = nested(obj, "spec", "replicas")
            strategy = nested(obj, "spec", "strategy", "type") or "RollingUpdate"
            if (replicas is not None and int(replicas) > 1) or name in hpa_targets:
                warnings.append(f"Deployment/{name}: more than one scheduler would run and every "
                                "periodic task would run twice; keep replicas 1 and no HPA.")
            if strategy != "Recreate":
                warnings.append(f"Deployment/{name}: a {strategy} update briefly runs two "
                                "schedulers (duplicate periodic tasks); use strategy Recreate.")
        for container in pod_containers(obj):
            image = str(container.get("image") or "")
            last = image.rsplit("/", 1)[-1]
            if "@" in image:
                continue
            if ":" not in last or last.endswith(":latest"):
                warnings.append(f"{kind}/{name} container {container.get('name')} uses {image}: "
                                "a re-pushed :latest image is never rolled out; use an "
                                "immutable tag.")
    return warnings
