"""Effective configuration: flags > environment > env files > defaults, with provenance.

Every value remembers where it came from (flag, environment, file:line, default) so
that validation errors and `paless-deploy config` can name the source and the fix. Pure:
the environment, the env files' contents and the project's overlays arrive as values
(`ProjectFiles`, read by adapters.files).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from paless_deploy.core.configuration import envfile
from paless_deploy.core.configuration.branch import branch_namespace, current_branch
from paless_deploy.core.configuration.envfile import EnvFileText
from paless_deploy.core.configuration.validation import form_problems
from paless_deploy.core.configuration.variables import (
    BY_NAME,
    SECRET_NAMES,
    SUBSTITUTABLE_NAMES,
    VARIABLES,
    nearest_variable,
)
from paless_deploy.core.errors import ConfigError, shown
from paless_deploy.core.images.delivery import check_method
from paless_deploy.core.images.imageref import parse_image, parse_registry

if TYPE_CHECKING:  # core.buildspec is imported where builds need it: --help stays fast
    from paless_deploy.core.images.buildspec import BuildSecret, BuildSpec

DEFAULT_ENV_FILES: tuple[str, ...] = ("paless.env", ".context-management/.env")
SOURCE_FLAG = "flag"
SOURCE_ENVIRONMENT = "environment"
SOURCE_DEFAULT = "default"
MASK = "********"
AUTO_NAMESPACE = "auto"
MIN_CREDENTIAL_LENGTH = 8
MAX_PROJECT_NAME = 100  # {REGISTRY}/{PROJECT_NAME}-{app} must stay within Docker's 255
MAX_OVERLAY_NAME = 100

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IMAGE_COMPONENT = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")
_OVERLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Setting:
    """One variable's effective value and where it came from."""

    name: str
    value: str | None  # None: unset (no default, not configured)
    source: str  # "flag", "environment", "<file>:<line>", "default" or "derived: ..."

    @property
    def secret(self) -> bool:
        """True for credentials: never printed."""
        return self.name in SECRET_NAMES

    @property
    def explicit(self) -> bool:
        """True when the user configured it (anything but the built-in default)."""
        return self.source != SOURCE_DEFAULT

    def describe_source(self) -> str:
        """The source in words, for messages."""
        if self.source == SOURCE_FLAG:
            return "from the command line"
        if self.source == SOURCE_ENVIRONMENT:
            return "from the environment"
        if self.source == SOURCE_DEFAULT:
            return "the built-in default"
        if self.source.startswith("derived"):
            return self.source
        return f"from {self.source}"


@dataclass(frozen=True)
class ProjectFiles:
    """What the configuration reads from the project on disk (adapters.files reads it)."""

    project_dir: Path  # as given
    absolute: Path  # the same, absolute (for messages)
    is_dir: bool = True
    env_files: tuple[EnvFileText, ...] = ()  # the env files to read, in order (later wins)
    missing_env_files: tuple[Path, ...] = ()  # given with --env-file, but absent
    overlays: tuple[str, ...] = ()  # names of k8s/overlays/<name>/ with a kustomization.yaml


