"""Which Paless component an object is: read from labels, its name or its image.

Trees written without our labels still say what runs (`app: postgres`, a Deployment named
`paperless-worker`, an image `redis:7`); the words are Paless knowledge, kept as data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.images.imageref import parse_image
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.podspec import pod_containers

KNOWN_COMPONENTS = ("minio", "postgres", "redis", "scheduler", "worker", "web")

# What names a component in trees written without our labels: the words that may appear
# in a label value, an object name or an image's repository (Paless knowledge, as data).
COMPONENT_WORDS: Mapping[str, tuple[str, ...]] = {
    "postgres": ("postgres", "postgresql", "pg", "pgsql"),
    "redis": ("redis", "valkey"),
    "minio": ("minio",),
    "scheduler": ("scheduler", "beat"),
    "worker": ("worker", "celery"),
    "web": ("web", "webserver"),
}
# Words that name the application as a whole: its web part, but only when no label,
# name or image says more (a `paperless-db` running postgres is the database).
WEAK_COMPONENT_WORDS: Mapping[str, tuple[str, ...]] = {"web": ("paperless", "paless")}
# Words that qualify a component without naming another thing: `paperless-worker`,
# `minio-service`, `postgres-0` are still ours. Any other word makes the text name
# something else: `kube-scheduler` is Kubernetes' scheduler, `redis-exporter` an exporter.
QUALIFIER_WORDS = frozenset({"paperless", "paless", "service", "svc", "server", "app",
                             "main", "primary"})
# Where a component may be named, strongest first (label keys, then the name, the image).
COMPONENT_LABELS = (labels.COMPONENT, "component", labels.NAME, "app", "k8s-app")


def _words(text: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", text.lower())) - {""}


def _component_in(text: str, table: Mapping[str, tuple[str, ...]] = COMPONENT_WORDS
                  ) -> str | None:
    """The component `text` names by whole words: once its qualifiers and numbers are set
    aside, exactly one word is left and it names the component (for the weak table, the
    text is made of its words only)."""
    words = _words(text)
    if table is WEAK_COMPONENT_WORDS:
        return next((c for c, synonyms in table.items() if words and words <= set(synonyms)),
                    None)
    left = {w for w in words - QUALIFIER_WORDS if not w.isdigit()}
    if len(left) != 1:
        return None
    word = next(iter(left))
    return next((c for c, synonyms in table.items() if word in synonyms), None)


def component_of(obj: ApiObject) -> tuple[str, str] | None:
    """(component, where it was read) from labels, name or image; None when none says."""
    metadata = obj.get("metadata") or {}
    found = dict(metadata.get("labels") or {})
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    for key, value in (template.get("labels") or {}).items():
        found.setdefault(key, value)
    value = found.get(labels.COMPONENT)
    if isinstance(value, str) and value in KNOWN_COMPONENTS:
        return value, f"label {labels.COMPONENT}={value}"
    places = [(f"label {key}={found[key]}", str(found[key])) for key in COMPONENT_LABELS
              if isinstance(found.get(key), str) and found[key]]
    name = str(metadata.get("name") or "")
    places.append((f"name {name}", name))
    for container in pod_containers(obj):
        image = str(container.get("image") or "")
        try:
            places.append((f"image {image}", parse_image(image).path.rsplit("/", 1)[-1]))
        except ValueError:
            continue
    for table in (COMPONENT_WORDS, WEAK_COMPONENT_WORDS):
        for where, text in places:
            component = _component_in(text, table)
            if component:
                return component, where
    return None
