"""The bad-input corpus, run through the CLI: every case in text and in JSON mode.

Each case of tests/corpus/cases/*.yaml is a small input (flags, environment, an env file,
manifests, a kubeconfig) with the exit code, error code and a phrase of the message it
must get. For each run: the exit code; no traceback and no "Internal error"; exactly one
JSON document on stdout with the same exit code and the error code; the phrase; output of
a readable length (a 100 KB mistake is named, not echoed); and two canary secrets, one in
the environment and one in the env file, nowhere in stdout or stderr.

Most cases need no service and take a fraction of a second; those marked `cluster` use
the sandbox (each in a namespace of its own, deleted afterwards), `docker` its engine and
registry. A cluster case may name `setup`: objects applied into its namespace (and
cluster-scoped ones, deleted afterwards) before the run, as an earlier deploy would have
left them. The case schema is described in tests/corpus/README.md.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from paless_deploy.core.configuration.variables import VARIABLES
from tests.fixtures.http import serving

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CASES_DIR = HERE / "cases"
CANARY_ENV = f"canary-env-{secrets.token_hex(8)}"  # POSTGRES_PASSWORD in the environment
CANARY_FILE = f"canary-file-{secrets.token_hex(8)}"  # PAPERLESS_SECRET_KEY in the env file
BIG = "a" * 100_000  # {big}: a 100 KB value
MAX_OUTPUT = 12_000  # characters of stdout + stderr a case may print, unless it says more
MIN_CASES = 60
PARALLEL_CASES = 3  # offline cases run at once (each runs its text and JSON modes at once)
SCHEMA = {"name", "covers", "args", "env", "env_file", "env_file_b64", "files", "overlay",
          "kubeconfig", "project", "cluster", "docker", "modes", "expect", "setup", "stdin",
          "serve"}
EXPECT = {"exit", "code", "phrase", "max_output"}
_SCRUBBED = {"KUBECONFIG", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
             "BRANCH_NAME", "GITHUB_ACTIONS", "GITLAB_CI", *(v.name for v in VARIABLES)}


def load_cases() -> list[dict]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()) or []:
            case["file"] = path.name
            cases.append(case)
    return cases


CASES = load_cases()


def _marks(case: dict) -> list[pytest.MarkDecorator]:
    marks = []
    if case.get("cluster"):
        marks += [pytest.mark.cluster, pytest.mark.docker]
    elif case.get("docker"):
        marks.append(pytest.mark.docker)
    return marks


@dataclass
class Prepared:
    """A case made concrete: its project directory, argv (without --output) and env."""

    dir: Path
    argv: list[str]
    env: dict[str, str]
    stdin: str | None = None


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _project(case: dict, root: Path) -> Path:
    """`tiny` (default): one app, a dev overlay of the case's objects (a ConfigMap when it
    names none); `paless`: the repository's manifests and Dockerfiles."""
    root.mkdir(parents=True)
    if case.get("project") == "paless":
        shutil.copytree(REPO / "k8s", root / "k8s")
        for f in [*REPO.glob("Dockerfile.*"), REPO / ".dockerignore"]:
            shutil.copy2(f, root / f.name)
        return root
    (root / "tiny").mkdir()
    (root / "tiny" / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (root / "tiny" / "hello.txt").write_text(f"{uuid.uuid4().hex}\n")
    overlay = root / "k8s" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    objects = case.get("overlay") or [{"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "settings"},
                                       "data": {"greeting": "hello"}}]
    if isinstance(objects, str):
        (overlay / "objects.yaml").write_text(objects)
    else:
        (overlay / "objects.yaml").write_text(yaml.safe_dump_all(objects))
    (overlay / "kustomization.yaml").write_text("resources:\n- objects.yaml\n")
    return root


def prepare(case: dict, tmp: Path, kubeconfig: Path | None, namespace: str,
            server: str = "") -> Prepared:
    project = _project(case, tmp / "project")
    values = {"project": str(project), "missing": str(tmp / "no-such-file"),
              "namespace": namespace, "canary": CANARY_ENV, "big": BIG, "tmp": str(tmp),
              "server": server}
    if kubeconfig is not None:
        values["sandbox_kubeconfig"] = str(kubeconfig)
        values["sandbox_restricted_kubeconfig"] = str(kubeconfig.parent / "kubeconfig-restricted")
        values["sandbox_server"] = yaml.safe_load(kubeconfig.read_text())[
            "clusters"][0]["cluster"]["server"]
    for rel, content in (case.get("files") or {}).items():
        path = project / _fill(rel, values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(content, values))
    if case.get("kubeconfig") is not None:
        (tmp / "case.kubeconfig").write_text(_fill(case["kubeconfig"], values))
    values["kubeconfig"] = str(tmp / "case.kubeconfig")
    argv = ["--project-dir", str(project)]
    env_file = tmp / "case.env"
    canary_line = f"\nPAPERLESS_SECRET_KEY={CANARY_FILE}\n".encode()
    if case.get("env_file_b64") is not None:
        env_file.write_bytes(base64.b64decode(case["env_file_b64"]) + canary_line)
    elif case.get("env_file") is not None:
        env_file.write_bytes(_fill(case["env_file"], values).encode() + canary_line)
    if env_file.exists():
        argv += ["--env-file", str(env_file)]
    argv += [_fill(str(a), values) for a in case.get("args") or []]
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update({"NO_COLOR": "1", "POSTGRES_PASSWORD": CANARY_ENV,
                "KUBECONFIG": str(tmp / "no-kubeconfig-here")})  # never an ambient cluster
    if case.get("cluster") or case.get("docker"):
        env["REGISTRY"] = "127.0.0.1:5000"
    env.update({k: _fill(str(v), values) for k, v in (case.get("env") or {}).items()})
    stdin = _fill(case["stdin"], values) if case.get("stdin") is not None else None
    return Prepared(project, argv, env, stdin)


@dataclass
class Outcome:
    mode: str
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (f"[{self.mode}] paless-deploy {' '.join(a[:80] for a in self.argv)} -> "
                f"{self.code}\n--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n"
                f"{self.stderr[-3000:]}")


def run_mode(prepared: Prepared, mode: str) -> Outcome:
    argv = [*prepared.argv[:2], "--output", mode, *prepared.argv[2:]]
    done = subprocess.run([sys.executable, "-m", "paless_deploy", *argv], capture_output=True,
                          text=True, env=prepared.env, cwd=prepared.dir, timeout=240,
                          check=False, input=prepared.stdin,
                          stdin=None if prepared.stdin is not None else subprocess.DEVNULL)
    return Outcome(mode, argv, done.returncode, done.stdout, done.stderr)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _flat(text: str) -> str:
    return " ".join(text.split())


def check(case: dict, outcome: Outcome) -> None:
    expect = case["expect"]
    both = outcome.stdout + outcome.stderr
    assert outcome.code == expect["exit"], f"exit {outcome.code}, expected {expect['exit']}\n" \
        f"{outcome}"
    assert "Traceback" not in both, f"a traceback\n{outcome}"
    assert "Internal error" not in both, f"an internal error\n{outcome}"
    for canary in (CANARY_ENV, CANARY_FILE):
        assert canary not in both, f"the canary secret {canary[:11]}... was printed\n{outcome}"
    limit = expect.get("max_output", MAX_OUTPUT)
    assert len(both) <= limit, f"{len(both)} characters printed (at most {limit})\n{outcome}"
    if "{big}" in json.dumps(case):  # the 100 KB value: named once per stream, at most
        for stream in (outcome.stdout, outcome.stderr):
            assert stream.count(BIG[:40]) <= 1, f"the long value is echoed twice\n{outcome}"
    phrase = _flat(expect["phrase"])
    if outcome.mode == "json":
        try:
            doc = json.loads(outcome.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not exactly one JSON document ({exc})\n"
                                 f"{outcome}") from None
        assert doc["exit_code"] == outcome.code, f"exit_code {doc['exit_code']}\n{outcome}"
        codes = [e["code"] for e in doc.get("errors") or []]
        if expect.get("code"):
            assert codes and codes[0] == expect["code"], f"error codes {codes}\n{outcome}"
        elif expect["exit"] == 0:
            assert not codes, f"error codes {codes}\n{outcome}"
        said = _flat(" ".join(_strings(doc)) + " " + outcome.stderr)
        assert phrase in said, f"{expect['phrase']!r} is not in the document\n{outcome}"
    else:
        assert phrase in _flat(both), f"{expect['phrase']!r} is not in the output\n{outcome}"


def test_the_corpus_is_complete_and_well_formed() -> None:
    names = [c.get("name") for c in CASES]
    assert len(names) >= MIN_CASES, f"{len(names)} cases, at least {MIN_CASES} wanted"
    assert len(set(names)) == len(names), "case names repeat"
    for case in CASES:
        assert set(case) - {"file"} <= SCHEMA, (case["name"], set(case) - SCHEMA)
        assert set(case["expect"]) <= EXPECT, (case["name"], case["expect"])
        assert {"exit", "phrase"} <= set(case["expect"]) and case.get("covers"), case["name"]
        assert case["expect"]["exit"] == 0 or case["expect"].get("code"), case["name"]


class _Answer(BaseHTTPRequestHandler):
    """Every request answered with the status the case's `serve` names (a registry behind
    a broken proxy, say)."""

    status = 500

    def _answer(self) -> None:
        body = b"upstream failed\n"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def served(case: dict) -> Iterator[str]:
    """`{server}`: host:port of an HTTP server answering as the case's `serve` says."""
    if not case.get("serve"):
        yield ""
        return
    handler = type("Handler", (_Answer,), {"status": int(case["serve"]["status"])})
    with serving(handler) as port:
        yield f"127.0.0.1:{port}"


CLUSTER_SCOPED_SETUP = {"PersistentVolume", "ValidatingAdmissionPolicy",
                        "ValidatingAdmissionPolicyBinding"}


def _setup(case: dict, sandbox: Any, namespace: str, values: dict[str, str]) -> list[str]:
    """Apply the case's `setup` objects as an earlier deploy would have (our field manager)
    into `namespace`; wait until each claim pre-bound to a volume is Bound. Returns the
    cluster-scoped objects made (kind/name), to delete afterwards."""
    setup = case.get("setup")
    if not setup:
        return []
    text = _fill(setup if isinstance(setup, str) else yaml.safe_dump_all(setup), values)
    sandbox.kubectl("apply", "--server-side", "--field-manager=paless-deploy", "-n", namespace,
                    "-f", "-", input=text)
    made = []
    for obj in yaml.safe_load_all(text):
        name = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        if obj["kind"] == "PersistentVolumeClaim" and obj["spec"].get("volumeName"):
            sandbox.kubectl("wait", "-n", namespace, "--for=jsonpath={.status.phase}=Bound",
                            "--timeout=90s", name)
        if obj["kind"] in CLUSTER_SCOPED_SETUP:
            made.append(name)
    if any(obj["kind"] == "ValidatingAdmissionPolicyBinding"
           for obj in yaml.safe_load_all(text)):
        _await_policy(case, sandbox, namespace, values)
    return made


def _await_policy(case: dict, sandbox: Any, namespace: str, values: dict[str, str]) -> None:
    """An admission policy binds some time after it is created (the API server's informer
    compiles it): wait until a server-side dry run of the case's overlay is refused by it,
    so that the tool meets the policy, not a server that does not know it yet."""
    text = _fill(yaml.safe_dump_all(case["overlay"]), values)
    deadline = time.monotonic() + 60
    while True:
        probe = sandbox.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                                input=text, check=False)
        if probe.returncode != 0 and "ValidatingAdmissionPolicy" in probe.stderr:
            return
        assert time.monotonic() < deadline, f"the case's policy never took effect: {probe}"
        time.sleep(0.5)