@dataclass(frozen=True)
class Config:
    """The effective configuration of one invocation (immutable)."""

    project_dir: Path
    settings: Mapping[str, Setting]
    namespace: str  # effective target namespace
    namespace_source: str  # why: "PALESS_NAMESPACE (flag)", "PROJECT_NAME", "branch <b>"
    project_absolute: Path  # project_dir, absolute (for messages)
    overlays: tuple[str, ...]  # the overlays the project holds (k8s/overlays/<name>/)
    # Variables outside the table that BUILD_SECRETS names (their values are secrets).
    named: tuple[Setting, ...] = ()
    branch: str | None = None  # set in branch mode (PALESS_NAMESPACE=auto)
    env_files: tuple[Path, ...] = ()  # the env files actually read, in order
    warnings: tuple[str, ...] = ()  # what the env files deserve a word about (shell habits)

    def value(self, name: str) -> str | None:
        """Effective value of a variable (None when unset)."""
        return self.settings[name].value

    def source(self, name: str) -> str:
        """Where a variable's value came from."""
        return self.settings[name].source

    @property
    def overlay(self) -> str:
        """Kustomize overlay name (k8s/overlays/<overlay>)."""
        return self.value("OVERLAY") or "dev"

    @property
    def overlay_dir(self) -> Path:
        """Directory of the overlay."""
        return self.project_dir / "k8s" / "overlays" / self.overlay

    @property
    def registry(self) -> str:
        """Registry host[:port][/path] images are pushed to."""
        return (self.value("REGISTRY") or "localhost:5000").rstrip("/")

    @property
    def project_name(self) -> str:
        """Image name prefix."""
        return self.value("PROJECT_NAME") or "paless"

    @property
    def branch_mode(self) -> bool:
        """True when the namespace is derived from the branch."""
        return self.branch is not None

    def image_repository(self, app: str) -> str:
        """`{REGISTRY}/{PROJECT_NAME}-{app}`, without a tag."""
        return f"{self.registry}/{self.project_name}-{app}"

    def image_aliases(self) -> dict[str, str]:
        """PALESS_IMAGES as app -> repository (ConfigError naming the variable if unreadable)."""
        setting = self.settings["PALESS_IMAGES"]
        aliases: dict[str, str] = {}
        for entry in re.split(r"[,\s]+", setting.value or ""):
            if not entry:
                continue
            app, sep, repository = entry.partition("=")
            problem = "" if sep and app and repository else "is not app=repository"
            if not problem:
                try:
                    ref = parse_image(repository)
                except ValueError as exc:
                    problem = f"names no image repository ({exc})"
                else:
                    if ref.pinned:
                        problem = "has a tag or digest (name the repository only)"
            if problem:
                raise ConfigError(
                    f"PALESS_IMAGES ({setting.describe_source()}): entry {shown(entry)} "
                    f"{problem}.",
                    "Write app=repository pairs separated by commas, e.g. "
                    "PALESS_IMAGES=web=ghcr.io/acme/paperless-web,worker=ghcr.io/acme/worker.",
                    code="bad-images")
            aliases[app] = repository
        return aliases

    def build_args(self) -> dict[str, str]:
        """Build arguments passed to every image build."""
        base = self.value("BASE_IMAGE")
        return {"BASE_IMAGE": base} if base else {}

    @property
    def builder(self) -> str:
        """BUILDER: auto, buildkit or classic."""
        from paless_deploy.core.images.buildspec import parse_builder

        return parse_builder(self.value("BUILDER"), self.settings["BUILDER"].describe_source())

    @property
    def platform(self) -> str | None:
        """PLATFORM, normalized (`linux/amd64`); None: the engine's own."""
        from paless_deploy.core.images.buildspec import normalize_platform

        return normalize_platform(self.value("PLATFORM"),
                                  self.settings["PLATFORM"].describe_source())

    def build_targets(self) -> dict[str, str]:
        """BUILD_TARGETS as app -> stage (`*` for every app not named)."""
        from paless_deploy.core.images.buildspec import parse_build_targets

        return parse_build_targets(self.value("BUILD_TARGETS"),
                                   self.settings["BUILD_TARGETS"].describe_source())

    def build_secrets(self) -> tuple[BuildSecret, ...]:
        """BUILD_SECRETS: each secret id and the variable holding its value."""
        from paless_deploy.core.images.buildspec import parse_build_secrets

        return parse_build_secrets(self.value("BUILD_SECRETS"),
                                   self.settings["BUILD_SECRETS"].describe_source())

    def build_secret_setting(self, secret: BuildSecret) -> Setting:
        """The variable a build secret reads, with its source (value None when unset)."""
        found = self.settings.get(secret.variable) or next(
            (s for s in self.named if s.name == secret.variable), None)
        return found or Setting(secret.variable, None, SOURCE_DEFAULT)

    def build_spec(self, app: str, engine_platform: str | None = None) -> BuildSpec:
        """What a build of `app` receives besides its context; PLATFORM, else the engine's."""
        from paless_deploy.core.images.buildspec import BuildSpec, target_for

        return BuildSpec(args=self.build_args(), target=target_for(self.build_targets(), app),
                         platform=self.platform or engine_platform,
                         secrets=self.build_secrets(),
                         frontend=(self.value("DOCKERFILE_FRONTEND") or "").strip() or None)

    def masked(self, name: str) -> str:
        """The value safe to show: secrets masked, unset as empty string."""
        value = self.settings[name].value
        if value is None:
            return ""
        if name in SECRET_NAMES and value:
            return MASK
        return value

    def secret_values(self) -> list[str]:
        """The configured secret values (for scrubbing text we did not write, like logs)."""
        values = [self.settings[name].value for name in SECRET_NAMES]
        values += [setting.value for setting in self.named]
        return [v for v in values if v and len(v) >= 4]

    def substitution_values(self) -> dict[str, str]:
        """Values render may substitute as `${NAME}`: every allow-listed, non-empty one.

        PALESS_NAMESPACE is the effective namespace (derived when not configured).
        """
        values = {
            name: setting.value
            for name, setting in self.settings.items()
            if name in SUBSTITUTABLE_NAMES and setting.value
        }
        values["PALESS_NAMESPACE"] = self.namespace
        return values

    def rows(self) -> list[tuple[str, str, str]]:
        """(variable, masked value, source) for every variable, in table order."""
        rows = []
        for variable in VARIABLES:
            if variable.name == "PALESS_NAMESPACE":
                rows.append((variable.name, self.namespace, self.namespace_source))
                continue
            setting = self.settings[variable.name]
            shown = self.masked(variable.name) if setting.value is not None else "(unset)"
            rows.append((variable.name, shown, setting.source))
        return rows


