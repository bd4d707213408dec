"""`backup`, `restore SNAPSHOT` and `wake`: a namespace's data to a snapshot and back, and a
sleeping preview brought back.

backup reads the namespace only; restore checks the snapshot whole before it touches the
cluster, asks in prod, holds the namespace lock and stops the apps while it writes; wake
scales back what `gc --sleep-after` put to sleep and waits until it is ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import Kube, connect
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.data.policy import is_migrate_job
from paless_deploy.core.data.services import workloads_of
from paless_deploy.core.data.snapshot import Snapshot, human_size
from paless_deploy.core.errors import ConfigError, PalessError
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.backup import BackupRequest, take_snapshot
from paless_deploy.stages.dataguard import snapshot_root
from paless_deploy.stages.datasources import read_services
from paless_deploy.stages.lock import lock_for
from paless_deploy.stages.restore import (
    RestoreRequest,
    check_target,
    open_snapshot,
    restore_with_apps_stopped,
)
from paless_deploy.stages.sleep import wait_ready, wake
from paless_deploy.ui.lines import confirm, say
from paless_deploy.ui.progress import make_progress
from paless_deploy.ui.terminal import stdin_is_terminal

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext

PROD_OVERLAY = "prod"


def _tell(run_ctx: RunContext, text: str) -> None:
    if not run_ctx.console.quiet:
        say(text, err=True)


def _warner(run_ctx: RunContext, result: Result) -> Callable[[str], None]:
    def warn(text: str) -> None:
        result.warnings.append(text)
        _tell(run_ctx, f"warning: {text}")
    return warn


def configuration_record(run_ctx: RunContext) -> JsonDict:
    """The configuration a snapshot records: every variable, secrets masked."""
    config = run_ctx.config
    return {"namespace": config.namespace, "overlay": config.overlay,
            "variables": [{"name": n, "value": v, "source": s} for n, v, s in config.rows()]}


def describe_snapshot(snapshot: Snapshot, path: Path) -> str:
    objects = sum(1 for f in snapshot.files if f.role == "object")
    return (f"snapshot {path}: {human_size(snapshot.size)}, database {snapshot.database} "
            f"(schema {snapshot.schema.version}), {objects} object(s) in "
            f"{', '.join(snapshot.buckets) or 'no bucket'}, taken in {snapshot.duration_s:.1f}s")


def run_backup(run_ctx: RunContext, to: Path | None = None) -> Result:
    """Snapshot the namespace's data into a new directory under `to`."""
    config = run_ctx.config
    result = Result(command="backup", namespace=config.namespace, overlay=config.overlay)
    root = to.expanduser() if to is not None else snapshot_root(config)
    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    request = BackupRequest(config.namespace, root, "backup", config.overlay,
                            configuration_record(run_ctx), _warner(run_ctx, result))
    snapshot, path = take_snapshot(kube, request, make_progress(run_ctx.console))
    result.extra["snapshot"] = snapshot.summary(str(path))
    if not run_ctx.json_output:
        say(describe_snapshot(snapshot, path) + ".")
        say(f"Restore it with: paless-deploy -n NAMESPACE restore {path}")
    return result


def confirm_restore(run_ctx: RunContext, snapshot: Snapshot, yes: bool) -> None:
    """In prod, a restore replaces live data: asked on a terminal, --yes off one."""
    if yes or run_ctx.config.overlay != PROD_OVERLAY:
        return
    what = (f"restore snapshot {snapshot.name} (of {snapshot.namespace}, "
            f"{snapshot.created_at}) into {run_ctx.config.namespace}, replacing its database "
            "and objects")
    if not stdin_is_terminal():
        raise ConfigError(f"The prod overlay asks before a restore ({what}), but stdin is not "
                          "a terminal. Nothing was changed.",
                          "Pass --yes to confirm.", code="confirmation-required")
    if not confirm(f"{what[0].upper()}{what[1:]}?"):
        raise PalessError("Not confirmed: nothing was restored.", code="aborted")


def schema_template(kube: Kube, namespace: str) -> JsonDict | None:
    """The pod template of the image about to run in `namespace`: its migrate Job's, else
    web's; None when there is neither."""
    objects = read_services(kube, namespace).objects
    jobs = [o for o in objects if is_migrate_job(o)]
    web = workloads_of(objects, "web")
    found = jobs or web
    return dict(found[0]) if found else None


def run_restore(run_ctx: RunContext, snapshot_path: str, yes: bool = False) -> Result:
    """Check the snapshot, then restore it into the run's namespace under its lock."""
    config = run_ctx.config
    result = Result(command="restore", namespace=config.namespace, overlay=config.overlay)
    warn = _warner(run_ctx, result)
    snapshot, directory = open_snapshot(snapshot_path, make_progress(run_ctx.console))
    confirm_restore(run_ctx, snapshot, yes)
    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    check_target(kube, config.namespace, snapshot)  # exit 2 before the lock is even taken
    template = schema_template(kube, config.namespace)
    if template is None:
        warn(f"{config.namespace} runs no migrate Job or web workload: the snapshot's schema "
             "was not compared with an image.")
    request = RestoreRequest(config.namespace, template, partial(_tell, run_ctx), warn)
    with lock_for(kube, run_ctx, "restore"):
        done = restore_with_apps_stopped(kube, request, snapshot, directory,
                                         make_progress(run_ctx.console),
                                         lambda: run_ctx.remaining_s(time.monotonic()))
    result.extra["restored"] = {**done, "path": str(directory)}
    if not run_ctx.json_output:
        say(f"Restored {snapshot.name} into {config.namespace} in {done['duration_s']:.1f}s: "
            f"database {snapshot.database} (schema {snapshot.schema.version})"
            + (f", objects: {done.get('objects_uploaded', 0)} uploaded, "
               f"{done.get('objects_unchanged', 0)} unchanged, "
               f"{done.get('objects_deleted', 0)} deleted" if snapshot.buckets else "") + ".")
    return result


def run_wake(run_ctx: RunContext) -> Result:
    """Wake the namespace and wait until what was woken is ready."""
    namespace = run_ctx.config.namespace
    result = Result(command="wake", namespace=namespace)
    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    started = time.monotonic()
    with lock_for(kube, run_ctx, "wake"):
        woken = wake(kube, namespace, partial(_tell, run_ctx))
    for entry in woken:
        wait_ready(kube, namespace, entry.ref, max(1.0, run_ctx.remaining_s(time.monotonic())))
    result.extra["woken"] = [w.to_json() for w in woken]
    result.extra["duration_s_ready"] = round(time.monotonic() - started, 3)
    if not run_ctx.json_output:
        say(f"{namespace}: " + (f"woke {len(woken)} workload(s), ready after "
                                f"{time.monotonic() - started:.1f}s." if woken
                                else "was not asleep; nothing to wake."))
    return result
