"""The configuration's checks, before any I/O: one table of rules (RULES), like readiness's.

A value of the wrong form (a lock timeout of `abc`, a volume size of `ten`, a base image
with spaces), an empty one, an overlay that does not exist is an exit-2 error naming the
variable, where it came from and the fix, in a second, instead of a failure found after
the cluster or the registry was asked. Each rule says which variables it reads, which
commands need it (`Scope`), when it fires and its words; `config_problems` runs the table.
To add a check: a row in RULES (a variable's form: a row in FORMS). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from paless_deploy.core.configuration.context import Scope
from paless_deploy.core.configuration.durations import parse_duration
from paless_deploy.core.configuration.variables import BY_NAME, MIN_CREDENTIAL_LENGTH
from paless_deploy.core.errors import ConfigError, ExitCode, PalessError, shown
from paless_deploy.core.images.imageref import parse_image, parse_registry
from paless_deploy.core.manifests.quantities import parse_quantity

if TYPE_CHECKING:
    from paless_deploy.core.configuration.config import Config, Setting

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_LANGUAGES = re.compile(r"^[a-z_]+(\+[a-z_]+)*$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        rf"{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^{_LABEL_NAME}$")
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")  # RFC 3986 unreserved: as is in a URL
_ACCESS_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod")
MAX_PROJECT_NAME = 100  # {REGISTRY}/{PROJECT_NAME}-{app} must stay within Docker's 255
MAX_OVERLAY_NAME = 100
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IMAGE_COMPONENT = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")
_OVERLAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _duration(zero: bool) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            parse_duration(value, allow_zero=zero)
        except ConfigError as exc:
            return "is zero" if "zero" in exc.message else "is not a duration"
        return None
    return check


def _quantity(value: str) -> str | None:
    try:
        size = parse_quantity(value)
    except (ValueError, ArithmeticError):
        return "is not a size"
    return None if size > 0 else "is not a positive size"


def _integer(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not value.strip().isdigit():
            return "is not a whole number"
        return None if low <= int(value) <= high else f"is not between {low} and {high}"
    return check


def _image(value: str) -> str | None:
    try:
        parse_image(value)
    except ValueError as exc:
        return f"is not an image reference ({exc})"
    return None


def _host(wildcard: bool) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        name = value[2:] if wildcard and value.startswith("*.") else value
        return None if len(name) <= 253 and _DNS_SUBDOMAIN.match(name) else "is not a DNS name"
    return check


def _matches(pattern: re.Pattern[str], what: str) -> Callable[[str], str | None]:
    return lambda value: None if pattern.match(value) else what


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else f"is not one of {', '.join(choices)}"


@dataclass(frozen=True)
class Form:
    """What a variable's value must look like, which commands need it, and the fix."""

    variable: str
    scopes: frozenset[Scope]
    check: Callable[[str], str | None]  # None when the value fits, else what is wrong
    fix: str


_EVERY = frozenset(Scope)
_NAMESPACED = frozenset({Scope.CLUSTER, Scope.DEPLOY})  # they name a namespace
_LOCKING = _NAMESPACED  # destroy takes the lock too
_BUILDING = frozenset({Scope.IMAGES, Scope.DEPLOY})
_RENDERED = frozenset({Scope.DEPLOY})
_SIZE_FIX = "Write a Kubernetes quantity, e.g. 10Gi or 500Mi."