def _env_files(project: ProjectFiles) -> tuple[EnvFileText, ...]:
    """The env files to read, in order (later wins): those given (`--env-file`, which must
    all exist), else those of `paless.env`, `.context-management/.env` that exist."""
    if project.missing_env_files:
        raise ConfigError(
            f"Env file {project.missing_env_files[0]} does not exist (given with --env-file).",
            "Check the path; relative paths are taken from the current directory.",
            code="no-env-file")
    return project.env_files


def read_env_files(files: Sequence[EnvFileText], environ: Mapping[str, str],
                   names: Collection[str] = BY_NAME) -> tuple[dict[str, Setting], list[str]]:
    """The variables `names` (default: the known ones) of the env files (later wins) with
    `<file>:<line>` sources, and the warnings their shell habits deserve (core.envfile);
    never executed. Names outside the table (build secrets) count as secrets."""
    settings: dict[str, Setting] = {}
    warnings: list[str] = []
    seen: dict[str, str] = {}  # every key of the files read so far (for ${OTHER})
    for file in files:
        env = envfile.read(file, lambda name: name in SECRET_NAMES or name not in BY_NAME)
        values = envfile.expand(env, lambda name: environ.get(name, seen.get(name)),
                                lambda name: name in names,
                                lambda name: name in SECRET_NAMES or name not in BY_NAME)
        seen.update({e.key: e.value for e in env.entries})
        seen.update({k: v for k, (v, _) in values.items()})
        settings.update({name: Setting(name, value, f"{env.shown}:{line}")
                         for name, (value, line) in values.items()})
        warnings += env.warnings
        warnings += [f"{env.shown}:{e.line}: {e.key} is not a variable of paless-deploy and is "
                     f"ignored; did you mean {near}?" for e in env.entries
                     if (near := nearest_variable(e.key))]
    return settings, warnings