def test_the_readme_says_what_each_class_gets() -> None:
    """README's table: one row per case file, listing every exit code and error code its
    cases expect."""
    table = (HERE / "README.md").read_text().split("## What each class gets", 1)[1]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        found = [f for f in (CASES_DIR.glob("*.yaml")) if f"(`{f.name}`)" in cells[0]]
        if found:
            rows[found[0].name] = cells
    assert sorted(rows) == sorted(p.name for p in CASES_DIR.glob("*.yaml"))
    for case in CASES:
        _, exits, codes, _ = rows[case["file"]]
        expect = case["expect"]
        assert str(expect["exit"]) in exits, (case["name"], exits)
        assert not expect.get("code") or f"`{expect['code']}`" in codes, (case["name"], codes)


def _run_case(case: dict, tmp: Path, kubeconfig: Path | None = None,
              namespace: str = "", sandbox: Any = None) -> list[Outcome]:
    """Every mode of a case, each in its own copy (a cluster case: its own namespace, made
    first when the case names one or has a setup), both at once."""
    modes = case.get("modes") or ["text", "json"]
    made: list[str] = []
    with served(case) as server:
        prepared = [prepare(case, tmp / mode, kubeconfig, f"{namespace}-{mode[0]}", server)
                    for mode in modes]
        try:
            if sandbox is not None and ("{namespace}" in case.get("args", [])
                                        or case.get("setup")):
                for mode in modes:
                    ns = f"{namespace}-{mode[0]}"
                    sandbox.kubectl("create", "namespace", ns)
                    made += _setup(case, sandbox, ns, {"namespace": ns})
            with ThreadPoolExecutor(max_workers=len(modes)) as pool:
                return list(pool.map(run_mode, prepared, modes))
        finally:
            if made:
                sandbox.kubectl("delete", "--ignore-not-found", "--wait=false", *made,
                                check=False)


