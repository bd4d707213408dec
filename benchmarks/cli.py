"""`scripts/bench`: every measurement in one run on the sandbox, then the table (or JSON).

Namespaces (deleted at the end with their PVs): bench-<id> for paless-deploy (first deploy,
no-op redeploys, then the failing deploys that time detection); bench-<id>-kubectl, a twin
for the plain `kubectl apply` (applied into paless-deploy's namespace, kubectl's field
manager would conflict with paless-deploy's on Secret stringData and StatefulSet
volumeClaimTemplates: each tool must own what it applies); bench-<id>-old for the old script.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.detection import (
    CRASH_LOOP,
    IMAGE_PULL,
    OLD_SCRIPT_DETECTION_S,
    DetectionSample,
    measure_detection,
    restore_worker,
)
from benchmarks.harness import (
    OLD_SCRIPT,
    REGISTRY,
    REPO,
    BenchError,
    Tools,
    app_names,
    copy_project,
    create_namespace,
    delete_namespaces,
    find_sandbox,
    render_objects,
    run,
    say,
    with_latest_images,
    write_manifests,
)
from benchmarks.innerloop import InnerLoop
from benchmarks.rebuild import measure_rebuilds
from benchmarks.report import Row, compare, json_document, markdown, skipped

OLD_WAIT_TIMEOUT = "120s"  # the old script's
QUICK_OLD_WAIT_TIMEOUT = "5s"  # --quick: bounded, although nothing matches and it ends at once


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark paless-deploy on the sandbox: help, no-op redeploy, detection "
                    "latency, against kubectl and the old bash script. Medians of --runs runs.")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help=f"old-script waits time out after {QUICK_OLD_WAIT_TIMEOUT}; "
                             "detection of image-pull only")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--kubeconfig", help="default: KUBECONFIG, else the sandbox's")
    parser.add_argument("--keep", action="store_true",
                        help="keep the bench-* namespaces (to look at them afterwards)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


class Bench:
    """One benchmark run: its namespaces, samples and notes."""

    def __init__(self, tools: Tools, workdir: Path, runs: int, quick: bool) -> None:
        self.tools, self.workdir, self.runs, self.quick = tools, workdir, runs, quick
        bench_id = secrets.token_hex(3)
        self.ns = f"bench-{bench_id}"
        self.twin = f"{self.ns}-kubectl"
        self.old_ns = f"{self.ns}-old"
        self.created: list[str] = []
        self.samples: dict[str, list[Any]] = {
            "help_paless_deploy": [], "help_kubectl": [], "noop_redeploy": [],
            "kubectl_apply": [], "old_script": [], "detect_image_pull": [],
            "detect_crash_loop": [], "restore_runs": [], "rebuild_buildkit": [],
            "rebuild_classic": []}
        self.notes: list[str] = []
        self.apps = app_names()

    # -- 1. help ---------------------------------------------------------------------------------

    def measure_help(self) -> None:
        say(f"--help: paless-deploy vs kubectl, {self.runs} run(s) each")
        ours = [str(self.tools.paless_deploy), "--help"]
        theirs = [str(self.tools.sandbox.kubectl), "--help"]
        run(ours, self.tools.env)  # warm the page cache for both
        run(theirs, self.tools.env)
        for _ in range(self.runs):
            self.samples["help_paless_deploy"].append(
                self.tools.check(ours, "paless-deploy --help").seconds)
            self.samples["help_kubectl"].append(self.tools.check(theirs, "kubectl --help").seconds)

    def measure_rebuild(self) -> None:
        found = measure_rebuilds(self.tools, self.workdir, self.runs)
        self.samples["rebuild_buildkit"], self.samples["rebuild_classic"] = (
            found["buildkit"], found["classic"])

    # -- 2. no-op redeploy -------------------------------------------------------------------------

    def set_up_deploys(self) -> None:
        """First deploys: paless-deploy's namespace, the kubectl twin, the old script's."""
        say(f"first deploy of the {self.tools.env['OVERLAY']} overlay into {self.ns}")
        self.created.append(self.ns)
        first = self.tools.check(self.tools.pd(self.ns, "all"), f"paless-deploy all -n {self.ns}")
        self.notes.append(f"First deploy (build, push, every phase ready): {first.seconds:.1f} s.")
        for name in (self.twin, self.old_ns):
            create_namespace(self.tools, name)
            self.created.append(name)
        self.twin_yaml = write_manifests(render_objects(self.tools, self.twin),
                                         self.workdir / "kubectl.yaml")
        self.old_yaml = write_manifests(
            with_latest_images(render_objects(self.tools, self.old_ns), self.apps),
            self.workdir / "old.yaml")
        say(f"first kubectl apply into {self.twin}, first old-script run into {self.old_ns}")
        self.tools.check(self.kubectl_apply(), "kubectl apply (first)")
        self.tools.check(["bash", str(OLD_SCRIPT)], "old script (first run)", cwd=REPO,
                         env=self.old_script_env())

    def kubectl_apply(self) -> list[str]:
        return self.tools.kubectl("apply", "--server-side", "--field-manager=bench",
                                  "-f", str(self.twin_yaml))

    def old_script_env(self) -> dict[str, str]:
        return {**self.tools.env, "NAMESPACE": self.old_ns, "MANIFESTS": str(self.old_yaml),
                "APPS": " ".join(self.apps), "PROJECT_NAME": self.tools.env["PROJECT_NAME"],
                "REGISTRY": REGISTRY,
                "WAIT_TIMEOUT": QUICK_OLD_WAIT_TIMEOUT if self.quick else OLD_WAIT_TIMEOUT}

    def measure_redeploys(self) -> None:
        say(f"no-op redeploy vs kubectl apply vs old script, {self.runs} round(s)")
        old_output = ""
        for i in range(self.runs):
            noop = self.tools.check(self.tools.pd(self.ns, "all"), "no-op paless-deploy all")
            apply = self.tools.check(self.kubectl_apply(), "kubectl apply")
            old = self.tools.check(["bash", str(OLD_SCRIPT)], "old script", cwd=REPO,
                                   env=self.old_script_env())
            self.samples["noop_redeploy"].append(noop.seconds)
            self.samples["kubectl_apply"].append(apply.seconds)
            self.samples["old_script"].append(old.seconds)
            old_output = old.output
            say(f"  round {i + 1}: paless-deploy {noop.seconds:.2f}s, kubectl apply "
                f"{apply.seconds:.2f}s, old script {old.seconds:.2f}s")
        self.describe_old_waits(old_output)

    def describe_old_waits(self, output: str) -> None:
        nothing = len(re.findall(r"no matching resources found", output))
        timed_out = len(re.findall(r"timed out waiting", output))
        self.notes.append(
            f"Old script: of its {len(self.apps)} `kubectl wait -l app=<app>`, {nothing} failed at "
            f"once with \"no matching resources found\" and {timed_out} timed out (our pods are "
            "labelled app.kubernetes.io/component); it printed pods and events and exited 0. "
            "Its time is builds and pushes from Docker's cache plus one client-side apply: "
            "it checks nothing.")

    # -- 3. detection latency ----------------------------------------------------------------------

    def measure_detection(self) -> None:
        from kubernetes import client, config

        core = client.CoreV1Api(config.new_client_from_config(
            config_file=str(self.tools.sandbox.kubeconfig)))
        project = copy_project(self.workdir / "project")
        cases = [IMAGE_PULL] if self.quick else [IMAGE_PULL, CRASH_LOOP]
        say(f"detection latency: {', '.join(c.code for c in cases)}, {self.runs} run(s) each, "
            f"in {self.ns}")
        remaining = self.runs * len(cases)
        for i in range(self.runs):
            for case in cases:
                sample = measure_detection(self.tools, core, project, self.ns, case,
                                           f"{case.code}-{i}")
                self.samples[f"detect_{case.code.replace('-', '_')}"].append(sample)
                latency = "missed" if sample.latency_s is None else f"{sample.latency_s:.2f}s"
                say(f"  {case.code} run {i + 1}: {latency} (by {sample.reported_by or 'none'}, "
                    f"exit {sample.exit_code}) {sample.note}".rstrip())
                remaining -= 1
                if remaining:
                    self.samples["restore_runs"].append(restore_worker(self.tools, core, self.ns))

    # -- results -----------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        s = self.samples
        rows = [
            compare("`paless-deploy --help` vs `kubectl --help`", s["help_paless_deploy"],
                    s["help_kubectl"], "kubectl --help", "≤ 3x", lambda _m, r: r <= 3),
            compare("no-op redeploy (`all`, dev) vs one `kubectl apply --server-side`",
                    s["noop_redeploy"], s["kubectl_apply"], "kubectl apply", "≤ 1.5x",
                    lambda _m, r: r <= 1.5),
            compare("no-op redeploy (`all`, dev) vs the old script", s["noop_redeploy"],
                    s["old_script"], "old script", "≤ 0.2x (≥ 5x faster)",
                    lambda _m, r: r <= 0.2),
            compare("rebuild after a one-line change (`build`): BuildKit vs classic builder",
                    s["rebuild_buildkit"], s["rebuild_classic"], "classic builder", "≤ 0.75x",
                    lambda _m, r: r <= 0.75),
        ]
        for case, key in ((IMAGE_PULL, "detect_image_pull"), (CRASH_LOOP, "detect_crash_loop")):
            name = f"detection latency: {case.code} (worker)"
            if case.code == CRASH_LOOP.code:
                name += ", allowed-restarts 0"
            baseline = "old script's wait timeout"
            if not s[key]:
                rows.append(skipped(name, baseline, "≤ 5 s"))
                continue
            latencies = [math.inf if d.latency_s is None else d.latency_s for d in s[key]]
            rows.append(compare(name, latencies, OLD_SCRIPT_DETECTION_S, baseline, "≤ 5 s",
                                lambda m, _r: m <= 5))
        return rows

    def final_notes(self, load_before: float) -> list[str]:
        machine = (f"{self.runs} run(s) per measurement, medians; {os.cpu_count()} CPUs, "
                   f"load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after "
                   "(other work shares this machine).")
        notes = [machine, *self.notes]
        detections: list[DetectionSample] = (self.samples["detect_image_pull"]
                                             + self.samples["detect_crash_loop"])
        if detections:
            notes.append(
                "Detection: from the benchmark's own watch first seeing a worker pod of the run "
                "waiting in ErrImagePull/ImagePullBackOff (CrashLoopBackOff with a restart) to "
                "the finding's line on paless-deploy's stderr. The old script's "
                f"{OLD_SCRIPT_DETECTION_S:.0f} s is its `kubectl wait` timeout, its best case: "
                "a pod in either state is never Ready, and with `-l app=<app>` it never reports.")
            missed = [d for d in detections if d.latency_s is None]
            if missed:
                notes.append(f"{len(missed)} failing deploy(s) not reported: "
                             + "; ".join(f"{d.code}: {d.note or 'no finding'}" for d in missed))
        retried = [n for n in self.samples["restore_runs"] if n > 1]
        if retried:
            notes.append(
                f"Restoring the worker after a failing run took a second `paless-deploy all` "
                f"{len(retried)} of {len(self.samples['restore_runs'])} time(s): the first "
                "exited 1 on the previous ReplicaSet's failing pod while it was going away.")
        return notes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every measurement ran (targets met or not)."""
    args = parse_args(argv)
    try:
        sandbox = find_sandbox(args.kubeconfig)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="paless-bench-") as tmp:
        tools = Tools.create(sandbox, Path(tmp))
        bench = Bench(tools, Path(tmp), args.runs, args.quick)
        inner = InnerLoop(tools, Path(tmp), bench.ns, bench.old_ns, args.runs, args.quick)
        try:
            bench.measure_help()
            bench.measure_rebuild()
            bench.set_up_deploys()
            bench.measure_redeploys()
            bench.measure_detection()
            inner.measure()
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench: interrupted", file=sys.stderr)
            return 130
        finally:
            inner.stop()
            if args.keep:
                say(f"keeping namespaces {', '.join(bench.created)}")
            else:
                say(f"deleting namespaces {', '.join(bench.created)} and their PVs")
                delete_namespaces(tools, bench.created)
    rows = bench.rows() + inner.rows()
    notes = bench.final_notes(load_before) + inner.final_notes()
    if args.json:
        print(json_document(rows, {**bench.samples, **{f"edit_to_ready_{k}": v for k, v in
                                                        inner.samples.items()}}, notes,
                            {"runs": args.runs, "quick": args.quick, "namespace": bench.ns}))
    else:
        print(markdown(rows, notes))
    return 0

