"""`dev`'s sync, decided without I/O: which changed files can be copied into the running
containers instead of waiting for a new image, where each goes, how each process reloads
(rules kept as data), and which synced changes a container still lacks.

A file is synced when a COPY of the app's image (its own Dockerfile's, or its base's, as
the build graph chains them) takes it verbatim from the build context; the Dockerfile, an
ignore file, a dependency manifest, a file an ADD or a transforming COPY takes, or a file no
COPY takes means a rebuild. After a sync the image is rebuilt anyway: synced changes stay
owed (`SyncLedger`) until the workload runs an image that holds them, so a container that
starts meanwhile, from the old image, receives them too.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.images.dockerfile import CopyLine, Stage
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.podspec import indexed_containers, template_annotations

# Files that feed a build step (a RUN installing them), not the running code: a rebuild.
DEPENDENCY_MANIFESTS = (
    "requirements*.txt", "requirements*.in", "constraints*.txt", "pyproject.toml", "setup.py",
    "setup.cfg", "Pipfile", "Pipfile.lock", "poetry.lock", "uv.lock", "package.json",
    "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "go.mod", "go.sum", "Gemfile",
    "Gemfile.lock", "Cargo.toml", "Cargo.lock", "composer.json", "composer.lock")
# COPY flags that still copy the files as they are (the others transform or filter them).
VERBATIM_FLAGS = ("--chown", "--link")
RELOAD_ANNOTATION = labels.RELOAD  # on a pod template: `signal:HUP`, or `none`


@dataclass(frozen=True)
class ReloadRule:
    """How a process takes synced code: a signal to the container's PID 1, or none (the
    rebuilt image rolls it out)."""

    name: str
    words: tuple[str, ...]  # each must be a word of the process's command line
    signal: str | None
    why: str


# First match wins; a pod template's `paless.io/reload` annotation goes before all of them.
RELOAD_RULES: tuple[ReloadRule, ...] = (
    ReloadRule("granian", ("granian",), "HUP",
               "Granian respawns its workers on SIGHUP, and they import the code anew"),
    ReloadRule("gunicorn", ("gunicorn",), "HUP",
               "gunicorn's master starts new workers on SIGHUP, which load the code anew "
               "(unless --preload)"),
    ReloadRule("celery worker", ("celery", "worker"), "HUP",
               "Celery's worker re-executes itself on SIGHUP (same PID), importing the code "
               "anew"),
    ReloadRule("celery beat", ("celery", "beat"), None,
               "Celery beat has no restart in place (and restarting the container would "
               "start the old image): the rebuilt image rolls it out"),
)


def _words(argv: Sequence[str]) -> set[str]:
    return {posixpath.basename(word) for arg in argv for word in arg.split()}


def reload_rule(argv: Sequence[str], annotation: str | None) -> ReloadRule | None:
    """The rule for a container running `argv` (None: no rule, so no sync: a container
    restart would start from the old image and lose the synced files)."""
    if annotation:
        kind, _, value = annotation.strip().partition(":")
        if kind == "signal" and value:
            return ReloadRule("annotation", (), value.upper().removeprefix("SIG"),
                              f"{RELOAD_ANNOTATION}={annotation} on its pod template")
        if kind == "none":
            return ReloadRule("annotation", (), None,
                              f"{RELOAD_ANNOTATION}=none on its pod template")
    words = _words(argv)
    return next((rule for rule in RELOAD_RULES if all(w in words for w in rule.words)), None)


def container_process(container: Mapping[str, object], entrypoint: Sequence[str],
                      cmd: Sequence[str]) -> tuple[str, ...]:
    """What a container runs: its `command` replaces the image's ENTRYPOINT (and drops its
    CMD), its `args` replace the CMD, as Kubernetes starts it."""
    command, args = container.get("command"), container.get("args")
    head = [str(c) for c in command] if isinstance(command, list) else list(entrypoint)
    if isinstance(args, list):
        tail = [str(a) for a in args]
    else:
        tail = [] if isinstance(command, list) else list(cmd)
    return tuple(head + tail)


LONG_RUNNING_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def container_rules(objects: Iterable[ApiObject], images: Mapping[str, AppImage],
                    app_of: Callable[[str], str | None]
                    ) -> dict[tuple[str, str], ReloadRule | None]:
    """(app, container name) -> the reload rule of each long-running container of ours in
    the rendered objects (the image's ENTRYPOINT and CMD, the container's command and args,
    the pod template's annotation). Two templates that disagree for one key: no rule."""
    rules: dict[tuple[str, str], ReloadRule | None] = {}
    for obj in objects:
        if obj.get("kind") not in LONG_RUNNING_KINDS:
            continue
        annotation = template_annotations(obj).get(RELOAD_ANNOTATION)
        for list_name, _, container in indexed_containers(obj):
            app = app_of(str(container.get("image") or ""))
            if list_name != "containers" or app is None or app not in images:
                continue
            image = images[app]
            rule = reload_rule(container_process(container, image.entrypoint, image.cmd),
                               annotation)
            key = (app, str(container.get("name")))
            rules[key] = rule if key not in rules or rules[key] == rule else None
    return rules


# -- where a file of the context lands in the image ---------------------------------------


@dataclass(frozen=True)
class CopyRule:
    """One COPY of an image: files of `context` under `source` land under `dest`."""

    context: str  # the build context, relative to the project ("" for the root)
    source: str  # relative to the context, normalised ("" for the whole context)
    dest: str  # absolute path in the image
    into_dir: bool  # dest is a directory: a source file lands inside it
    dockerfile: str
    line: int
    verbatim: bool = True
    why: str = ""  # why not verbatim
    owner: tuple[int, int] | None = None  # --chown=uid[:gid], numeric only


@dataclass(frozen=True)
class ImageSource:
    """What one Dockerfile puts into an app's image: its stages from the image's root."""

    dockerfile: str  # relative to the project
    context: str  # relative to the project
    chain: tuple[Stage, ...]
    base_app: str | None  # the app of ours its root stage starts FROM, if any


@dataclass(frozen=True)
class AppImage:
    """Everything about one app's image the sync needs: the COPY rules of its Dockerfile
    and of its bases', the files that mean a rebuild, and the process it runs."""

    app: str
    rules: tuple[CopyRule, ...]
    dockerfiles: frozenset[str]  # its own and its bases' (a change means a rebuild)
    contexts: tuple[str, ...]  # the contexts those read, own first
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    bases: tuple[str, ...] = ()


def _normal(source: str) -> str:
    cleaned = posixpath.normpath(source.strip())
    return "" if cleaned in (".", "/") else cleaned.lstrip("/").removeprefix("./")


def copy_rules(source: ImageSource) -> list[CopyRule]:
    """The COPY/ADD lines of the image's stages that take files from the build context."""
    rules = []
    for stage in source.chain:
        for copy in stage.copies:
            if copy.from_stage is None:
                rules.extend(_rules_of(copy, source))
    return rules


def _rules_of(copy: CopyLine, source: ImageSource) -> list[CopyRule]:
    why = _not_verbatim(copy)
    dest = copy.dest
    if not dest.startswith("/"):
        dest = posixpath.join(copy.workdir, dest) if copy.workdir else ""
        if not dest:
            why = why or "its destination is relative to a WORKDIR of the base image"
    into_dir = copy.dest.endswith("/") or len(copy.sources) > 1 or \
        any(c in s for s in copy.sources for c in "*?[")
    return [CopyRule(source.context, _normal(s), posixpath.normpath(dest) if dest else "",
                     into_dir, source.dockerfile, copy.line, not why, why, _owner(copy))
            for s in copy.sources]


def _not_verbatim(copy: CopyLine) -> str:
    if copy.keyword == "ADD":
        return "ADD may unpack archives and fetch URLs"
    flags = [o.split("=", 1)[0] for o in copy.options]
    odd = [f for f in flags if f not in VERBATIM_FLAGS]
    if odd:
        return f"COPY {odd[0]} changes what is copied"
    if "$" in copy.dest or any("$" in s for s in copy.sources):
        return "it names a build variable"
    return ""


def _owner(copy: CopyLine) -> tuple[int, int] | None:
    value = next((o.split("=", 1)[1] for o in copy.options if o.startswith("--chown=")), "")
    user, _, group = value.partition(":")
    if user.isdigit() and (not group or group.isdigit()):
        return int(user), int(group or user)
    return None


def app_image(app: str, sources: Mapping[str, ImageSource]) -> AppImage:
    """The app's image as its Dockerfile and its bases' Dockerfiles make it."""
    rules: list[CopyRule] = []
    dockerfiles: list[str] = []
    contexts: list[str] = []
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    bases: list[str] = []
    name: str | None = app
    while name is not None and name in sources and name not in bases:
        source = sources[name]
        bases.append(name)
        rules = copy_rules(source) + rules  # a base's files first: later COPYs win
        dockerfiles.append(source.dockerfile)
        contexts.append(source.context)
        if source.chain:  # the first stage, from the app down its bases, to set each wins
            final = source.chain[-1]
            entrypoint = final.entrypoint if entrypoint is None else entrypoint
            cmd = final.cmd if cmd is None else cmd
        name = source.base_app
    return AppImage(app, tuple(rules), frozenset(dockerfiles), tuple(contexts),
                    entrypoint or (), cmd or (), tuple(bases[1:]))


def destinations(path: str, image: AppImage) -> tuple[list[tuple[str, CopyRule]], str]:
    """Where a changed file (relative to the project) lands in the image: (dest, rule)
    pairs, and "" ; or [] and why it cannot be synced."""
    found: list[tuple[str, CopyRule]] = []
    for rule in image.rules:
        inner = _inside(path, rule.context)
        if inner is None:
            continue
        dest = _landing(inner, rule)
        if dest is None:
            continue
        if not rule.verbatim:
            return [], f"{rule.dockerfile} line {rule.line} takes it, and {rule.why}"
        found.append((dest, rule))
    if not found:
        return [], "no COPY of its image takes it from the build context"
    return found, ""


def _inside(path: str, directory: str) -> str | None:
    if not directory:
        return path
    prefix = directory.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else None


def _landing(inner: str, rule: CopyRule) -> str | None:
    source = rule.source
    if any(c in source for c in "*?["):
        if fnmatch.fnmatchcase(inner, source):
            return posixpath.join(rule.dest, posixpath.basename(inner))
        return None
    if not source:
        return posixpath.join(rule.dest, inner)
    if inner == source:
        return posixpath.join(rule.dest, posixpath.basename(inner)) if rule.into_dir \
            else rule.dest
    if inner.startswith(source + "/"):
        return posixpath.join(rule.dest, inner[len(source) + 1:])
    return None


# -- what a burst of changes calls for ---------------------------------------------------


@dataclass(frozen=True)
class SyncFile:
    """One file to bring into an app's containers (or to delete there)."""

    app: str
    path: str  # relative to the project
    dest: str  # absolute path in the container
    deleted: bool = False
    owner: tuple[int, int] | None = None


@dataclass(frozen=True)
class SyncPlan:
    """What a burst calls for: files to copy into running containers now, and why the
    apps that get none must wait for their rebuilt image."""

    files: tuple[SyncFile, ...] = ()
    why_not: Mapping[str, str] = field(default_factory=dict)  # app -> the first reason

    @property
    def apps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.app for f in self.files))