@pytest.fixture(scope="session")
def offline_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Outcome]]:
    """The cases that need no service, run a few at a time once per session (they are most
    of the corpus, and each is mostly a Python start-up)."""
    offline = [c for c in CASES if not c.get("cluster") and not c.get("docker")]
    root = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(max_workers=PARALLEL_CASES) as pool:
        runs = pool.map(lambda c: _run_case(c, root / c["name"]), offline)
        return {case["name"]: outcomes for case, outcomes in zip(offline, runs, strict=True)}


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"], marks=_marks(c))
                                  for c in CASES])
def test_case(case: dict, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not case.get("cluster") and not case.get("docker"):
        outcomes = request.getfixturevalue("offline_outcomes")[case["name"]]
    elif case.get("docker") and not case.get("cluster"):
        request.getfixturevalue("registry")
        outcomes = _run_case(case, tmp_path)
    else:
        sandbox = request.getfixturevalue("sandbox")
        request.getfixturevalue("registry")
        namespace = f"t-corpus-{uuid.uuid4().hex[:8]}"
        try:
            outcomes = _run_case(case, tmp_path, sandbox.kubeconfig, namespace, sandbox)
        finally:
            from tests.integration.deploy_helpers import delete_instances

            delete_instances(sandbox, [f"{namespace}-{m[0]}"
                                       for m in case.get("modes") or ["text", "json"]])
    for outcome in outcomes:
        check(case, outcome)
