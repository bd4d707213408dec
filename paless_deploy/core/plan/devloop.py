"""`dev`'s decisions, without I/O: which changes count, how bursts coalesce, which apps a
path belongs to, which objects a rebuild rolls out, and what to forward to localhost.

A changed path belongs to every app whose build context, as Docker receives it (after
`.dockerignore`), holds it, or whose Dockerfile it is; `k8s/` and the env files mean a
new render. Editor temporary files and git's own files are not changes; while
`.git/index.lock` exists (a checkout, a rebase) changes wait.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.images.imageref import parse_image
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.manifests.kinds import object_key

QUIET_S = 0.2  # a burst ends after this long without a change
MAX_WAIT_S = 10.0  # ... or this long after its first change, whatever keeps coming
GIT_LOCK = ".git/index.lock"

# Editors' swap, backup and atomic-save files (vim, emacs, JetBrains, Kate, gedit, ...).
EDITOR_TEMP_PATTERNS = ("*.swp", "*.swo", "*.swx", "*.swpx", "*~", ".#*", "#*#", "4913",
                        "*.tmp", "*.kate-swp", "*___jb_tmp___", "*___jb_old___",
                        ".goutputstream-*", "*.crswap", ".*.sw?")
# Directories whose contents are never sources (caches, environments, VCS).
IGNORED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache",
                          ".ruff_cache", ".hypothesis", ".tox", ".venv", ".idea",
                          ".import_linter_cache"})


def is_editor_temp(name: str) -> bool:
    """True for an editor's temporary file name (a swap file, a backup, an atomic save)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EDITOR_TEMP_PATTERNS)


def is_watched(relative: str) -> bool:
    """True when a change of this path (relative to the project, `/`-separated) may matter:
    not an editor temporary, not under a cache or VCS directory (git's index lock aside,
    which pauses the loop)."""
    if relative == GIT_LOCK:
        return True
    parts = PurePosixPath(relative).parts
    if not parts or any(part in IGNORED_DIRS for part in parts):
        return False
    return not is_editor_temp(parts[-1])


class Coalescer:
    """Collects changed paths into bursts: a burst is due once no change came for
    `quiet_s`, or `max_wait_s` after its first change. Times are the caller's clock."""

    def __init__(self, quiet_s: float = QUIET_S, max_wait_s: float = MAX_WAIT_S) -> None:
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self._paths: set[str] = set()
        self._first: float | None = None
        self._last: float | None = None

    def add(self, paths: Iterable[str], now: float) -> None:
        """Record changes seen at `now`."""
        fresh = set(paths)
        if not fresh:
            return
        self._paths |= fresh
        self._first = now if self._first is None else self._first
        self._last = now

    @property
    def pending(self) -> bool:
        return bool(self._paths)

    @property
    def first_at(self) -> float | None:
        """When the pending burst's first change was seen (the edit, for edit-to-Ready)."""
        return self._first

    def due(self, now: float) -> bool:
        """True when the burst is complete (quiet long enough, or waited long enough)."""
        if self._first is None or self._last is None:
            return False
        return now - self._last >= self.quiet_s or now - self._first >= self.max_wait_s

    def wait_s(self, now: float) -> float | None:
        """How long until the burst is due (None: nothing pending)."""
        if self._first is None or self._last is None:
            return None
        return max(0.0, min(self._last + self.quiet_s, self._first + self.max_wait_s) - now)

    def take(self) -> frozenset[str]:
        """The burst's paths; the collector starts empty again."""
        paths = frozenset(self._paths)
        self._paths.clear()
        self._first = self._last = None
        return paths


@dataclass(frozen=True)
class AppContext:
    """What of the project one app's image is made of."""

    name: str
    context: str  # the build context directory, relative to the project ("" for the root)
    dockerfile: str  # relative to the project
    files: frozenset[str]  # the context's paths as Docker receives them, relative to it


@dataclass(frozen=True)
class Change:
    """What a burst of changed paths calls for."""

    paths: tuple[str, ...]
    apps: tuple[str, ...] = ()  # rebuild these
    render: bool = False  # k8s/ or an env file changed: render again (and apply what changed)
    reload: bool = False  # an env file changed: read the configuration again
    ignored: tuple[str, ...] = ()  # in no build context, not k8s/, not an env file

    @property
    def anything(self) -> bool:
        return bool(self.apps or self.render)


def _inside(path: str, directory: str) -> str | None:
    """`path` relative to `directory` ("" is the project root), None when outside."""
    if not directory:
        return path
    prefix = directory.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else None


