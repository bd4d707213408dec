"""`scripts/bench`: every measurement in one run on the sandbox, then one table (or JSON).

Sections: `--help` against kubectl's; the Paless stack (first deploy to ready, no-op
redeploy, one app changed, failure detection) against kubectl (apply, and apply + rollout
status), the old script and, with --peers, Helm 4; with --scale, a generated tree of N
apps x 10 objects at each N; (not with --quick, unless --data) a snapshot of a 1 GB
bucket on the real node against tar through kubectl exec; with --real-size, the whole stack
and the inner loop on the real node with 1.3 GB images. Pods of the benchmark go to its
own tainted kwok nodes (benchmarks/nodes.py); its namespaces are bench-<id>-*, deleted at
the end with their PVs.
Performance claims come from here, as ratios against peers measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.data import DataBench
from benchmarks.harness import (
    REPO,
    BenchError,
    Sandbox,
    Tools,
    delete_namespaces,
    find_sandbox,
    run,
    say,
)
from benchmarks.innerloop import InnerLoop
from benchmarks.nodes import BenchNodes, nodes_for
from benchmarks.realloop import RealSizeLoop
from benchmarks.realstack import RealStackFirst
from benchmarks.rebuild import measure_rebuilds
from benchmarks.report import Row, at_most, compare, json_document, markdown
from benchmarks.stack import StackBench
from benchmarks.tools import (
    Helm,
    KubectlApply,
    KubectlWait,
    OldScript,
    PalessDeploy,
    Tool,
    helm_binary,
)

OLD_WAIT_TIMEOUT = "120s"  # the old script's
QUICK_OLD_WAIT_TIMEOUT = "5s"  # --quick: bounded, although nothing matches and it ends at once
PEER_TIMEOUT_S = 60
QUICK_PEER_TIMEOUT_S = 15


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark paless-deploy on the sandbox against kubectl, the old bash "
                    "script and (--peers) Helm 4: --help, first deploy, no-op redeploy, one "
                    "app changed, failure detection; (--scale) a generated tree of N apps x "
                    "10 objects. Medians of --runs rounds, interleaved; ratios against the "
                    "peers measured in the same run.")
    parser.add_argument("--runs", type=int, default=3,
                        help="rounds per measurement (3; the scale runs' first deploy: 1)")
    parser.add_argument("--quick", action="store_true",
                        help="one round, image-pull failures only, short peer timeouts "
                             f"({QUICK_PEER_TIMEOUT_S}s): a smoke run (the tests use it)")
    parser.add_argument("--peers", action="store_true",
                        help="also Helm 4 (`helm upgrade --install --wait`), built from Go "
                             "modules into the sandbox's cache the first time")
    parser.add_argument("--scale", type=_sizes, default=[], metavar="N[,N...]",
                        help="also the generated tree of N apps x 10 objects, for each N "
                             "(e.g. 10,100,300)")
    parser.add_argument("--data", action=argparse.BooleanOptionalAction, default=None,
                        help="the data section: a snapshot of a bucket on the real node "
                             "(default: on, off with --quick)")
    parser.add_argument("--data-mb", type=int, default=1000, metavar="MB",
                        help="size of the data section's bucket (1000)")
    parser.add_argument("--no-stack", action="store_true",
                        help="skip the Paless stack section (with --scale or --real-size: "
                             "those only)")
    parser.add_argument("--real-size", action="store_true",
                        help="also, on the sandbox's real node with 1.3 GB images, the whole "
                             "stack's first deploy and no-op (registry and k3s import: "
                             "benchmarks/realstack.py) and the inner loop (sync, rebuild "
                             "through the registry and through k3s import, `paless-deploy "
                             "web`, the old ways: benchmarks/realloop.py)")
    parser.add_argument("--peer-timeout", type=float, default=None, metavar="SECONDS",
                        help=f"--timeout of Helm and kubectl in the failure runs "
                             f"({PEER_TIMEOUT_S}; --quick {QUICK_PEER_TIMEOUT_S}); they wait "
                             "it out, so the ratios scale with it")
    parser.add_argument("--checkout", type=Path, default=None, metavar="DIR",
                        help="measure the paless-deploy of another checkout (e.g. main, or a "
                             "commit's worktree, for a before/after) with this benchmark")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--kubeconfig", help="default: KUBECONFIG, else the sandbox's")
    parser.add_argument("--keep", action="store_true",
                        help="keep the bench-* namespaces and nodes (to look at them)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.data is None:
        args.data = not args.quick
    if args.no_stack and not (args.scale or args.real_size or args.data):
        parser.error("--no-stack leaves nothing to measure without --scale, --real-size or "
                     "--data")
    if args.quick:
        args.runs = 1
    if args.data_mb < 100:
        parser.error("--data-mb must be at least 100 (objects of 100 MB)")
    if args.peer_timeout is None:
        args.peer_timeout = QUICK_PEER_TIMEOUT_S if args.quick else PEER_TIMEOUT_S
    return args


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes are numbers, e.g. 10,100,300"
                                         ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes are at least 1")
    return sizes


def measure_help(tools: Tools, runs: int) -> Row:
    say(f"--help: paless-deploy vs kubectl, {runs} run(s) each")
    ours = [*tools.paless_deploy, "--help"]
    theirs = [str(tools.sandbox.kubectl), "--help"]
    run(ours, tools.env)  # warm the page cache for both
    run(theirs, tools.env)
    mine, kubectl = [], []
    for _ in range(runs):
        mine.append(tools.check(ours, "paless-deploy --help").seconds)
        kubectl.append(tools.check(theirs, "kubectl --help").seconds)
    return compare("`paless-deploy --help` vs `kubectl --help`", mine, kubectl,
                   "kubectl --help", "≤ 3x", at_most(3))


def measure_rebuild(tools: Tools, workdir: Path, runs: int) -> tuple[Row, dict[str, list[float]]]:
    found = measure_rebuilds(tools, workdir, runs)
    return compare("rebuild after a one-line change (`build`): BuildKit vs classic builder",
                   found["buildkit"], found["classic"], "classic builder", "≤ 0.75x",
                   at_most(0.75)), found


def machine_notes(args: argparse.Namespace, sandbox: Sandbox, helm: Path | None,
                  load_before: float) -> list[str]:
    kubectl = subprocess.run([str(sandbox.kubectl), "version", "--client", "-o", "yaml"],
                             capture_output=True, text=True, check=False).stdout
    version = next((line.split(":", 1)[1].strip() for line in kubectl.splitlines()
                    if "gitVersion" in line), "?")
    helm_version = ""
    if helm is not None:
        helm_version = subprocess.run([str(helm), "version", "--short"], capture_output=True,
                                      text=True, check=False).stdout.strip()
    return [
        f"{time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} CPUs shared with "
        f"other work (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after), "
        f"Python {platform.python_version()}, kubectl {version}"
        + (f", Helm {helm_version}" if helm_version else "") + ".",
        (f"Medians of {args.runs} interleaved round(s) (scale: one first deploy, "
         f"{max(1, args.runs - 1)} change round(s); failures: each peer once, with --timeout "
         f"{args.peer_timeout:.0f}s, all at once, and again alone when it ended before its "
         "timeout); every tool runs as a subprocess; peak RSS is the largest process of its "
         "tree (wait4)."),
        *([f"paless-deploy of the checkout {args.checkout}."] if args.checkout else []),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every measurement ran (targets met or not)."""
    args = parse_args(argv)
    try:
        sandbox = find_sandbox(args.kubeconfig)
        helm = helm_binary() if args.peers else None
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    bench_id = secrets.token_hex(3)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="paless-bench-") as tmp:
        workdir = Path(tmp)
        tools = Tools.create(sandbox, workdir, *([args.checkout] if args.checkout else []))
        paless = PalessDeploy(tools, workdir)
        kubectl = KubectlWait(tools, workdir)
        bare = KubectlApply(tools, workdir)
        old = OldScript(tools, workdir, ["scheduler", "web", "worker"],
                        QUICK_OLD_WAIT_TIMEOUT if args.quick else OLD_WAIT_TIMEOUT)
        helm_tool: list[Tool] = [Helm(tools, workdir, helm)] if helm is not None else []
        stack = StackBench(tools, workdir, bench_id, args.runs, args.quick, paless,
                           [*helm_tool, kubectl, old], bare, args.peer_timeout)
        from benchmarks.scale import ScaleBench

        scale = ScaleBench(tools, workdir, bench_id, args.runs, args.scale, paless,
                           [*helm_tool, kubectl], bare)
        nodes = BenchNodes(tools, bench_id)
        data = DataBench(tools, workdir, bench_id, args.runs, args.data_mb)
        rows: list[Row] = []
        inner: InnerLoop | None = None
        real: RealSizeLoop | None = None
        whole: RealStackFirst | None = None
        rebuilds: dict[str, list[float]] = {}
        try:
            rows.append(measure_help(tools, args.runs))
            if not args.no_stack:
                row, rebuilds = measure_rebuild(tools, workdir, args.runs)
                rows.append(row)
            # the stack's namespaces are gone before the scale runs start: the larger need
            pods, cpus = StackBench.pods_needed(len(stack.peers), args.quick)
            scale_pods = 3 * max(args.scale, default=0) + 20  # 3 tools, rolling updates
            nodes.ensure(max(nodes_for(pods, cpus), nodes_for(scale_pods)))
            if not args.no_stack:
                from kubernetes import client, config

                core = client.CoreV1Api(config.new_client_from_config(
                    config_file=str(sandbox.kubeconfig)))
                stack.run(core)
                rows += stack.rows()
                # the inner loop edits web in the stacks paless-deploy and the old script
                # deployed (healthy again after the failure runs)
                inner = InnerLoop(tools, workdir, stack.deployed[paless.name].namespace,
                                  stack.deployed[old.name].namespace, args.runs, args.quick,
                                  stack.source or REPO)
                inner.measure()
                inner.stop()
                rows += inner.rows()
                say("deleting the stack's namespaces (and waiting, before the scale runs)")
                delete_namespaces(tools, stack.created, wait_s=180 if args.scale else 0)
            if args.data:
                data.run()
                rows += data.rows()
                delete_namespaces(tools, data.created, wait_s=120 if args.scale else 0)
            scale.run()
            rows += scale.rows()
            if args.real_size:
                whole = RealStackFirst(tools, workdir, bench_id, args.runs)
                whole.measure()
                rows += whole.rows()
                real = RealSizeLoop(tools, workdir, bench_id, args.runs)
                real.measure()
                rows += real.rows()
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench: interrupted", file=sys.stderr)
            return 130
        finally:
            if inner is not None:
                inner.stop()
            # the real-size sections fill their lists as they go (a failure keeps them)
            created_real = [*(whole.created if whole else []), *(real.created if real else [])]
            created = sorted(set(stack.created + scale.created + created_real + data.created))
            if args.keep:
                say(f"keeping namespaces {', '.join(created)} and nodes {', '.join(nodes.names)}")
            else:
                say(f"deleting namespaces {', '.join(created) or '(none)'}, their PVs, "
                    "and the benchmark's nodes")
                delete_namespaces(tools, created)
                nodes.delete()
    notes = [*machine_notes(args, sandbox, helm, load_before), *stack.notes, *data.notes,
             *(inner.final_notes() if inner is not None else []),
             *(whole.notes() if whole is not None else []),
             *(real.notes() if real is not None else []),
             f"The whole run took {(time.monotonic() - started) / 60:.1f} minutes."]
    if args.json:
        samples = {"stack": stack.samples, "scale": {str(n): s for n, s in scale.samples.items()},
                   "data": data.samples,
                   "rebuild": rebuilds,
                   "edit_to_ready": inner.samples if inner is not None else {},
                   "real_size": real.samples if real is not None else {},
                   "real_stack": whole.samples if whole is not None else {}}
        print(json_document(rows, samples, notes, {
            "runs": args.runs, "quick": args.quick, "peers": args.peers, "scale": args.scale,
            "data_mb": args.data_mb if args.data else None,
            "bench_id": bench_id}))
    else:
        print(markdown(rows, notes))
    return 0
