"""The form of every variable, checked before any I/O: one table of rules, like readiness.

A value of the wrong form (a lock timeout of `abc`, a volume size of `ten`, a base image
with spaces) is an exit-2 error naming the variable, where it came from and the fix, in a
second, instead of a failure found after the cluster or the registry was asked. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paless_deploy.core.configuration.durations import parse_duration
from paless_deploy.core.errors import ConfigError, PalessError, shown
from paless_deploy.core.images.imageref import parse_image
from paless_deploy.core.manifests.quantities import parse_quantity

if TYPE_CHECKING:
    from paless_deploy.core.configuration.config import Config, Setting

IMAGES, CLUSTER, DEPLOY = "images", "cluster", "deploy"  # core.config's scopes
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_LANGUAGES = re.compile(r"^[a-z_]+(\+[a-z_]+)*$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod")


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
    scopes: frozenset[str]
    check: Callable[[str], str | None]  # None when the value fits, else what is wrong
    fix: str


_ALL = frozenset({IMAGES, CLUSTER, DEPLOY})
_LOCKING = frozenset({CLUSTER, DEPLOY})  # destroy takes the lock too
_BUILDING = frozenset({IMAGES, DEPLOY})
_RENDERED = frozenset({DEPLOY})
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
)


def form_problems(config: Config, scope: str) -> list[ConfigError]:
    """Every variable the scope's commands need whose value has the wrong form."""
    problems: list[ConfigError] = []
    for form in FORMS:
        setting = config.settings.get(form.variable)
        if scope not in form.scopes or setting is None or setting.value in (None, ""):
            continue
        wrong = form.check(setting.value)
        if wrong:
            problems.append(_problem(setting, wrong, form.fix))
    return problems


def _problem(setting: Setting, wrong: str, fix: str) -> ConfigError:
    # a secret's value is never quoted; these variables hold none, but say so if one did
    value = "its value" if setting.secret else shown(setting.value)
    return ConfigError(f"{setting.name}={value} ({setting.describe_source()}) {wrong}.", fix,
                       code="bad-value", resource=setting.name)


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