def plan_sync(paths: Collection[str], images: Mapping[str, AppImage],
              contexts: Mapping[str, Collection[str]], deleted: Collection[str],
              running: Collection[str], ignore_files: Collection[str] = ()) -> SyncPlan:
    """The sync of a burst of changed `paths` (relative to the project) for the apps that
    run (`running`: apps with workloads whose processes have a reload rule). `contexts`:
    each app's context files as the builder receives them (relative to the project,
    before and after the change, so a deleted file counts). An app any changed path of
    its image cannot be synced for gets no sync at all: its rebuild brings everything."""
    files: list[SyncFile] = []
    why_not: dict[str, str] = {}
    for app in sorted(running):
        image = images.get(app)
        if image is None:
            continue
        mine = [p for p in sorted(paths) if any(p in contexts.get(a, ()) or p in
                                               image.dockerfiles for a in (app, *image.bases))]
        if not mine:
            continue
        planned, why = _sync_of(app, mine, image, set(deleted), set(ignore_files))
        if why:
            why_not[app] = why
        else:
            files += planned
    return SyncPlan(tuple(files), why_not)


def _sync_of(app: str, paths: Iterable[str], image: AppImage, deleted: set[str],
             ignore_files: set[str]) -> tuple[list[SyncFile], str]:
    files: list[SyncFile] = []
    for path in paths:
        name = posixpath.basename(path)
        if path in image.dockerfiles:
            return [], f"{path} is its Dockerfile"
        if path in ignore_files or name == ".dockerignore" or name.endswith(".dockerignore"):
            return [], f"{path} is an ignore file (what the build receives changes)"
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in DEPENDENCY_MANIFESTS):
            return [], f"{path} is a dependency manifest (a build step installs from it)"
        landed, why = destinations(path, image)
        if why:
            return [], f"{path}: {why}"
        files += [SyncFile(app, path, dest, path in deleted, rule.owner)
                  for dest, rule in landed]
    return files, ""