def build_config(
    project: ProjectFiles,
    overrides: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    validate: bool = True,
    scope: str = "deploy",
    read_checkout: Callable[[Path], str] | None = None,
) -> Config:
    """Merge defaults, env files, environment and flags (highest) into a Config.

    `overrides` maps variable names to values given on the command line
    (`--overlay` -> OVERLAY, `-n` -> PALESS_NAMESPACE, `--namespace-from-branch` ->
    PALESS_NAMESPACE=auto, `--registry` -> REGISTRY). With `validate`, the first
    problem found by `config_problems(config, scope=scope)` is raised as ConfigError.
    `read_checkout` tells the checked-out branch when branch mode needs it and no CI
    variable names it (the CLI passes the git adapter's).
    """
    project_dir = project.project_dir
    if not project.is_dir:
        raise ConfigError(f"Project directory {project_dir} does not exist.",
                          "Pass --project-dir pointing at the Paless repository.")
    unknown = sorted(set(overrides) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"Unknown configuration variable {unknown[0]}.",
                          "See `paless-deploy config` for the list of variables.")

    settings: dict[str, Setting] = {
        v.name: Setting(v.name, v.default, SOURCE_DEFAULT) for v in VARIABLES
    }
    files = _env_files(project)
    from_files, warnings = read_env_files(files, environ)
    settings.update(from_files)
    for name in BY_NAME:
        if name in environ:
            settings[name] = Setting(name, environ[name], SOURCE_ENVIRONMENT)
    for name, value in overrides.items():
        settings[name] = Setting(name, value, SOURCE_FLAG)

    namespace, namespace_source, branch = _effective_namespace(settings, environ, project_dir,
                                                               read_checkout)
    _derive_ingress_host(settings, namespace)
    named = _secret_variables(settings["BUILD_SECRETS"].value, files, environ)
    config = Config(
        project_dir=project_dir,
        settings=MappingProxyType(settings),  # read-only: Config is immutable
        namespace=namespace,
        namespace_source=namespace_source,
        project_absolute=project.absolute,
        overlays=project.overlays,
        named=tuple(named.values()),
        branch=branch,
        env_files=tuple(file.path for file in files),
        warnings=tuple(warnings),
    )
    if validate:
        problems = config_problems(config, scope=scope)
        if problems:
            raise _first_of(problems)
    return config


def _effective_namespace(
    settings: Mapping[str, Setting], environ: Mapping[str, str], project_dir: Path,
    read_checkout: Callable[[Path], str] | None,
) -> tuple[str, str, str | None]:
    ns = settings["PALESS_NAMESPACE"]
    project = settings["PROJECT_NAME"]
    if ns.value and ns.value.strip().lower() == AUTO_NAMESPACE:
        branch = current_branch(environ, project_dir, read_checkout)
        return (branch_namespace(project.value or "paless", branch),
                f"branch {branch} ({ns.source})", branch)
    if ns.value:
        return ns.value, ns.source, None
    derived = (project.value or "").lower().replace("_", "-")
    return derived, f"derived from PROJECT_NAME ({project.source})", None


def _secret_variables(build_secrets: str | None, files: Sequence[EnvFileText],
                      environ: Mapping[str, str]) -> dict[str, Setting]:
    """The variables BUILD_SECRETS names outside the table, from env files and environment
    (same precedence as every variable); malformed entries are left to validation."""
    from paless_deploy.core.images.buildspec import parse_build_secrets

    try:
        wanted = {s.variable for s in parse_build_secrets(build_secrets)} - set(BY_NAME)
    except ConfigError:
        return {}
    found: dict[str, Setting] = {}
    if wanted:
        found.update(read_env_files(files, environ, wanted)[0])
    found.update({name: Setting(name, environ[name], SOURCE_ENVIRONMENT)
                  for name in wanted if name in environ})
    return found


def _derive_ingress_host(settings: dict[str, Setting], namespace: str) -> None:
    """With PALESS_BASE_DOMAIN, each namespace gets the wildcard host of its own."""
    domain = settings["PALESS_BASE_DOMAIN"].value
    host = settings["INGRESS_HOST"]
    if domain and not host.explicit:
        settings["INGRESS_HOST"] = Setting(
            "INGRESS_HOST", f"*.{namespace}.{domain}",
            "derived: *.{namespace}.{PALESS_BASE_DOMAIN}",
        )


