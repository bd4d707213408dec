"""Building the real stack's images offline: Debian rootfs tars by debootstrap (imported as
base images), Go binaries from the module proxy, then `docker build` on the recipe's context.

Every step is cached (a tar, a binary, a base image) and logged, command first, to
CACHE/realstack/logs/{debian,go,image,push}-NAME.log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from paless_sandbox.layout import CACHE, SUPPORT
from paless_sandbox.messages import SandboxError, tail
from paless_sandbox.realstack.recipes import (
    APT_CONF,
    DEBIAN_MIRROR,
    IMPORT_CHANGES,
    KEY_LABEL,
    DebianBase,
    GoBinary,
    GoMain,
    ProbeKind,
    Recipe,
)

HOME = CACHE / "realstack"
ROOTFS, GO_OUT, LOGS = HOME / "rootfs", HOME / "go", HOME / "logs"
CONTEXTS = SUPPORT / "realstack"  # one directory per recipe: its Dockerfile and files
BUILD_TIMEOUT_S = 3600.0


def run_logged(argv: list[str], log: Path, *, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> str:
    """Run `argv`, its command line and output appended to `log`; its stdout. A failure is a
    SandboxError naming the log."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        res = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, text=True,
                             stdout=subprocess.PIPE, stderr=out, check=False,
                             timeout=BUILD_TIMEOUT_S)
        out.write(res.stdout)
    if res.returncode != 0:
        raise SandboxError(f"`{' '.join(argv[:3])} ...` failed (exit {res.returncode}); "
                           f"see {log}:\n{tail(log)}")
    return res.stdout


def context_files(recipe: Recipe) -> dict[str, bytes]:
    """The recipe's build context as `recipe_key` reads it: relative path ("*" appended when
    executable) -> bytes."""
    root = CONTEXTS / recipe.name
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        mark = "*" if os.access(path, os.X_OK) else ""
        files[f"{path.relative_to(root)}{mark}"] = path.read_bytes()
    return files


def docker_has(image: str) -> bool:
    """Whether the local Docker engine holds `image`."""
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          check=False).returncode == 0


def debootstrap_rootfs(base: DebianBase, tar: Path, log: Path) -> None:
    """A minbase rootfs of the suite with the sandbox's apt sources and configuration, and no
    package lists or .debs, as a tar (numeric owners, xattrs)."""
    ROOTFS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=ROOTFS))
    try:
        root = work / "root"
        run_logged(["debootstrap", "--variant=minbase", base.suite, str(root), DEBIAN_MIRROR],
                   log)
        (root / "etc/apt/sources.list").write_text(base.sources_list())
        (root / "etc/apt/apt.conf.d/90paless-sandbox").write_text(APT_CONF)
        for leftover in [*(root / "var/cache/apt/archives").glob("*.deb"),
                         *(root / "var/lib/apt/lists").iterdir()]:
            if leftover.is_file():
                leftover.unlink()
        part = tar.with_suffix(".part")
        run_logged(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(part),
                    "."], log)
        part.replace(tar)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_base(base: DebianBase) -> None:
    """The suite's base image in the local engine: imported from its cached tar, debootstrap
    run first when there is none."""
    if docker_has(base.image):
        return
    log = LOGS / f"debian-{base.suite}.log"
    tar = ROOTFS / base.tar_name
    if not tar.exists():
        debootstrap_rootfs(base, tar, log)
    changes = [a for c in (*IMPORT_CHANGES, f"LABEL {KEY_LABEL}={base.suite}")
               for a in ("--change", c)]
    run_logged(["docker", "import", *changes, str(tar), base.image], log)


def ensure_go_binary(recipe: Recipe, go: GoBinary) -> tuple[Path, float]:
    """The Go program, built once per recipe into CACHE/realstack/go/SLUG; its path and the
    seconds spent building it (0 when cached)."""
    out = GO_OUT / go.slug(context_files(recipe))
    binary = out / go.name
    if binary.exists():
        return binary, 0.0
    started = time.monotonic()
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    log = LOGS / f"go-{go.name}.log"
    flags = ["-trimpath", "-ldflags", go.ldflags]
    static = {"CGO_ENABLED": "0"}
    if go.main is GoMain.UPSTREAM:
        run_logged(["go", "install", *flags, f"{go.module}@{go.version}"], log,
                   env={**static, "GOBIN": str(part)})
    else:
        with tempfile.TemporaryDirectory() as tmp:  # the module cache's copy stays read-only
            module = Path(tmp) / "module"
            shutil.copytree(CONTEXTS / recipe.name / "go", module)
            run_logged(["go", "build", *flags, "-o", str(part / go.name), "."], log,
                       cwd=module, env=static)
    shutil.rmtree(out, ignore_errors=True)
    part.replace(out)
    return binary, time.monotonic() - started


@dataclass(frozen=True)
class Built:
    """What one build produced, for builds.json."""

    tag: str
    key: str
    go_seconds: float
    docker_seconds: float


def docker_build(recipe: Recipe, key: str, tag: str, *, no_cache: bool = False) -> Built:
    """Build the recipe's image as `tag`, labelled with its key (the base and the Go binary
    first, when missing). The legacy builder: it takes the local base image as it is.
    `no_cache`: no layer from an earlier build (what a fresh machine does)."""
    ensure_base(recipe.base)
    binary, go_seconds = (ensure_go_binary(recipe, recipe.go) if recipe.go else (None, 0.0))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp) / "context"
        shutil.copytree(CONTEXTS / recipe.name, ctx,
                        ignore=shutil.ignore_patterns("__pycache__"))
        if binary is not None:
            shutil.copy2(binary, ctx / binary.name)
        run_logged(["docker", "build", *(["--no-cache"] if no_cache else []),
                    f"--label={KEY_LABEL}={key}",
                    f"--build-arg=BASE={recipe.base.image}", "-t", tag, str(ctx)],
                   LOGS / f"image-{recipe.name}.log", env={"DOCKER_BUILDKIT": "0"})
    return Built(tag, key, go_seconds, time.monotonic() - started)


def push(recipe: Recipe, tag: str) -> None:
    run_logged(["docker", "push", tag], LOGS / f"push-{recipe.name}.log")


def probe_versions(recipe: Recipe, tag: str) -> dict[str, str]:
    """The real versions inside the image: Debian packages by dpkg-query, programs by the
    first line they print."""
    versions: dict[str, str] = {}
    packages = [p.label for p in recipe.probes if p.kind is ProbeKind.PACKAGE]
    if packages:
        res = subprocess.run(["docker", "run", "--rm", "--entrypoint", "dpkg-query", tag, "-W",
                              "-f", "${Package} ${Version}\n", *packages],
                             capture_output=True, text=True, check=False, timeout=120)
        for line in res.stdout.splitlines():
            name, _, version = line.partition(" ")
            versions[name] = version
    for probe in recipe.probes:
        if probe.kind is ProbeKind.COMMAND:
            res = subprocess.run(["docker", "run", "--rm", "--entrypoint", probe.argv[0], tag,
                                  *probe.argv[1:]], capture_output=True, text=True, check=False,
                                 timeout=120)
            lines = [ln.strip() for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
            versions[probe.label] = lines[0] if lines else "?"
    return versions


def image_shape(tag: str) -> tuple[int, int]:
    """(size in bytes, layers) of a local image."""
    out = subprocess.run(["docker", "image", "inspect", "--format",
                          "{{.Size}} {{len .RootFS.Layers}}", tag], capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])
