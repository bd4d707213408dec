"""Image references and registry addresses, read as Docker reads them.

One definition of the reference grammar of distribution/reference (the one Docker and
containerd use): `[domain/]path[:tag][@digest]`, where the first component is a domain
when it has a `.` or a `:`, is `localhost`, or has upper-case letters; otherwise the image
is on Docker Hub (`docker.io`, `library/` for one-component names). Loopback spellings of
the same registry (`localhost:5000`, `127.0.0.1:5000`, `[::1]:5000`) are the same host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paless_deploy.core.errors import SHOWN_CHARS, ConfigError, shown

DOCKER_HUB = "docker.io"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"^{_PATH}$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
MAX_NAME = 255
MAX_PORT = 65535


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference; `domain` is "" when the reference named none."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def registry(self) -> str:
        """The registry host[:port] the image is pulled from (docker.io when none named)."""
        return self.domain or DOCKER_HUB

    @property
    def repository(self) -> str:
        """`domain/path` as written (`path` alone when no domain was named)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def pinned(self) -> bool:
        """True when the reference names a tag or a digest (it cannot float silently)."""
        return bool(self.tag or self.digest)

    @property
    def floating(self) -> bool:
        """True for `:latest` or no tag at all, without a digest: re-pushes never roll out."""
        return not self.digest and (self.tag is None or self.tag == "latest")

    def with_tag(self, tag: str) -> str:
        """The reference with `tag` instead of its tag and digest."""
        return f"{self.repository}:{tag}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(text: str) -> ImageRef:
    """Parse an image reference; ValueError saying what is wrong when it is not one."""
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise ValueError("it is empty or contains spaces")
    rest, _, digest = text.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise ValueError(f"the digest {digest!r} is not algorithm:hex")
    name, tag = rest, None
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ValueError(f"the tag {tag!r} is not a valid tag")
    domain, path = split_domain(name)
    if domain and not _DOMAIN_RE.match(domain):
        raise ValueError(f"the registry {domain!r} is not host[:port]")
    if not _PATH_RE.match(path):
        raise ValueError(f"the repository {path!r} must be lower-case letters, digits and "
                         "separators (. _ __ -) between them")
    if len(name) > MAX_NAME:
        raise ValueError(f"the name is longer than {MAX_NAME} characters")
    return ImageRef(domain, path, tag, digest or None)


def split_domain(name: str) -> tuple[str, str]:
    """(domain, path) of a name without tag or digest, by Docker's rule for the first part."""
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, remainder
    return "", name


def has_tag_or_digest(image: str) -> bool:
    """True for `name:tag`, `name@sha256:...`; False for `name` and `host:5000/name`."""
    try:
        return parse_image(image).pinned
    except ValueError:
        return "@" in image or ":" in image.rsplit("/", 1)[-1]


def image_registry_host(image: str) -> str:
    """The registry host of an image reference ("docker.io" for Docker Hub names)."""
    domain, _ = split_domain(image.partition("@")[0])
    return domain or DOCKER_HUB


def tag_of(image: str) -> str | None:
    """The tag of a reference (None when it has none)."""
    try:
        return parse_image(image).tag
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# registries


@dataclass(frozen=True)
class Registry:
    """Where images are pushed: host[:port] and an optional path prefix (`host/team`)."""

    host: str  # as written: localhost:5000, registry.example.com, [::1]:5000
    prefix: str = ""

    @property
    def hostname(self) -> str:
        """The host without port, brackets kept out: `localhost`, `::1`, `registry.example`."""
        host = self.host
        if host.startswith("["):
            return host[1:].split("]", 1)[0]
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def port(self) -> str:
        """The port as written ("" when none)."""
        tail = self.host.rsplit("]", 1)[-1] if self.host.startswith("[") else self.host
        return tail.rsplit(":", 1)[1] if ":" in tail else ""

    @property
    def loopback(self) -> bool:
        """True for this machine's own address (localhost, 127.x, ::1)."""
        name = self.hostname.lower()
        return name in LOOPBACK_NAMES or name.startswith("127.")

    def __str__(self) -> str:
        return f"{self.host}/{self.prefix}" if self.prefix else self.host


def parse_registry(text: str, what: str = "REGISTRY", source: str = "") -> Registry:
    """`host[:port][/path]` as Docker accepts it; ConfigError naming `what` (and where it came
    from, `source`, e.g. "from the command line") and the part that is wrong otherwise."""
    value = text.strip().rstrip("/")
    where = f" ({source})" if source else ""
    hint = ("Write host[:port] with an optional path, without a scheme: e.g. localhost:5000, "
            "registry.example.com/team.")
    if "://" in value:
        scheme, _, rest = value.partition("://")
        fix = f"{what}={rest}" if len(rest) <= SHOWN_CHARS else f"{what} without {scheme}://"
        raise ConfigError(f"{what} {shown(value)}{where} has a scheme ({shown(scheme + '://')}): "
                          "registries are named without one.",
                          f"Drop it: {fix}. Docker chooses HTTP or HTTPS by itself (loopback and "
                          "insecure-registries speak HTTP).", code="bad-registry")
    host, _, prefix = value.partition("/")
    wrong = _registry_problem(value, host, prefix)
    if wrong:
        raise ConfigError(f"{what} {shown(value)}{where} is not a registry address: {wrong}.",
                          hint, code="bad-registry")
    return Registry(host, prefix)


