"""What an image build receives besides its context: args, target, platform, secret names.

Pure: parses the build settings (BUILDER, PLATFORM, BUILD_TARGETS, BUILD_SECRETS) and reads
what a build needs to know from a Dockerfile's text (stages, the `# syntax=` directive) and
an ignore file's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from paless_deploy.core.errors import BuildError, ConfigError
from paless_deploy.core.images.discover import App


class Builder(StrEnum):
    """BUILDER: which builder builds the images (the report names the one that did)."""

    AUTO = "auto"  # BuildKit when a capable Docker CLI is found, else classic (said once)
    BUILDKIT = "buildkit"  # BuildKit or exit 3
    CLASSIC = "classic"  # the engine's classic builder, through the Docker SDK


ALL_APPS = "*"  # BUILD_TARGETS key: the target of every app not named

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STAGE = re.compile(r"^[a-z][a-z0-9._-]*$")
_PLATFORM = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(/[a-z0-9_]+)?$")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class BuildSecret:
    """`RUN --mount=type=secret,id=<id>` receives the value of `variable`."""

    id: str
    variable: str


@dataclass(frozen=True)
class BuildSpec:
    """The inputs of one app's build besides its context (all of them go into its tag)."""

    args: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    target: str | None = None  # the stage to build; None: the last one
    platform: str | None = None  # os/arch[/variant]; None: the engine's own
    secrets: tuple[BuildSecret, ...] = ()
    frontend: str | None = None  # Dockerfile frontend image (BUILDKIT_SYNTAX); None: built-in


def _pairs(text: str, name: str, source: str, example: str) -> list[tuple[str, str]]:
    """`a=b,c=d` (commas or whitespace between) as pairs; ConfigError naming the variable."""
    pairs = []
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ConfigError(
                f"{name} ({source}) has {item!r}, which is not KEY=VALUE.",
                f"Write {name} as comma-separated pairs, e.g. {name}={example}.")
        pairs.append((key, value))
    return pairs


def parse_build_secrets(text: str | None, source: str = "") -> tuple[BuildSecret, ...]:
    """BUILD_SECRETS `id=VARIABLE,...`: each secret id and the variable that holds its value."""
    secrets: dict[str, BuildSecret] = {}
    for secret_id, variable in _pairs(text or "", "BUILD_SECRETS", source, "npm_token=NPM_TOKEN"):
        if not _ID.match(secret_id) or not _VARIABLE.match(variable):
            raise ConfigError(
                f"BUILD_SECRETS ({source}) has {secret_id}={variable}: the id must be letters, "
                "digits, '.', '_' or '-' and the variable an environment variable name.",
                "Write BUILD_SECRETS=<id>=<VARIABLE>, e.g. npm_token=NPM_TOKEN, and use "
                "`RUN --mount=type=secret,id=npm_token` in the Dockerfile.")
        if secret_id in secrets:
            raise ConfigError(f"BUILD_SECRETS ({source}) names the secret {secret_id!r} twice.",
                              "Give each secret id one variable.")
        secrets[secret_id] = BuildSecret(secret_id, variable)
    return tuple(secrets[k] for k in sorted(secrets))


def parse_build_targets(text: str | None, source: str = "") -> dict[str, str]:
    """BUILD_TARGETS `app=stage,...` (`*=stage` for every app not named)."""
    targets: dict[str, str] = {}
    for app, stage in _pairs(text or "", "BUILD_TARGETS", source, "web=runtime,worker=runtime"):
        if not _STAGE.match(stage.lower()):
            raise ConfigError(f"BUILD_TARGETS ({source}) names the stage {stage!r}, which cannot "
                              "be a Dockerfile stage name.",
                              "Use the name after `AS` in a FROM line, e.g. web=runtime.")
        targets[app] = stage
    return targets