def _first_of(problems: list[ConfigError]) -> ConfigError:
    first = problems[0]
    if len(problems) > 1:
        first.hint = (f"{first.hint} ({len(problems) - 1} more problem(s): "
                      "`paless-deploy config` lists them.)").strip()
    return first


def _where(setting: Setting) -> str:
    return f"{setting.name} {setting.describe_source()}"


_FLAGS = {"REGISTRY": "--registry", "OVERLAY": "--overlay", "PALESS_NAMESPACE": "-n"}


def _flag_or_variable(setting: Setting) -> str:
    """How the user wrote it: the flag's name for a flag, else the variable's."""
    return _FLAGS.get(setting.name, setting.name) if setting.source == SOURCE_FLAG \
        else setting.name


SCOPES: tuple[str, ...] = ("images", "cluster", "deploy")


def config_problems(config: Config, *, scope: str = "deploy") -> list[ConfigError]:
    """Every validation problem of a configuration, each naming variable, source and fix.

    `scope` says what the command needs: "images" (build, push: image names only),
    "cluster" (adds the namespace: status, destroy, gc) or "deploy" (everything:
    overlay, MinIO password, prod credentials).
    """
    problems: list[ConfigError] = []
    s = config.settings
    needed = ("PROJECT_NAME", "REGISTRY") if scope == "images" else (
        "PROJECT_NAME", "REGISTRY", "PALESS_NAMESPACE", "OVERLAY")
    for name in needed:
        setting = s[name]
        if setting.explicit and setting.value is not None and not setting.value.strip():
            default = BY_NAME[name].default
            problems.append(ConfigError(
                f"{name} is set but empty ({setting.describe_source()}): an empty value would "
                "silently fall back to the default.",
                "Give it a value, or remove it there to use the default"
                + (f" ({default})." if default else " (derived from PROJECT_NAME).")
                + (" In CI, check that the variable passed to -n is set." if setting.source
                   == SOURCE_FLAG else ""), code="empty-value"))
    problems += form_problems(config, scope)
    project = s["PROJECT_NAME"]
    if not project.value or not _IMAGE_COMPONENT.match(project.value) or len(
            project.value) > MAX_PROJECT_NAME:
        problems.append(ConfigError(
            f"PROJECT_NAME {shown(project.value or '')} ({project.describe_source()}) cannot "
            "start an image name.",
            f"Use at most {MAX_PROJECT_NAME} lower-case letters, digits and single '-', '_' "
            "or '.' between them, e.g. PROJECT_NAME=paless.", code="bad-value",
        ))
    for parse in (lambda: config.builder, lambda: config.platform, config.build_targets,
                  config.build_secrets):
        try:
            parse()
        except ConfigError as exc:
            problems.append(exc)
    registry = s["REGISTRY"]
    try:
        parse_registry(registry.value or "localhost:5000", _flag_or_variable(registry),
                       registry.describe_source())
    except ConfigError as exc:
        problems.append(exc)
    try:
        config.image_aliases()
    except ConfigError as exc:
        problems.append(exc)
    delivery = s["IMAGE_DELIVERY"]
    try:
        check_method(delivery.value, delivery.describe_source())
    except ConfigError as exc:
        problems.append(exc)
    if scope == "images":
        return problems

    namespace = config.namespace
    if not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        problems.append(ConfigError(
            f"Namespace {shown(namespace)} ({config.namespace_source}) is not a valid "
            "Kubernetes namespace name.",
            "Use at most 63 lower-case letters, digits and '-', starting and ending with a "
            "letter or digit: set PALESS_NAMESPACE or pass -n.",
        ))
    if scope == "cluster":
        return problems

    overlay = s["OVERLAY"]
    if not overlay.value or not _OVERLAY_NAME.match(overlay.value) or len(
            overlay.value) > MAX_OVERLAY_NAME:
        problems.append(ConfigError(
            f"Overlay {shown(overlay.value or '')} ({_where(overlay)}) is not a directory "
            "name.",
            f"Use one of: {', '.join(config.overlays) or 'dev'}.",
        ))
    elif overlay.value not in config.overlays:
        found = config.overlays
        problems.append(ConfigError(
            f"Overlay {overlay.value!r} ({_where(overlay)}) has no "
            f"k8s/overlays/{overlay.value}/kustomization.yaml in {config.project_absolute}.",
            (f"Set OVERLAY to one of: {', '.join(found)}." if found else
             "Run from the Paless repository (or pass --project-dir), "
             "where k8s/overlays/<overlay>/ holds the manifests."),
        ))

    return problems + _minio_problems(s)


