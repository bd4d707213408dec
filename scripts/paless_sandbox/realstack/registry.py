"""Where a real-stack image is looked for: the sandbox registry (its manifest, then its
config's labels, over the registry API) or the local Docker engine (a test build)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

from paless_sandbox.layout import REGISTRY_ADDR
from paless_sandbox.realstack.recipes import KEY_LABEL

MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.list.v2+json, "
                  "application/vnd.oci.image.index.v1+json")


@dataclass(frozen=True)
class Lookup:
    """An image as found: whether it exists, and its key label (None: not labelled)."""

    exists: bool
    label: str | None = None


def _get_json(url: str, accept: str) -> object:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        found: object = json.loads(resp.read())
        return found


def _field(obj: object, *path: str | int) -> object:
    """obj[path[0]][path[1]]... of decoded JSON; None where the shape differs."""
    for step in path:
        if isinstance(step, int) and isinstance(obj, list) and len(obj) > step:
            obj = obj[step]
        elif isinstance(step, str) and isinstance(obj, dict):
            obj = obj.get(step)
        else:
            return None
    return obj


def registry_lookup(repository: str, tag: str, registry: str = REGISTRY_ADDR) -> Lookup:
    """The image `repository:tag` in the registry and its key label (a list's first image)."""
    base = f"http://{registry}/v2/{repository}"
    try:
        manifest = _get_json(f"{base}/manifests/{tag}", MANIFEST_TYPES)
        first = _field(manifest, "manifests", 0, "digest")
        if isinstance(first, str):
            manifest = _get_json(f"{base}/manifests/{first}", MANIFEST_TYPES)
        config = _field(manifest, "config", "digest")
        if not isinstance(config, str):
            return Lookup(True)
        label = _field(_get_json(f"{base}/blobs/{config}", "*/*"), "config", "Labels",
                       KEY_LABEL)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return Lookup(False)
        raise
    return Lookup(True, label if isinstance(label, str) else None)


def local_lookup(tag: str) -> Lookup:
    """The image `tag` in the local Docker engine and its key label."""
    res = subprocess.run(["docker", "image", "inspect", "--format",
                          f'{{{{index .Config.Labels "{KEY_LABEL}"}}}}', tag],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return Lookup(False)
    label = res.stdout.strip()
    return Lookup(True, label if label and label != "<no value>" else None)