def classify(paths: Collection[str], contexts: Sequence[AppContext],
             env_files: Collection[str]) -> Change:
    """Map changed paths (relative to the project) to the apps to rebuild and whether to
    render again. `contexts` must list each context's files after the change and before
    it (a deleted file counts), which the caller gets from the Docker adapter."""
    apps: list[str] = []
    render = reload = False
    ignored = []
    for path in sorted(paths):
        if path == GIT_LOCK:
            continue
        hit = False
        if path in env_files:
            render = reload = hit = True
        elif path == "k8s" or path.startswith("k8s/"):
            render = hit = True
        for app in contexts:
            inner = _inside(path, app.context)
            if path == app.dockerfile or (inner is not None and (
                    inner in app.files or inner == ".dockerignore")):
                hit = True
                if app.name not in apps:
                    apps.append(app.name)
        if not hit:
            ignored.append(path)
    return Change(tuple(sorted(p for p in paths if p != GIT_LOCK)), tuple(apps), render,
                  reload, tuple(ignored))


def changed_objects(rendered: Sequence[ApiObject], applied: Sequence[ApiObject] | None
                    ) -> list[JsonDict]:
    """The rendered objects that differ from what was applied last (all of them when
    nothing is known): after a rebuild, the workloads and Jobs running the new images."""
    if applied is None:
        return [dict(o) for o in rendered]
    before = {object_key(o): o for o in applied}
    return [dict(o) for o in rendered if before.get(object_key(o)) != o]


# -- port-forwards ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardTarget:
    """One port to bring to localhost: a Service's port, reached on one of its pods."""

    name: str  # "web", "minio console"
    service: str
    port: int  # the Service's port (also the preferred local port)
    target_port: int | str  # the pod's port, by number or name
    selector: Mapping[str, str] = field(default_factory=dict)
    scheme: str = "http"


def forward_targets(objects: Sequence[ApiObject]) -> list[ForwardTarget]:
    """What `--port-forward` brings to localhost: web's HTTP port (8000) and the MinIO
    console (9001), read from the rendered Services (a tree of other names included)."""
    found: dict[str, ForwardTarget] = {}
    for obj in objects:
        if obj.get("kind") != "Service":
            continue
        spec = obj.get("spec") or {}
        selector = {str(k): str(v) for k, v in (spec.get("selector") or {}).items()}
        if not selector:
            continue
        component = (component_of(obj) or ("", ""))[0]
        ports = [p for p in spec.get("ports") or [] if isinstance(p.get("port"), int)]
        name = str((obj.get("metadata") or {}).get("name") or "")
        if component == "web" and ports and "web" not in found:
            port = next((p for p in ports if p["port"] == 8000), ports[0])
            found["web"] = _target("web", name, port, selector)
        elif component == "minio" and "minio console" not in found:
            console = next((p for p in ports if p.get("name") == "console"
                            or p["port"] == 9001), None)
            if console is not None:
                found["minio console"] = _target("minio console", name, console, selector)
    return [found[k] for k in ("web", "minio console") if k in found]


def _target(name: str, service: str, port: Mapping[str, object],
            selector: Mapping[str, str]) -> ForwardTarget:
    number = int(str(port["port"]))
    target = port.get("targetPort", number)
    return ForwardTarget(name, service, number,
                         target if isinstance(target, int) else str(target), selector)


def _labels(pod: ApiObject) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def _ready(pod: ApiObject) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def forward_pod(pods: Iterable[ApiObject], target: ForwardTarget,
                current: str | None = None) -> ApiObject | None:
    """The pod to forward to: the current one while it is Ready, else the newest Ready pod
    the Service selects (None while there is none)."""
    ready = [p for p in pods if _ready(p) and all(
        _labels(p).get(k) == v for k, v in target.selector.items())]
    for pod in ready:
        if (pod.get("metadata") or {}).get("name") == current:
            return pod
    return max(ready, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")),
               default=None)


def pod_port(pod: ApiObject, target: int | str) -> int | None:
    """The container port a Service's targetPort names on this pod."""
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return None


def app_of_image(image: str, repositories: Mapping[str, str]) -> str | None:
    """The app whose repository (`repositories`: repository -> app) holds `image`."""
    try:
        return repositories.get(parse_image(image).repository)
    except ValueError:
        return None


def app_of_pod(pod: ApiObject, repositories: Mapping[str, str]) -> str | None:
    """The app a pod runs (its first container whose image lives in one of our
    repositories, `repositories` mapping repository -> app), else None."""
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        app = app_of_image(str(container.get("image") or ""), repositories)
        if app is not None:
            return app
    return None