FORMS: tuple[Form, ...] = (
    Form("PALESS_LOCK_TIMEOUT", _LOCKING, _duration(zero=True),
         "Write a duration: 90, 90s, 5m, 1h (0: do not wait)."),
    Form("PALESS_TTL", _LOCKING, _duration(zero=False),
         "Write a positive duration, e.g. 3d or 12h."),
    Form("BASE_IMAGE", _BUILDING, _image,
         "Name an image as `docker pull` takes it, e.g. "
         "ghcr.io/paperless-ngx/paperless-ngx:2.18.4."),
    *(Form(name, _RENDERED, _quantity, _SIZE_FIX) for name in (
        "DATA_VOLUME_SIZE", "MEDIA_VOLUME_SIZE", "POSTGRES_VOLUME_SIZE", "REDIS_VOLUME_SIZE",
        "MINIO_VOLUME_SIZE")),
    Form("MINIO_CONSOLE_NODEPORT", _RENDERED, _integer(1, 65535),
         "Give a port of the cluster's NodePort range (30000-32767 by default), or unset it "
         "to have one assigned."),
    Form("CELERY_TENANT_BATCH_SIZE", _RENDERED, _integer(1, 1_000_000),
         "Give a whole number of tenants, e.g. 10."),
    Form("CELERY_TENANT_BATCH_DELAY", _RENDERED, _integer(0, 86_400),
         "Give a whole number of seconds, e.g. 60."),
    Form("SHARED_VOLUME_ACCESS_MODE", _RENDERED, _one_of(*ACCESS_MODES),
         "ReadWriteOnce on one node; ReadWriteMany when pods on several nodes share the "
         "claims."),
    Form("STORAGE_CLASS", _RENDERED, _host(wildcard=False),
         "Name a StorageClass of the cluster (`kubectl get storageclass`)."),
    Form("INGRESS_CLASS", _RENDERED, _host(wildcard=False),
         "Name an IngressClass of the cluster (`kubectl get ingressclass`)."),
    Form("INGRESS_HOST", _RENDERED, _host(wildcard=True),
         "Write a host name (lower-case, dots between labels), e.g. paless.example.com, or "
         "*.example.com."),
    Form("PALESS_BASE_DOMAIN", _RENDERED, _host(wildcard=False),
         "Write a domain, e.g. preview.example.com."),
    Form("PAPERLESS_URL", _RENDERED, _matches(_URL, "is not an http(s) URL"),
         "Write the public URL, e.g. https://paless.example.com."),
    Form("MINIO_BUCKET", _RENDERED, _matches(_BUCKET, "is not a bucket name"),
         "Use 3 to 63 lower-case letters, digits, '.' and '-', e.g. paperless-media."),
    Form("PALESS_SNAPSHOT_BEFORE_MIGRATE", _RENDERED, _one_of("auto", "always", "never"),
         "auto: a snapshot before migrations outside the dev overlay; always; never."),
    Form("PALESS_ALLOW_RECLAIM_DELETE", _RENDERED, _one_of("true", "false", "1", "0", "yes",
                                                           "no"),
         "true to accept volumes deleted with their claims in prod; else unset it."),
    *(Form(name, _RENDERED, _quantity, f"Write a Kubernetes quantity, e.g. {example}.")
      for name, example in (("PALESS_QUOTA_CPU", "8 or 500m"), ("PALESS_QUOTA_MEMORY", "16Gi"),
                            ("PALESS_QUOTA_STORAGE", "50Gi"), ("PALESS_LIMIT_CPU", "500m"),
                            ("PALESS_LIMIT_MEMORY", "512Mi"))),
    Form("PALESS_QUOTA_PODS", _RENDERED, _integer(1, 100_000),
         "Give a whole number of pods, e.g. 40."),
    Form("PAPERLESS_OCR_LANGUAGE", _RENDERED, _matches(_LANGUAGES, "is not a language list"),
         "Write Tesseract language codes joined by '+', e.g. eng or eng+deu."),
    Form("REDIS_PASSWORD", _RENDERED,
         _matches(_URL_SAFE, "has characters that the apps' broker URL cannot carry as they are"),
         "Use letters, digits, '.', '_', '~' and '-' only, e.g. `openssl rand -hex 32`."),
    Form("MINIO_APP_USER", _RENDERED, _matches(_ACCESS_KEY, "is not a MinIO access key"),
         "Use 3 to 64 letters, digits, '.', '_' and '-', e.g. paless-app."),
    Form("INGRESS_CONTROLLER_NAMESPACE", _RENDERED, _matches(_DNS_LABEL, "is not a namespace"),
         "Name the namespace the ingress controller runs in (`kubectl get pods -A -l "
         "app.kubernetes.io/name=traefik`), e.g. kube-system or ingress-nginx."),
    Form("INGRESS_CONTROLLER_LABEL", _RENDERED, _matches(_LABEL_KEY, "is not a label key"),
         "Write a label key of the ingress controller's pods, e.g. app.kubernetes.io/name."),
    Form("INGRESS_CONTROLLER_LABEL_VALUE", _RENDERED,
         _matches(_LABEL_VALUE, "is not a label value"),
         "Write that label's value on the controller's pods, e.g. traefik or ingress-nginx."),
)