def normalize_platform(text: str | None, source: str = "") -> str | None:
    """PLATFORM as BuildKit spells it: `amd64` -> `linux/amd64`; None when unset."""
    value = (text or "").strip().lower()
    if not value:
        return None
    if "," in value:
        raise ConfigError(
            f"PLATFORM ({source}) is {text!r}: one platform per build.",
            "The image is loaded into the local engine, which keeps one platform per tag: "
            "set PLATFORM to the cluster nodes' platform, e.g. linux/amd64.")
    if "/" not in value:
        value = f"linux/{value}"
    if value in ("linux/arm64/v8", "linux/aarch64"):
        value = "linux/arm64"
    if value == "linux/x86_64":
        value = "linux/amd64"
    if not _PLATFORM.match(value):
        raise ConfigError(f"PLATFORM ({source}) is {text!r}, which is not os/arch[/variant].",
                          "Set PLATFORM like linux/amd64 or linux/arm64 (unset: the engine's "
                          "own).")
    return value


def parse_builder(text: str | None, source: str = "") -> Builder:
    """BUILDER: auto (default), buildkit or classic."""
    value = (text or Builder.AUTO).strip().lower()
    if value not in tuple(Builder):
        raise ConfigError(f"BUILDER ({source}) is {text!r}.",
                          f"Set BUILDER to one of: {', '.join(Builder)}.")
    return Builder(value)


def platform_arch(platform: str) -> str:
    """The architecture part of `os/arch[/variant]`."""
    parts = platform.split("/")
    return parts[1] if len(parts) > 1 else parts[0]


def target_for(targets: Mapping[str, str], app: str) -> str | None:
    """The stage BUILD_TARGETS gives an app (its own entry, else `*`), None: the last stage."""
    return targets.get(app) or targets.get(ALL_APPS)


def unknown_target_apps(targets: Mapping[str, str], apps: Sequence[str]) -> list[str]:
    """BUILD_TARGETS keys that name no app (typos)."""
    return [name for name in targets if name != ALL_APPS and name not in apps]


def ignore_file_candidates(app: App) -> tuple[Path, Path]:
    """Where the ignore file a build of this app honours may be, first found wins:
    `<Dockerfile>.dockerignore` beside the Dockerfile (BuildKit's rule, also applied to
    classic builds), else the context's `.dockerignore` (adapters.files looks)."""
    return (app.dockerfile.with_name(app.dockerfile.name + ".dockerignore"),
            app.context / ".dockerignore")


def dockerignore_patterns(text: str) -> list[str]:
    """The patterns of an ignore file's text, read as `docker.APIClient.build` reads a
    .dockerignore (blank lines and comments dropped)."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


# What the classic builder says about syntax only BuildKit understands.
BUILDKIT_ONLY_MARKERS: tuple[str, ...] = ("requires buildkit", "failed to parse platform",
                                          "unknown flag: link", "unknown flag: chmod",
                                          "unknown flag: parents", "unknown flag: exclude")
NEEDS_BUILDKIT_HINT = ("This Dockerfile uses BuildKit syntax (FROM --platform=$BUILDPLATFORM, "
                       "RUN --mount, COPY --link, heredocs) that the classic builder cannot "
                       "build: set BUILDER=buildkit with a Docker CLI that has BuildKit "
                       "(`paless-deploy doctor` says how to get it).")


def build_failed(app: App, ref: str, step: str, error: str, lines: Sequence[str],
                 *, classic: bool = False) -> BuildError:
    """The one paragraph of a failed build: the step, the error, the step's last lines."""
    output = "\n".join(f"    {line}" for line in lines) or "    (no output)"
    hint = f"Fix that step of {app.dockerfile} or the files it uses, then run again."
    if classic and any(marker in error.lower() for marker in BUILDKIT_ONLY_MARKERS):
        hint = NEEDS_BUILDKIT_HINT
    return BuildError(
        f"Building {app.name} ({app.dockerfile.name}, image {ref}) failed at `{step}`: "
        f"{error}\n  Last build output:\n{output}",
        hint, code="build-failed")