def _registry_problem(value: str, host: str, prefix: str) -> str | None:
    """What is wrong with a registry address, in words (None: nothing)."""
    if not value:
        return "it is empty"
    if any(c.isspace() for c in value):
        return "it contains a space"
    if len(value) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    if not _DOMAIN_RE.match(host) or any(len(label) > 63 for label in host.split(".")):
        return f"{shown(host)} is not a host[:port]"
    if int(Registry(host).port or 0) > MAX_PORT:
        return f"the port {Registry(host).port} is above {MAX_PORT}"
    if prefix and prefix != prefix.lower() and _PATH_RE.match(prefix.lower()):
        return f"the path {shown(prefix)} has upper-case letters (Docker wants {prefix.lower()})"
    if prefix and not _PATH_RE.match(prefix):
        return (f"the path {shown(prefix)} is not lower-case letters, digits and separators "
                "(. _ __ -) between them")
    return None


def same_registry(a: str, b: str) -> bool:
    """True when two registry hosts name the same registry (loopback spellings are one)."""
    ra, rb = _host_only(a), _host_only(b)
    if ra is None or rb is None:
        return a == b
    if ra.loopback and rb.loopback:
        return ra.port == rb.port
    return ra.hostname.lower() == rb.hostname.lower() and ra.port == rb.port


def _host_only(text: str) -> Registry | None:
    host = text.split("/", 1)[0]
    return Registry(host) if host and _DOMAIN_RE.match(host) else None


def in_repository(image: str, registry: str, repository: str) -> bool:
    """True when `image` lives in `registry/repository` (any tag, digest or loopback
    spelling of the registry host): `127.0.0.1:5000/paless-web:latest` is in
    `localhost:5000` + `paless-web`."""
    try:
        ref = parse_image(image)
    except ValueError:
        return False
    reg = parse_registry_lenient(registry)
    if reg is None or not same_registry(ref.registry, reg.host):
        return False
    wanted = f"{reg.prefix}/{repository}" if reg.prefix else repository
    return ref.path == wanted


def same_repository(image: str, repository: str) -> bool:
    """True when `image` (any tag or digest) lives in `repository` (`[domain/]path`), the
    registry host in any spelling: how PALESS_IMAGES' repositories are recognised."""
    try:
        ref, wanted = parse_image(image), parse_image(repository)
    except ValueError:
        return False
    return ref.path == wanted.path and (
        ref.domain == wanted.domain or same_registry(ref.registry, wanted.registry))


def in_registry(image: str, registry: Registry) -> bool:
    """True when the image reference lives in `registry` (any spelling of its host, under
    its path prefix, if any); False for a reference that cannot be parsed."""
    try:
        ref = parse_image(image)
    except ValueError:
        return False
    inside = not registry.prefix or ref.path.startswith(registry.prefix + "/")
    return inside and same_registry(ref.registry, registry.host)


def parse_registry_lenient(text: str) -> Registry | None:
    """parse_registry, or None when the text is not a registry address."""
    try:
        return parse_registry(text)
    except ConfigError:
        return None


# ---------------------------------------------------------------------------
# the names this tool gives images


def check_image_name(app: str, source: str, repository: str, tag: str | None = None
                     ) -> None:
    """The image `repository:tag` of `app` (built from `source`, a directory or root
    Dockerfile) within the distribution spec's limits: a whole name of at most MAX_NAME
    characters, path components of lower-case letters and digits with separators between
    them, a tag of at most 128 word characters. ConfigError (exit 2, `bad-image-name`)
    naming the app's source and what to shorten, before anything is built (the engine's
    own error was an internal one)."""
    domain, path = split_domain(repository)
    prefix = len(repository) - len(app)  # `{REGISTRY}/{PROJECT_NAME}-`
    if len(repository) > MAX_NAME:
        room = MAX_NAME - prefix
        fix = (f"Rename {source} to at most {room} characters (the registry and PROJECT_NAME "
               f"take {prefix} of the {MAX_NAME})" if room >= 16 else
               f"Shorten REGISTRY's path or PROJECT_NAME: together they take {prefix} of the "
               f"{MAX_NAME} characters an image name may have")
        raise ConfigError(
            f"The image name of app {shown(app)} ({source}) is {len(repository)} characters "
            f"long; image names may be at most {MAX_NAME}: {shown(repository)}.",
            fix + ".", code="bad-image-name")
    if not _PATH_RE.match(path) or (domain and not _DOMAIN_RE.match(domain)):
        raise ConfigError(
            f"The image name of app {shown(app)} ({source}) is not a repository name: "
            f"{shown(repository)}.",
            f"Rename {source} with lower-case letters, digits and separators (. _ -) between "
            "them.", code="bad-image-name")
    if tag is not None and not _TAG_RE.match(tag):
        raise ConfigError(f"The tag {shown(tag)} of app {shown(app)} is not a tag (at most 128 "
                          "letters, digits, '_', '.' and '-', not starting with '.' or '-').",
                          "This tag is computed by paless-deploy: please report it.",
                          code="bad-image-name")
