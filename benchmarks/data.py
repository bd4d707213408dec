"""Data: a snapshot of a 1 GB bucket (`paless-deploy backup`: the PostgreSQL dump, every
object through the S3 API with its sha256, the manifests), against the deployment guide's
way, `kubectl exec` of tar over MinIO's data directory, of the same namespace.

The stack is the data tests' (tests/fixtures/realdata.py: PostgreSQL and MinIO on the
sandbox's real node); the bucket holds random (incompressible) objects of 100 MB, written
inside the cluster by mc. Off in --quick (a gigabyte, twice per round); --data-mb sets the
size. Needs the real node and the Paless stand-in image; says why when it is skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import BenchError, Tools, say
from benchmarks.report import Row, at_most, compare, skipped

OBJECT_MB = 100
MEASUREMENT = "snapshot of a {size} bucket (`backup`: dump, objects, sha256, manifests)"
BASELINE = "`kubectl exec minio-0 -- tar cf - /data`"
TARGET = "≤ 2x"


@dataclass
class DataBench:
    """The data measurement of one benchmark run."""

    tools: Tools
    workdir: Path
    bench_id: str
    runs: int
    size_mb: int = 1000
    created: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    why_not: str = ""

    @property
    def namespace(self) -> str:
        return f"bench-{self.bench_id}-data"

    def run(self) -> None:
        from tests.fixtures.realdata import real_stack_missing

        why = self._real_node_missing() or real_stack_missing(self.tools.kubectl())
        if why:
            self.why_not = why
            say(f"data: skipped ({why})")
            return
        env = self._deploy()
        self._fill(env)
        for round_no in range(self.runs):
            self._round(round_no)

    def rows(self) -> list[Row]:
        size = f"{self.size_mb / 1000:.1f} GB" if self.size_mb >= 1000 else f"{self.size_mb} MB"
        name = MEASUREMENT.format(size=size)
        if self.why_not:
            self.notes.append(f"Data: not measured ({self.why_not}).")
            return [skipped(name, BASELINE, TARGET)]
        row = compare(name, self.samples.get("backup", []), self.samples.get("tar", []),
                      BASELINE, TARGET, at_most(2))
        mine = row.paless_deploy_s or 0
        self.notes.append(
            f"Data: {self.size_mb} MB in {self.size_mb // OBJECT_MB} objects of random bytes "
            f"on the real node's MinIO; backup moved them at {self.size_mb / mine:.0f} MB/s "
            f"(port-forward, S3, sha256 and MD5 of every byte, fsync), printing "
            f"{self.samples.get('progress_lines', [0])[-1]:.0f} progress lines per run; tar "
            "copies MinIO's files as they lie on its disk (no object keys, no checksums, "
            "restorable only into a MinIO of the same version)." if mine else "")
        return [row]

    # -- steps ------------------------------------------------------------------------

    def _real_node_missing(self) -> str:
        done = subprocess.run(self.tools.kubectl("get", "node", "sandbox-real", "-o",
                                                 "jsonpath={.status.conditions[?(@.type=="
                                                 "\"Ready\")].status}"),
                              env=dict(self.tools.env), capture_output=True, text=True,
                              check=False)
        return "" if done.stdout.strip() == "True" else "the sandbox has no Ready real node"

    def _deploy(self) -> dict[str, str]:
        from tests.fixtures.realdata import BASE_IMAGE, OVERLAY, realdata_project

        project = realdata_project(self.workdir / "data-project").dir
        env = {**self.tools.env, "BASE_IMAGE": BASE_IMAGE, "OVERLAY": OVERLAY,
               "PROJECT_NAME": "paless-bench-data"}
        self.created.append(self.namespace)
        say(f"data: deploying the realdata stack into {self.namespace} (not timed)")
        self.tools.check(self.tools.pd(self.namespace, "--timeout", "15m", "all",
                                       project=project),
                         "paless-deploy all (data stack)", env=env, timeout=1200)
        return env

    def _fill(self, env: dict[str, str]) -> None:
        from tests.fixtures.realdata import BUCKET, MC_IMAGE, ON_REAL_NODE

        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-fill"},
               "spec": {**ON_REAL_NODE, "restartPolicy": "Never", "dnsPolicy": "None",
                        "dnsConfig": {"nameservers": ["10.96.0.10"],
                                      "searches": [f"{self.namespace}.svc.cluster.local"]},
                        "containers": [{
                            "name": "mc", "image": MC_IMAGE, "command": ["sh", "-ec", (
                                "mc --config-dir /tmp/mc alias set p http://minio:9000 "
                                '"$U" "$P" >/dev/null; '
                                f"for i in $(seq {self.size_mb // OBJECT_MB}); do "
                                f"head -c {OBJECT_MB * 1_000_000} /dev/urandom | "
                                f"mc --config-dir /tmp/mc pipe p/{BUCKET}/bench/blob-$i; "
                                "done")],
                            "env": [{"name": short, "valueFrom": {"secretKeyRef": {
                                "name": "paless-secret", "key": key}}}
                                for short, key in (("U", "MINIO_ROOT_USER"),
                                                   ("P", "MINIO_ROOT_PASSWORD"))]}]}}
        say(f"data: writing {self.size_mb} MB of random objects into the bucket (not timed)")
        subprocess.run(self.tools.kubectl("apply", "-n", self.namespace, "-f", "-"),
                       input=json.dumps(pod), text=True, env=env, check=True,
                       capture_output=True)
        self.tools.check(self.tools.kubectl(
            "wait", "-n", self.namespace, "--for=jsonpath={.status.phase}=Succeeded",
            "pod/bench-fill", "--timeout=900s"), "filling the bucket", timeout=960)

    def _round(self, round_no: int) -> None:
        target = self.workdir / f"data-snapshots-{round_no}"
        say(f"data: round {round_no + 1}: paless-deploy backup")
        done = self.tools.check(self.tools.pd(self.namespace, "backup", "--to", str(target)),
                                "paless-deploy backup", timeout=1800)
        progress = [line for line in done.output.splitlines()
                    if re.search(r"objects: .* of .* \(\d+%\)", line)]
        if not progress:
            raise BenchError(f"backup printed no progress for the objects:\n{done.tail()}")
        self.samples.setdefault("backup", []).append(done.seconds)
        self.samples.setdefault("progress_lines", []).append(float(len(progress)))
        shutil.rmtree(target, ignore_errors=True)
        say(f"data: round {round_no + 1}: kubectl exec tar")
        copy = self.workdir / "data-tar.tar"
        kubectl = " ".join(self.tools.kubectl("exec", "-n", self.namespace, "minio-0", "-c",
                                              "minio", "--", "tar", "cf", "-", "/data"))
        done = self.tools.check(["sh", "-c", f"{kubectl} > {copy}"], "kubectl exec tar",
                                timeout=1800)
        self.samples.setdefault("tar", []).append(done.seconds)
        copy.unlink(missing_ok=True)
