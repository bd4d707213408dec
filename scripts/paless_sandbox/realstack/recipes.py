"""What the real stack is made of, as data: each image's recipe (Debian base, Go binary, build
context under scripts/sandbox.d/realstack/NAME), its cache key, and whether it needs building.

Nothing here touches the machine: the build context's files reach `recipe_key` as bytes.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

KEY_LABEL = "io.paless.sandbox.key"
ROOTFS_REVISION = "r3"  # bump when DebianBase's recipe changes: new tars, new base images
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Written into every rootfs: no recommends (small images), retries and no Valid-Until (a
# long-lived cache), no .deb left behind by a RUN that forgets to clean.
APT_CONF = ('APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
            'Acquire::Retries "3";\nAcquire::Check-Valid-Until "false";\n'
            'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
            'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n')
IMPORT_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  'CMD ["bash"]')


@dataclass(frozen=True)
class DebianBase:
    """A minbase rootfs of one suite (debootstrap), imported as a local base image."""

    suite: str  # "trixie", "sid"
    sources: tuple[str, ...]  # the suites of /etc/apt/sources.list beside the main one

    @property
    def image(self) -> str:
        return f"paless-sandbox/debian:{self.suite}-{ROOTFS_REVISION}"

    @property
    def tar_name(self) -> str:
        return f"debian-{self.suite}-{ROOTFS_REVISION}.tar"

    def sources_list(self) -> str:
        """/etc/apt/sources.list of the rootfs: the suite, its updates and security archives."""
        lines = [f"deb {DEBIAN_MIRROR} {self.suite} main"]
        for extra in self.sources:
            archive = f"{DEBIAN_MIRROR}-security" if extra.endswith("-security") else DEBIAN_MIRROR
            lines.append(f"deb {archive} {extra} main")
        return "\n".join(lines) + "\n"

    def fingerprint(self) -> str:
        return "\n".join(["debootstrap --variant=minbase", self.suite, ROOTFS_REVISION,
                          self.sources_list(), APT_CONF, *IMPORT_CHANGES])


TRIXIE = DebianBase("trixie", ("trixie-updates", "trixie-security"))
SID = DebianBase("sid", ())  # PostgreSQL 18 is in sid only


class GoMain(enum.Enum):
    """Where a Go program's main package comes from."""

    UPSTREAM = "go install module@version"  # the module's own main, as released
    OWN = "go build of the recipe's go/ module"  # a main of ours: fewer plugins, backends


@dataclass(frozen=True)
class GoBinary:
    """A program built from the Go module proxy into the build context as `name`: static
    (CGO_ENABLED=0), -trimpath, so the same toolchain builds the same binary."""

    name: str
    module: str
    version: str
    ldflags: str
    main: GoMain = GoMain.OWN  # OWN: NAME/go/ holds go.mod (every version pinned) and main.go

    def fingerprint(self) -> str:
        parts = (self.name, self.module, self.version, self.ldflags, self.main.value,
                 "-trimpath", "CGO_ENABLED=0")
        return "\n".join(parts)

    def slug(self, context: Mapping[str, bytes]) -> str:
        """Where the built program is cached: its recipe and, for an own main, the files of
        the context's go/ module (a changed main.go is a new binary)."""
        digest = hashlib.sha256(self.fingerprint().encode())
        for path in sorted(p for p in context if p.startswith("go/")):
            digest.update(path.encode() + b"\0" + hashlib.sha256(context[path]).digest())
        return f"{self.name}-{self.version}-{digest.hexdigest()[:12]}"


class ProbeKind(enum.Enum):
    COMMAND = "command"  # the first line a command in the image prints
    PACKAGE = "package"  # the Debian package's version (dpkg-query)


@dataclass(frozen=True)
class Probe:
    """One line of an image's "real version": what really runs under the manifests' tag."""

    label: str
    kind: ProbeKind
    argv: tuple[str, ...] = ()


def package(*names: str) -> tuple[Probe, ...]:
    return tuple(Probe(n, ProbeKind.PACKAGE) for n in names)


def command(label: str, *argv: str) -> Probe:
    return Probe(label, ProbeKind.COMMAND, argv)


@dataclass(frozen=True)
class Recipe:
    """One image of the real stack, pushed under the name the manifests use."""

    name: str  # the directory under scripts/sandbox.d/realstack
    repository: str  # in the sandbox registry: docker.io's library/ names, other hosts' prefix
    tag: str
    base: DebianBase
    probes: tuple[Probe, ...]
    emulates: str  # what the image stands in for, for `images` and the docs
    go: GoBinary | None = None

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