# -- what the containers still lack -------------------------------------------------------


class SyncLedger:
    """The synced changes each app's image does not hold yet, by generation: a sync adds
    one; an image planned after it holds it (`covers`); a container running an image that
    does not gets it (`owed`); a workload running one that does settles it."""

    def __init__(self) -> None:
        self.generation = 0
        self._owed: dict[str, dict[str, tuple[SyncFile, int]]] = {}  # app -> dest -> entry
        self._covers: dict[str, int] = {}  # image reference -> generation it holds

    def record(self, files: Iterable[SyncFile]) -> int:
        """A sync of `files`: the new generation."""
        self.generation += 1
        for f in files:
            self._owed.setdefault(f.app, {})[f.dest] = (f, self.generation)
        return self.generation

    def covers(self, ref: str, generation: int) -> None:
        """`ref` was planned from the files as they were at `generation`."""
        self._covers[ref] = max(generation, self._covers.get(ref, 0))

    def owed(self, app: str, ref: str) -> list[SyncFile]:
        """What a container of `app` running `ref` lacks, oldest first."""
        held = self._covers.get(ref, 0)
        entries = sorted(self._owed.get(app, {}).values(), key=lambda e: e[1])
        return [f for f, generation in entries if generation > held]

    def last(self, app: str) -> int:
        """The generation of the app's latest owed change (0: none)."""
        return max((g for _, g in self._owed.get(app, {}).values()), default=0)

    def settle(self, app: str, ref: str) -> None:
        """The app's workloads run `ref` now: what it holds is owed no more."""
        held = self._covers.get(ref, 0)
        owed = self._owed.get(app, {})
        for dest in [d for d, (_, g) in owed.items() if g <= held]:
            del owed[dest]

    def pending(self) -> dict[str, int]:
        """app -> how many synced files its image lacks."""
        return {app: len(owed) for app, owed in self._owed.items() if owed}
