"""Diff stage: what `all` would change, from a server-side dry run against live state.

Each rendered object is applied with dryRun=All; the server's answer is compared with
the live object (status and bookkeeping fields dropped, Secret values redacted).
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

from paless_deploy.core.report import Result

_DROP_META = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")
REDACTED = "<redacted>"


def comparable(obj: dict | None) -> dict | None:
    """The object without status and fields every write changes; Secret values hashed away."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _DROP_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("deployment.kubernetes.io/revision", None)
    if not annotations:
        meta.pop("annotations", None)
    if out.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if key in out:
                # Show that a value changed without showing it: compare digests.
                out[key] = {k: _digest(v) for k, v in (out[key] or {}).items()}
    return out


def _digest(value: Any) -> str:
    import hashlib

    return f"{REDACTED} sha256:{hashlib.sha256(str(value).encode()).hexdigest()[:12]}"


def unified(ref: str, live: dict | None, planned: dict | None) -> str:
    """A unified diff between two comparable objects ('' when equal)."""
    a = yaml.safe_dump(live, sort_keys=True).splitlines(keepends=True) if live else []
    b = yaml.safe_dump(planned, sort_keys=True).splitlines(keepends=True) if planned else []
    if a == b:
        return ""
    return "".join(difflib.unified_diff(a, b, fromfile=f"live/{ref}", tofile=f"planned/{ref}"))


def run_diff(run_ctx: Any) -> Result:
    """Exit 0 when nothing would change, 1 when something would (like `kubectl diff`)."""
    import click

    from paless_deploy.adapters.kube import api_message, api_status, cluster_errors, connect
    from paless_deploy.commands.deploy import discovered_apps, planned_refs, render
    from paless_deploy.stages.apply import FIELD_MANAGER, object_ref

    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    refs, warnings = planned_refs(run_ctx, discovered_apps(run_ctx))
    objects = render(run_ctx, refs)
    ns = run_ctx.config.namespace
    result = Result(command="diff", namespace=ns, warnings=warnings)
    changes: list[dict] = []
    from kubernetes.dynamic.exceptions import NotFoundError

    namespace_exists = True
    with cluster_errors(kube, "comparing with the live objects", ns):
        try:
            kube.core.read_namespace(ns)
        except Exception as exc:
            if api_status(exc) != 404:
                raise
            namespace_exists = False
        for obj in objects:
            ref = object_ref(obj)
            resource = kube.resource(obj["apiVersion"], obj["kind"])
            namespace = obj["metadata"].get("namespace") if resource.namespaced else None
            try:
                live = resource.get(name=obj["metadata"]["name"], namespace=namespace).to_dict()
            except NotFoundError:
                live = None
            if live is None and not namespace_exists and resource.namespaced:
                planned = obj  # a dry run needs the namespace; show the object as rendered
            else:
                try:
                    planned = kube.dynamic.server_side_apply(
                        resource, body=obj, name=obj["metadata"]["name"], namespace=namespace,
                        field_manager=FIELD_MANAGER, force_conflicts=True, dry_run="All").to_dict()
                except Exception as exc:
                    if api_status(exc) in (400, 422):
                        changes.append({"object": ref, "action": "invalid",
                                        "diff": api_message(exc)})
                        continue
                    raise
            text = unified(ref, comparable(live), comparable(planned))
            if text:
                changes.append({"object": ref, "action": "create" if live is None else "update",
                                "diff": text})
    if not run_ctx.json_output:
        for c in changes:
            click.echo(c["diff"] if c["action"] != "invalid" else f"# {c['object']}: {c['diff']}")
        click.echo(f"# {len(changes)} object(s) would change" if changes
                   else "# no changes", err=True)
    result.extra["changes"] = changes
    if changes:
        result.result = "changes"
        result.exit_code = 1
    return result
