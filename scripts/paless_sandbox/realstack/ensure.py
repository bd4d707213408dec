"""`realstack ensure`: each image present under its name with this recipe's key, else built
(two jobs at a time) and pushed; then the real node's mirrors and cluster DNS. One line per
image on stdout, present or built; one ensure at a time on the machine (a file lock)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from paless_sandbox.kubeobjects import is_ready
from paless_sandbox.layout import REGISTRY_ADDR
from paless_sandbox.messages import SandboxError, say
from paless_sandbox.realnode import read_unavailable, real_node_status
from paless_sandbox.realstack.build import (
    HOME,
    context_files,
    docker_build,
    ensure_base,
    image_shape,
    probe_versions,
    push,
)
from paless_sandbox.realstack.coredns import dns_problem, ensure_dns
from paless_sandbox.realstack.mirrors import write_mirrors
from paless_sandbox.realstack.recipes import (
    BY_NAME,
    RECIPES,
    Found,
    Recipe,
    classify,
    needs_build,
    recipe_key,
)
from paless_sandbox.realstack.registry import Lookup, local_lookup, registry_lookup

BUILDS = HOME / "builds.json"  # per image: key, size, layers, versions, timings
DEFAULT_PREFIX = f"{REGISTRY_ADDR}/"
JOBS = 2  # two cores: a Go build or a big docker build each


@dataclass(frozen=True)
class Options:
    """What `ensure` was asked: which images, which to rebuild, where they go."""

    only: tuple[str, ...] = ()  # empty: every image
    rebuild: tuple[str, ...] = ()  # image names, or "all"
    tag_prefix: str = DEFAULT_PREFIX  # another prefix (or --no-push) is a test build
    push: bool = True
    jobs: int = JOBS
    no_cache: bool = False  # docker build --no-cache: verify a cold build

    @property
    def is_test_build(self) -> bool:
        """Built elsewhere than the sandbox registry's names: mirrors, DNS and builds.json
        are left alone."""
        return not self.push or self.tag_prefix != DEFAULT_PREFIX

    def selected(self) -> list[Recipe]:
        unknown = [n for n in (*self.only, *self.rebuild) if n != "all" and n not in BY_NAME]
        if unknown:
            raise SandboxError(f"no real-stack image named {', '.join(unknown)}; the images: "
                               f"{', '.join(BY_NAME)}")
        return [r for r in RECIPES if not self.only or r.name in self.only]

    def rebuilds(self, recipe: Recipe) -> bool:
        return "all" in self.rebuild or recipe.name in self.rebuild


@dataclass(frozen=True)
class Outcome:
    """One image's line of `ensure`."""

    recipe: Recipe
    tag: str
    status: str

    def line(self) -> str:
        return f"{self.recipe.name:<9} {self.tag:<62} {self.status}"


def lookup(opts: Options, recipe: Recipe) -> Lookup:
    """The image under the recipe's name where `opts` puts it: a registry, or the engine."""
    tag = opts.tag_prefix + recipe.reference
    if not opts.push:
        return local_lookup(tag)
    registry, _, path = tag.partition("/")
    return registry_lookup(path.rpartition(":")[0], recipe.tag, registry)


@contextlib.contextmanager
def one_ensure() -> Iterator[None]:
    """One ensure at a time (two test sessions at once wait, then find the images there)."""
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / "ensure.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("realstack: waiting for another `realstack ensure` to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class Builder:
    """Builds what is missing, shared bases built once, results recorded under a lock."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.lock = threading.Lock()
        self.base_locks = {r.base.suite: threading.Lock() for r in RECIPES}

    def ensure_image(self, recipe: Recipe) -> Outcome:
        """Present (nothing done) or built, pushed and recorded."""
        key = recipe_key(recipe, context_files(recipe))
        tag = self.opts.tag_prefix + recipe.reference
        found = lookup(self.opts, recipe)
        state = classify(recipe, key, found.label, found.exists)
        if not needs_build(state, self.opts.rebuilds(recipe)):
            return Outcome(recipe, tag, state.value)
        say(f"realstack: building {recipe.name} ({state.value}); log "
            f"{HOME / 'logs' / ('image-' + recipe.name + '.log')}")
        started = time.monotonic()
        with self.base_locks[recipe.base.suite]:
            ensure_base(recipe.base)
        built = docker_build(recipe, key, tag, no_cache=self.opts.no_cache)
        if self.opts.push:
            push(recipe, tag)
        if not self.opts.is_test_build:
            self.record(recipe, tag, key, built.go_seconds, built.docker_seconds)
        was = "--rebuild" if state is Found.CURRENT else state.value
        return Outcome(recipe, tag, f"built in {time.monotonic() - started:.0f}s (key {key}; "
                       f"was {was})")

    def record(self, recipe: Recipe, tag: str, key: str, go_s: float, docker_s: float) -> None:
        """The build's entry of builds.json (what `images` and docs/real-stack-images.md
        show)."""
        size, layers = image_shape(tag)
        entry = {"key": key, "size": size, "layers": layers,
                 "versions": probe_versions(recipe, tag),
                 "go_seconds": round(go_s, 1), "docker_seconds": round(docker_s, 1),
                 "build_seconds": round(go_s + docker_s, 1),
                 "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with self.lock:
            builds = read_builds()
            builds[recipe.name] = entry
            BUILDS.write_text(json.dumps(builds, indent=2, sort_keys=True) + "\n")


def read_builds() -> dict[str, dict[str, object]]:
    """builds.json ({} when there is none)."""
    try:
        found: dict[str, dict[str, object]] = json.loads(BUILDS.read_text())
    except (OSError, ValueError):
        return {}
    return found


def build_all(opts: Options) -> list[str]:
    """Every selected image present or built, `opts.jobs` at a time, a line each in the
    table's order; the failures."""
    builder = Builder(opts)
    failures = []
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futures = {r.name: pool.submit(builder.ensure_image, r) for r in opts.selected()}
        for name, future in futures.items():
            try:
                outcome = future.result()
            except (SandboxError, OSError) as exc:
                outcome = Outcome(BY_NAME[name], "", f"FAILED: {exc}")
                failures.append(name)
            print(outcome.line(), flush=True)
    return failures


def ensure_cluster_dns() -> str:
    """CoreDNS answering at 10.96.0.10; it runs on the real node, so that must be Ready."""
    if dns_problem() is None:
        return "present"
    node = real_node_status()
    if node is None or not is_ready(node):
        why = (read_unavailable() or {}).get("why", "see `scripts/sandbox status`")
        raise SandboxError(f"cluster DNS needs the real node, which is not Ready ({why}); "
                           "`scripts/sandbox up` starts it")
    return ensure_dns()


def ensure(opts: Options) -> None:
    """Images, then (for the sandbox registry's names) the mirrors and CoreDNS."""
    with one_ensure():
        failures = build_all(opts)
        if failures:
            raise SandboxError(f"real stack: {', '.join(failures)} could not be built (see "
                               f"the lines above and {HOME / 'logs'}); fix the cause, then run "
                               "`PYTHONPATH=scripts python3 -m paless_sandbox.realstack ensure` "
                               "again (what was built is kept)")
        if opts.is_test_build:
            return
        changed = write_mirrors()
        print(f"{'mirrors':<9} {'docker.io ghcr.io registry.k8s.io':<62} "
              f"{'written: ' + ' '.join(changed) if changed else 'present'}", flush=True)
        print(f"{'dns':<9} {'kube-system/kube-dns 10.96.0.10':<62} {ensure_cluster_dns()}",
              flush=True)