# --- the table ------------------------------------------------------------------------------

Facts: TypeAlias = Mapping[str, object]  # what a rule found, quoted by its words


@dataclass(frozen=True)
class ConfigRule:
    """One check of the configuration, as data: its name, the variables it reads, the
    commands that need it, the predicate (`wrong`: None when the configuration passes, else
    the facts its words quote), its words (format strings over those facts: the message,
    the fix, the report's code and resource) and the exit code."""

    name: str
    reads: tuple[str, ...]
    scopes: frozenset[Scope]
    wrong: Callable[[Config], Facts | None]
    message: str
    fix: str
    code: str = "config"
    resource: str = ""
    exit_code: ExitCode = ExitCode.USAGE

    def problem(self, config: Config) -> ConfigError | None:
        """The rule's error for this configuration, None when it passes."""
        facts = self.wrong(config)
        if facts is None:
            return None
        return ConfigError(self.message.format_map(facts), self.fix.format_map(facts),
                           code=self.code.format_map(facts),
                           resource=self.resource.format_map(facts), exit_code=self.exit_code)


def config_problems(config: Config, *, scope: Scope = Scope.DEPLOY) -> list[ConfigError]:
    """Every problem of a configuration the scope's commands would meet, in the table's
    order, each naming variable, source and fix."""
    return [problem for rule in RULES if scope in rule.scopes
            if (problem := rule.problem(config)) is not None]


def _empty(name: str) -> Callable[[Config], Facts | None]:
    def wrong(config: Config) -> Facts | None:
        setting = config.settings[name]
        if not setting.explicit or setting.value is None or setting.value.strip():
            return None
        default = BY_NAME[name].default
        return {"name": name, "source": setting.describe_source(),
                "default": f" ({default})." if default else " (derived from PROJECT_NAME).",
                "ci": " In CI, check that the variable passed to -n is set."
                if setting.from_flag else ""}
    return wrong


def _empty_rule(name: str, scopes: frozenset[Scope]) -> ConfigRule:
    return ConfigRule(
        f"{name} empty", (name,), scopes, _empty(name),
        "{name} is set but empty ({source}): an empty value would silently fall back to the "
        "default.", "Give it a value, or remove it there to use the default{default}{ci}",
        code="empty-value")


def _form(form: Form) -> Callable[[Config], Facts | None]:
    def wrong(config: Config) -> Facts | None:
        setting = config.settings.get(form.variable)
        if setting is None or setting.value in (None, ""):
            return None
        what = form.check(setting.value)
        if not what:
            return None
        # a secret's value is never quoted; these variables hold none, but say so if one did
        return {"name": setting.name, "wrong": what, "source": setting.describe_source(),
                "value": "its value" if setting.secret else shown(setting.value)}
    return wrong


def _form_rule(form: Form) -> ConfigRule:
    return ConfigRule(f"{form.variable} form", (form.variable,), form.scopes, _form(form),
                      "{name}={value} ({source}) {wrong}.", form.fix.replace("{", "{{")
                      .replace("}", "}}"), code="bad-value", resource="{name}")


def _refused_by(parse: Callable[[Config], object]) -> Callable[[Config], Facts | None]:
    def wrong(config: Config) -> Facts | None:
        try:
            parse(config)
        except ConfigError as exc:
            return {"message": exc.message, "fix": exc.hint, "code": exc.code,
                    "resource": exc.resource}
        return None
    return wrong


def _parsed_rule(name: str, parse: Callable[[Config], object]) -> ConfigRule:
    """A setting whose parser is its check: the parser's refusal in its own words, the same
    whether it is found here or where the value is read."""
    return ConfigRule(f"{name} parses", (name,), _EVERY, _refused_by(parse), "{message}",
                      "{fix}", code="{code}", resource="{resource}")


