"""The real stack's command line, and the one place its errors become exit codes."""

from __future__ import annotations

import argparse

from paless_sandbox.messages import SandboxError, say
from paless_sandbox.realstack.build import context_files
from paless_sandbox.realstack.ensure import (
    JOBS,
    Options,
    ensure,
    ensure_cluster_dns,
    lookup,
    read_builds,
)
from paless_sandbox.realstack.recipes import BY_NAME, RECIPES, classify, recipe_key


def names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def parser() -> argparse.ArgumentParser:
    """ensure [--only A,B] [--rebuild A,B|all] [--tag-prefix P] [--no-push] | images | dns."""
    top = argparse.ArgumentParser(prog="python3 -m paless_sandbox.realstack")
    commands = top.add_subparsers(dest="command")
    run = commands.add_parser("ensure", help="build and push what is missing (the default), "
                              "then the node's mirrors and CoreDNS")
    run.add_argument("--only", type=names, default=(), metavar="A,B",
                     help=f"these images only (of {', '.join(BY_NAME)})")
    run.add_argument("--rebuild", type=names, default=(), metavar="A,B|all",
                     help="build these even when present (a changed recipe is rebuilt "
                     "anyway: its key changed)")
    run.add_argument("--tag-prefix", default=Options.tag_prefix, metavar="PREFIX",
                     help="tag as PREFIX + the manifests' name (another prefix is a test "
                     f"build: no mirrors, no DNS; default {Options.tag_prefix})")
    run.add_argument("--no-push", action="store_true",
                     help="build into the local Docker engine only (a test build)")
    run.add_argument("--no-cache", action="store_true",
                     help="docker build --no-cache (with --rebuild: what a fresh machine does)")
    run.add_argument("--jobs", type=int, default=JOBS, help=f"builds at once (default {JOBS})")
    commands.add_parser("images", help="each image: the manifests' tag, its real version, "
                        "size, whether the registry has it")
    commands.add_parser("dns", help="CoreDNS at 10.96.0.10 only")
    return top


def cmd_images() -> None:
    """One row per image: name, the tag the manifests name, real version, size, state."""
    builds = read_builds()
    opts = Options()
    print(f"{'NAME':<9} {'IMAGE':<46} {'SIZE':>8}  {'STATE':<28} REAL VERSION")
    for recipe in RECIPES:
        entry = builds.get(recipe.name, {})
        versions = entry.get("versions")
        real = "; ".join(f"{k} {v}" for k, v in sorted(versions.items())) \
            if isinstance(versions, dict) else "(not built here)"
        size = entry.get("size")
        mb = f"{size / 1e6:.0f} MB" if isinstance(size, int) else "?"
        found = lookup(opts, recipe)
        state = classify(recipe, recipe_key(recipe, context_files(recipe)), found.label,
                         found.exists)
        print(f"{recipe.name:<9} {recipe.reference:<46} {mb:>8}  {state.value:<28} {real}")


def main(argv: list[str]) -> int:
    """The exit code: 0, 1 (a SandboxError, one message), 130 (interrupted)."""
    args = parser().parse_args(argv or ["ensure"])
    try:
        if args.command == "images":
            cmd_images()
        elif args.command == "dns":
            print(f"{'dns':<9} {'kube-system/kube-dns 10.96.0.10':<62} {ensure_cluster_dns()}")
        else:
            ensure(Options(only=args.only, rebuild=args.rebuild, tag_prefix=args.tag_prefix,
                           push=not args.no_push, jobs=args.jobs,
                           no_cache=args.no_cache))
    except SandboxError as exc:
        say(f"FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 0