def _minio_problems(s: Mapping[str, Setting]) -> list[ConfigError]:
    """MinIO refuses passwords shorter than 8 characters (the root's at start, the app
    user's in the bucket Job), and the app user must be another than the root."""
    problems = []
    for name, refuses in (("MINIO_ROOT_PASSWORD", "MinIO refuses to start with it"),
                          ("MINIO_APP_PASSWORD", "MinIO refuses to create its user")):
        setting = s[name]
        if setting.value is not None and len(setting.value) < MIN_CREDENTIAL_LENGTH:
            problems.append(ConfigError(
                f"{name} ({setting.describe_source()}) is shorter than "
                f"{MIN_CREDENTIAL_LENGTH} characters; {refuses}.",
                f"Set {name} to at least {MIN_CREDENTIAL_LENGTH} characters."))
    app, root = s["MINIO_APP_USER"], s["MINIO_ROOT_USER"]
    if app.value and app.value == root.value:
        problems.append(ConfigError(
            f"MINIO_APP_USER ({app.describe_source()}) is MINIO_ROOT_USER "
            f"({root.describe_source()}): the apps would hold MinIO's root credentials.",
            "Give MINIO_APP_USER a name of its own, e.g. paless-app: the bucket Job creates "
            "that user with a policy limited to MINIO_BUCKET.", code="bad-value"))
    return problems


def prod_problems(config: Config, used: Collection[str]) -> list[ConfigError]:
    """The prod overlay refuses development credentials and short ones, among the variables
    the rendered manifests use (`used`: the `${NAME}` placeholders of the overlay); other
    overlays refuse nothing here."""
    if config.overlay != "prod":
        return []
    problems: list[ConfigError] = []
    for variable in VARIABLES:
        if not variable.secret or variable.name not in used:
            continue
        setting = config.settings[variable.name]
        value = setting.value or ""
        if variable.dev_default is not None and value == variable.dev_default:
            problems.append(ConfigError(
                f"The prod overlay refuses {variable.name}: it is still the development "
                f"default ({setting.describe_source()}).",
                f"Set {variable.name} to a generated secret, e.g. in the CI secret store "
                "or an env file outside the repository (`openssl rand -base64 32`).",
                code="dev-credential"))
        elif len(value) < MIN_CREDENTIAL_LENGTH:
            problems.append(ConfigError(
                f"The prod overlay refuses {variable.name} ({setting.describe_source()}): "
                f"shorter than {MIN_CREDENTIAL_LENGTH} characters.",
                f"Set {variable.name} to a generated secret of at least "
                f"{MIN_CREDENTIAL_LENGTH} characters (`openssl rand -base64 32`).",
                code="short-credential"))
    return problems


def combined_error(problems: list[ConfigError]) -> ConfigError:
    """All problems as one error (for `paless-deploy config`, which lists them all)."""
    if len(problems) == 1:
        return problems[0]
    lines = "\n".join(f"  - {p.message} Fix: {p.hint}" for p in problems)
    codes = {p.code for p in problems}  # one kind of problem keeps its code for CI
    return ConfigError(f"{len(problems)} configuration problems:\n{lines}",
                       "Fix each value at the source named above, then run again.",
                       code=codes.pop() if len(codes) == 1 else None)
