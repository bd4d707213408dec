"""The one door to Kustomize: `kubectl kustomize` (or `kustomize build`) on one overlay.

Kustomize is never re-implemented. Its output is cached by the content of the overlay
tree (k8s/), the binary and the command, so a no-op redeploy skips a quarter second.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.errors import ConfigError, whole_words
from paless_deploy.core.manifests.yamlread import load_documents

KUSTOMIZE_TIMEOUT_S = 120


def kustomize_build(overlay_dir: Path, overlay: str) -> list[JsonDict]:
    """Run `kubectl kustomize` (or a standalone `kustomize build`) on one overlay directory.

    Kustomize is never re-implemented: whichever `kubectl` is first on PATH does the
    work, and a standalone `kustomize` is used when there is no kubectl.
    """
    if not (overlay_dir / "kustomization.yaml").is_file():
        raise ConfigError(
            f"Overlay {overlay!r} has no kustomization: {overlay_dir / 'kustomization.yaml'} "
            "does not exist.",
            "Choose an existing overlay (dev, staging, prod) with --overlay or OVERLAY.",
        )
    found = kustomize_command()
    if found is None:
        raise ConfigError(
            "Cannot render manifests: neither kubectl nor kustomize is on PATH.",
            "Install kubectl (it includes kustomize) and make sure it is on PATH.",
        )
    command = [*found, str(overlay_dir)]
    cache = _render_cache_path(command, overlay_dir)
    cached = _read_cache(cache)
    if cached is not None:
        return _parse_kustomize_output(cached, overlay, overlay_dir)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=KUSTOMIZE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(
            f"Rendering overlay {overlay!r} took longer than {KUSTOMIZE_TIMEOUT_S} s "
            f"({' '.join(command)}).",
            "Check the overlay for remote resources that cannot be fetched.",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"Cannot run {command[0]} to render overlay {overlay!r}: {exc}.",
            "Install kubectl (it includes kustomize) and make sure it is on PATH.",
        ) from exc
    if done.returncode != 0:
        raise ConfigError(
            f"Kustomize failed on overlay {overlay!r} ({' '.join(command)}): "
            f"{_short_error(done.stderr) or 'no error output'}",
            _missing_file_hint(done.stderr) or (
                f"Fix the kustomization in {overlay_dir}; "
                f"`{' '.join(command)}` reproduces the error."), code="kustomize")
    _write_cache(cache, done.stdout)
    return _parse_kustomize_output(done.stdout, overlay, overlay_dir)


def _parse_kustomize_output(text: str, overlay: str, overlay_dir: Path) -> list[JsonDict]:
    try:
        documents = load_documents(text)  # as kubectl reads it (a bare `=`, `y`, `1:20`)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Kustomize output of overlay {overlay!r} is not valid YAML: {exc}",
            f"Check the manifests under {overlay_dir}.",
        ) from exc
    return [doc for doc in documents if isinstance(doc, dict)]


# Kustomize output is cached by content: the overlay tree (k8s/), the kustomize binary,
# the command. A no-op redeploy then skips a quarter second of `kubectl kustomize`.
# Overlays that may read anything outside k8/ (remote bases, paths leaving the tree)
# are never cached. PALESS_NO_RENDER_CACHE=1 turns the cache off.
RENDER_CACHE_MAX = 64


def _render_cache_path(command: list[str], overlay_dir: Path) -> Path | None:
    if os.environ.get("PALESS_NO_RENDER_CACHE"):
        return None
    root = overlay_dir.resolve().parent.parent  # k8s/overlays/<name> -> k8s
    binary = shutil.which(command[0])
    if binary is None or not root.is_dir():
        return None
    h = hashlib.sha256(" ".join(command[:-1]).encode() + b"\0")
    st = os.stat(binary)
    h.update(f"{os.path.realpath(binary)} {st.st_size} {st.st_mtime_ns}\0".encode())
    h.update(str(overlay_dir.resolve().relative_to(root)).encode() + b"\0")
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.startswith("kustomization") and (b"://" in data or b"../../.." in data):
            return None  # remote or out-of-tree inputs: the tree's hash would not cover them
        h.update(str(path.relative_to(root)).encode() + b"\0" + data + b"\0")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "paless-deploy" / "kustomize" / f"{h.hexdigest()}.yaml"


def _read_cache(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError:
        return None


def _write_cache(path: Path | None, text: str) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        entries = sorted(path.parent.glob("*.yaml"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-RENDER_CACHE_MAX]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written is only slower


def kustomize_command() -> list[str] | None:
    """How overlays are built here: `kubectl kustomize`, else `kustomize build`, else None."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def kustomize_works() -> str | None:
    """Build an empty kustomization as render would; None when it works, else why not."""
    command = kustomize_command()
    if command is None:
        return "neither kubectl nor kustomize is on PATH"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kustomization.yaml").write_text("resources: []\n")
        try:
            out = subprocess.run([*command, tmp], capture_output=True, text=True, timeout=30,
                                 check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(command)}` failed: {exc}"
    if out.returncode != 0:
        return f"`{' '.join(command)}` failed: {whole_words(out.stderr.strip(), 200)}"
    return None


def kubectl_client_version() -> tuple[dict[str, Any] | None, str]:
    """`kubectl version --client` as a dict (None and why when unavailable)."""
    if not shutil.which("kubectl"):
        return None, "kubectl is not on PATH"
    try:
        out = subprocess.run(["kubectl", "version", "--client", "-o", "json"],
                             capture_output=True, text=True, timeout=30, check=False)
        info = json.loads(out.stdout)["clientVersion"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as exc:
        return None, f"`kubectl version --client` failed: {exc}"
    return dict(info), ""


_MISSING = re.compile(r"lstat (/[^:'\s]+): no such file or directory")


def _short_error(stderr: str) -> str:
    """kubectl's error without its log prefix (`E1130 07:41:55.39 run.go:72] "command failed"`)."""
    text = stderr.strip()
    match = re.search(r'err="(.*)"\s*$', text, re.DOTALL)
    return match.group(1) if match else text


def _missing_file_hint(stderr: str) -> str | None:
    """A missing resource with a `.example` beside it: the copy step of a setup was skipped."""
    for path in dict.fromkeys(_MISSING.findall(stderr)):
        example = Path(path + ".example")
        if example.is_file() and not Path(path).exists():
            return (f"{path} does not exist, but {example.name} does: copy it and fill it in "
                    f"(`cp {example} {path}`), then run again.")
    return None