RECIPES: tuple[Recipe, ...] = (
    Recipe("postgres", "library/postgres", "18.1", SID, package("postgresql-18"),
           "Debian's PostgreSQL 18 behind the official image's docker-entrypoint.sh "
           "(POSTGRES_* variables, initdb, /docker-entrypoint-initdb.d)"),
    Recipe("redis", "library/redis", "7.4.5-alpine", TRIXIE, package("redis-server"),
           "Debian's redis-server behind the official entrypoint contract (drops to redis, "
           "protected mode off)"),
    Recipe("minio", "minio/minio", "RELEASE.2025-09-07T16-13-09Z", TRIXIE,
           (command("minio", "minio", "--version"),),
           "MinIO server from the Go module proxy; `server /data` runs `minio server /data`",
           GoBinary("minio", "github.com/minio/minio", "v0.0.0-20260212201848-7aac2a2c5b7c",
                    "-s -w -X github.com/minio/minio/cmd.Version=2026-02-12T20:18:48Z "
                    "-X github.com/minio/minio/cmd.ReleaseTag=DEVELOPMENT.2026-02-12T20-18-48Z "
                    "-X github.com/minio/minio/cmd.CommitID=7aac2a2c5b7c "
                    "-X github.com/minio/minio/cmd.ShortCommitID=7aac2a2c5b7c",
                    GoMain.UPSTREAM)),
    Recipe("mc", "minio/mc", "RELEASE.2025-08-13T08-35-41Z", TRIXIE, package("minio-client"),
           "Debian's minio-client as `mc` (the entrypoint)"),
    Recipe("rclone", "rclone/rclone", "1.71.1", TRIXIE,
           (*package("fuse3"), command("rclone", "rclone", "version")),
           "rclone v1.71.1 from the Go module proxy with FUSE 3 (the sidecars' `rclone mount`)",
           GoBinary("rclone", "github.com/rclone/rclone", "v1.71.1",
                    "-s -w -X github.com/rclone/rclone/fs.VersionSuffix=")),
    Recipe("busybox", "library/busybox", "1.37.0", TRIXIE,
           (command("busybox", "busybox"),),
           "Debian's static busybox FROM scratch, applets as links in /bin"),
    Recipe("coredns", "registry.k8s.io/coredns/coredns", "v1.14.7", TRIXIE,
           (command("coredns", "/coredns", "-version"),),
           "CoreDNS v1.14.7 from the Go module proxy (the sandbox's cluster DNS)",
           GoBinary("coredns", "github.com/coredns/coredns", "v1.14.7",
                    "-s -w -X github.com/coredns/coredns/coremain.GitCommit=v1.14.7")),
    Recipe("paless", "ghcr.io/paperless-ngx/paperless-ngx", "2.18.4", TRIXIE,
           package("python3", "python3-django", "python3-celery", "tesseract-ocr",
                   "ghostscript", "imagemagick"),
           "the Paperless-ngx image's shape (15 layers, 1.3 GB, Debian's Django, Celery, OCR "
           "tools) with a small Django app: /usr/local/bin/init migrates and starts the "
           "worker and scheduler, `granian` serves the API"),
)
BY_NAME: Mapping[str, Recipe] = {r.name: r for r in RECIPES}

def recipe_key(recipe: Recipe, context: Mapping[str, bytes]) -> str:
    """The cache key of an image: its build context (path, executable bit and bytes of each
    file, the Dockerfile and an own Go main among them), its Debian base's recipe and its Go
    binary's recipe.
    `context` maps a relative path to its bytes, a trailing "*" on the path marking an
    executable file."""
    digest = hashlib.sha256()
    for part in (recipe.name, recipe.reference, recipe.base.fingerprint(),
                 recipe.go.fingerprint() if recipe.go else "no go binary"):
        digest.update(part.encode() + b"\0")
    for path in sorted(context):
        digest.update(path.encode() + b"\0")
        digest.update(hashlib.sha256(context[path]).digest())
    return digest.hexdigest()[:16]


class Found(enum.Enum):
    """What the registry (or the local engine) holds under an image's name."""

    CURRENT = "present"  # built from this recipe
    STALE = "stale"  # built from another recipe
    FOREIGN = "unlabelled"  # not built by the sandbox at all
    MISSING = "missing"


def classify(recipe: Recipe, key: str, label: str | None, exists: bool) -> Found:
    """What the image found under the recipe's name is, given its key label (None: none)."""
    if not exists:
        return Found.MISSING
    if label is None:
        return Found.FOREIGN
    if label == key:
        return Found.CURRENT
    return Found.STALE


def needs_build(found: Found, rebuild: bool) -> bool:
    """Whether to build: asked to, or nothing built from this recipe is there."""
    return rebuild or found is not Found.CURRENT