_FLAGS = {"REGISTRY": "--registry", "OVERLAY": "--overlay", "PALESS_NAMESPACE": "-n"}


def _flag_or_variable(setting: Setting) -> str:
    """How the user wrote it: the flag's name for a flag, else the variable's."""
    return _FLAGS.get(setting.name, setting.name) if setting.from_flag else setting.name


def _registry(config: Config) -> object:
    registry = config.settings["REGISTRY"]
    return parse_registry(registry.value or "localhost:5000", _flag_or_variable(registry),
                          registry.describe_source())


def _delivery(config: Config) -> object:
    from paless_deploy.core.images.delivery import check_method  # not needed for --help

    delivery = config.settings["IMAGE_DELIVERY"]
    return check_method(delivery.value, delivery.describe_source())


def _project_name(config: Config) -> Facts | None:
    project = config.settings["PROJECT_NAME"]
    value = project.value or ""
    if value and _IMAGE_COMPONENT.match(value) and len(value) <= MAX_PROJECT_NAME:
        return None
    return {"value": shown(value), "source": project.describe_source(),
            "max": MAX_PROJECT_NAME}


def _namespace(config: Config) -> Facts | None:
    namespace = config.namespace
    if _DNS_LABEL.match(namespace) and len(namespace) <= 63:
        return None
    return {"namespace": shown(namespace), "source": config.namespace_source}


def _overlay_facts(config: Config) -> Facts:
    overlay = config.settings["OVERLAY"]
    return {"overlay": overlay.value or "", "value": shown(overlay.value or ""),
            "where": f"{overlay.name} {overlay.describe_source()}",
            "overlays": ", ".join(config.overlays), "project": config.project_absolute}


def _overlay_name_ok(config: Config) -> bool:
    value = config.settings["OVERLAY"].value or ""
    return bool(value and _OVERLAY_NAME.match(value) and len(value) <= MAX_OVERLAY_NAME)


def _overlay_name(config: Config) -> Facts | None:
    if _overlay_name_ok(config):
        return None
    facts = _overlay_facts(config)
    return {**facts, "overlays": facts["overlays"] or "dev"}


def _overlay_missing(found: bool) -> Callable[[Config], Facts | None]:
    """An overlay named well that the project lacks: `found` says whether it has others."""
    def wrong(config: Config) -> Facts | None:
        if not _overlay_name_ok(config) or config.overlay in config.overlays or (
                bool(config.overlays) != found):
            return None
        return _overlay_facts(config)
    return wrong


def _short_password(name: str) -> Callable[[Config], Facts | None]:
    """MinIO refuses passwords shorter than 8 characters (the root's at start, the app
    user's in the bucket Job)."""
    def wrong(config: Config) -> Facts | None:
        setting = config.settings[name]
        if setting.value is None or len(setting.value) >= MIN_CREDENTIAL_LENGTH:
            return None
        return {"source": setting.describe_source(), "min": MIN_CREDENTIAL_LENGTH}
    return wrong


def _app_user_is_root(config: Config) -> Facts | None:
    app, root = config.settings["MINIO_APP_USER"], config.settings["MINIO_ROOT_USER"]
    if not app.value or app.value != root.value:
        return None
    return {"app": app.describe_source(), "root": root.describe_source()}


_OVERLAY_MISSING = ("Overlay {overlay!r} ({where}) has no "
                    "k8s/overlays/{overlay}/kustomization.yaml in {project}.")

RULES: tuple[ConfigRule, ...] = (
    _empty_rule("PROJECT_NAME", _EVERY),
    _empty_rule("REGISTRY", _EVERY),
    _empty_rule("PALESS_NAMESPACE", _NAMESPACED),
    _empty_rule("OVERLAY", _NAMESPACED),
    *(_form_rule(form) for form in FORMS),
    ConfigRule(
        "PROJECT_NAME image name", ("PROJECT_NAME",), _EVERY, _project_name,
        "PROJECT_NAME {value} ({source}) cannot start an image name.",
        "Use at most {max} lower-case letters, digits and single '-', '_' or '.' between "
        "them, e.g. PROJECT_NAME=paless.", code="bad-value"),
    _parsed_rule("BUILDER", lambda config: config.builder),
    _parsed_rule("PLATFORM", lambda config: config.platform),
    _parsed_rule("BUILD_TARGETS", lambda config: config.build_targets()),
    _parsed_rule("BUILD_SECRETS", lambda config: config.build_secrets()),
    _parsed_rule("REGISTRY", _registry),
    _parsed_rule("PALESS_IMAGES", lambda config: config.image_aliases()),
    _parsed_rule("IMAGE_DELIVERY", _delivery),
    ConfigRule(
        "namespace name", ("PALESS_NAMESPACE", "PROJECT_NAME"), _NAMESPACED, _namespace,
        "Namespace {namespace} ({source}) is not a valid Kubernetes namespace name.",
        "Use at most 63 lower-case letters, digits and '-', starting and ending with a "
        "letter or digit: set PALESS_NAMESPACE or pass -n."),
    ConfigRule(
        "OVERLAY name", ("OVERLAY",), frozenset({Scope.DEPLOY}), _overlay_name,
        "Overlay {value} ({where}) is not a directory name.", "Use one of: {overlays}."),
    ConfigRule(
        "OVERLAY exists", ("OVERLAY",), frozenset({Scope.DEPLOY}), _overlay_missing(True),
        _OVERLAY_MISSING, "Set OVERLAY to one of: {overlays}."),
    ConfigRule(
        "project has overlays", ("OVERLAY",), frozenset({Scope.DEPLOY}),
        _overlay_missing(False), _OVERLAY_MISSING,
        "Run from the Paless repository (or pass --project-dir), where "
        "k8s/overlays/<overlay>/ holds the manifests."),
    ConfigRule(
        "MINIO_ROOT_PASSWORD length", ("MINIO_ROOT_PASSWORD",), frozenset({Scope.DEPLOY}),
        _short_password("MINIO_ROOT_PASSWORD"),
        "MINIO_ROOT_PASSWORD ({source}) is shorter than {min} characters; MinIO refuses to "
        "start with it.", "Set MINIO_ROOT_PASSWORD to at least {min} characters."),
    ConfigRule(
        "MINIO_APP_PASSWORD length", ("MINIO_APP_PASSWORD",), frozenset({Scope.DEPLOY}),
        _short_password("MINIO_APP_PASSWORD"),
        "MINIO_APP_PASSWORD ({source}) is shorter than {min} characters; MinIO refuses to "
        "create its user.", "Set MINIO_APP_PASSWORD to at least {min} characters."),
    ConfigRule(
        "MINIO_APP_USER not root", ("MINIO_APP_USER", "MINIO_ROOT_USER"),
        frozenset({Scope.DEPLOY}), _app_user_is_root,
        "MINIO_APP_USER ({app}) is MINIO_ROOT_USER ({root}): the apps would hold MinIO's root "
        "credentials.", "Give MINIO_APP_USER a name of its own, e.g. paless-app: the bucket "
        "Job creates that user with a policy limited to MINIO_BUCKET.", code="bad-value"),
)


def blame_base_image(error: PalessError, config: Config) -> PalessError:
    """A build that failed on its base image names BASE_IMAGE, its value and where that came
    from: the Dockerfile says only `FROM ${BASE_IMAGE}`, and the engine only the image."""
    setting = config.settings.get("BASE_IMAGE")
    first_line = error.message.split("\n", 1)[0]
    if setting is None or not setting.value or not any(
            mark in first_line for mark in ("${BASE_IMAGE}", "$BASE_IMAGE", setting.value)):
        return error
    error.message = (f"{first_line} (BASE_IMAGE is {setting.value}, "
                     f"{setting.describe_source()})" + error.message[len(first_line):])
    error.hint = (f"Make BASE_IMAGE an image the Docker engine has or can pull: `docker pull "
                  f"{setting.value}` shows why it cannot; or set BASE_IMAGE (paless.env, the "
                  "environment) to one that `docker image ls` lists. The sandbox provides a "
                  "stand-in for the default (`scripts/sandbox up`)."
                  + (error.hint[error.hint.index(" (Also failed"):]
                     if " (Also failed" in error.hint else ""))
    return error
