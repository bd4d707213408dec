"""The configuration variables of the Paless stack: one table, shared by config and render.

Each entry says its development default, whether it is a secret (masked everywhere),
and whether render may substitute it into manifests as `${NAME}`.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """One configuration variable of `paless.env`."""

    name: str
    default: str | None  # None: no default (unset unless configured)
    description: str
    secret: bool = False
    substitutable: bool = True  # may appear as ${NAME} in manifests
    dev_default: str | None = None  # the development value `prod` refuses (credentials)
    optional_field: bool = False  # empty value: render drops the field instead of failing


VARIABLES: tuple[Variable, ...] = (
    Variable("PROJECT_NAME", "paless", "Image name prefix: {REGISTRY}/{PROJECT_NAME}-{app}."),
    Variable("PALESS_NAMESPACE", None,
             "Target namespace; default PROJECT_NAME lower-cased with _ -> -; 'auto' = from branch."),
    Variable("REGISTRY", "localhost:5000",
             "Registry the images are pushed to and pulled from; unset, a registry the "
             "cluster advertises (KEP-1755) or a k3s import may be chosen (IMAGE_DELIVERY)."),
    Variable("IMAGE_DELIVERY", "auto",
             "How images reach the nodes: auto, registry, k3s-import, docker or none "
             "(`paless-deploy doctor` shows the choice and why).", substitutable=False),
    Variable("PALESS_CONTAINERD_ADDRESS", None,
             "k3s-import: the containerd socket to import into with `ctr --address` "
             "(rootless or custom k3s); unset: `k3s ctr`, else "
             "/run/k3s/containerd/containerd.sock.", substitutable=False),
    Variable("PALESS_NODE_NAME", None,
             "k3s-import: the name of this machine's node when it is not the host name "
             "(k3s --node-name).", substitutable=False),
    Variable("PALESS_IMAGES", None,
             "Trees naming our images otherwise: app=repository,... (any tag of that repository "
             "becomes the built image), e.g. web=ghcr.io/acme/paperless-web.",
             substitutable=False),
    Variable("OVERLAY", "dev", "Kustomize overlay: k8s/overlays/<OVERLAY>.", substitutable=False),
    Variable("POSTGRES_DB", "paperless", "PostgreSQL database name."),
    Variable("POSTGRES_USER", "paperless", "PostgreSQL owner role (runs migrations)."),
    Variable("POSTGRES_PASSWORD", "dev-postgres-password-changeme", "PostgreSQL owner password.",
             secret=True, dev_default="dev-postgres-password-changeme"),
    Variable("PAPERLESS_APP_DB_PASSWORD", "dev-app-db-password-changeme",
             "Password of the least-privilege application role.",
             secret=True, dev_default="dev-app-db-password-changeme"),
    Variable("MINIO_ROOT_USER", "admin",
             "MinIO root user: MinIO itself and the bucket Job only."),
    Variable("MINIO_ROOT_PASSWORD", "dev-minio-password-changeme",
             "MinIO root password, at least 8 characters.",
             secret=True, dev_default="dev-minio-password-changeme"),
    Variable("MINIO_APP_USER", "paless-app",
             "MinIO user of the apps and rclone, made by the bucket Job with a policy reaching "
             "MINIO_BUCKET only; not MINIO_ROOT_USER."),
    Variable("MINIO_APP_PASSWORD", "dev-minio-app-password-changeme",
             "Password of MINIO_APP_USER, at least 8 characters.",
             secret=True, dev_default="dev-minio-app-password-changeme"),
    Variable("REDIS_PASSWORD", "dev-redis-password-changeme",
             "Password Redis requires of every client (it is put in the apps' broker URL: "
             "letters, digits, '.', '_', '~' and '-' only).",
             secret=True, dev_default="dev-redis-password-changeme"),
    Variable("MINIO_BUCKET", "paperless-media", "Bucket created by the bucket Job, mounted by rclone."),
    Variable("PAPERLESS_SECRET_KEY", "dev-paperless-secret-key-changeme-0123456789",
             "Django signing key.", secret=True,
             dev_default="dev-paperless-secret-key-changeme-0123456789"),
    Variable("PAPERLESS_TIME_ZONE", "UTC", "Time zone of the application."),
    Variable("PAPERLESS_OCR_LANGUAGE", "eng", "OCR languages, e.g. eng or eng+deu."),
    Variable("CELERY_TENANT_BATCH_SIZE", "10", "Scheduler: tenants per fan-out batch."),
    Variable("CELERY_TENANT_BATCH_DELAY", "60", "Scheduler: seconds between fan-out batches."),
    Variable("PAPERLESS_URL", "http://paless.local", "Public URL of the application."),
    Variable("INGRESS_HOST", "paless.local",
             "Ingress host (the first DNS label is read as the tenant)."),
    Variable("INGRESS_CLASS", "traefik", "IngressClass (k3s ships traefik; nginx also works)."),
    Variable("INGRESS_CONTROLLER_NAMESPACE", "kube-system",
             "NetworkPolicy: the namespace of the ingress controller's pods, the only ones "
             "that may reach web (k3s runs Traefik in kube-system)."),
    Variable("INGRESS_CONTROLLER_LABEL", "app.kubernetes.io/name",
             "NetworkPolicy: the label key that picks the ingress controller's pods there."),
    Variable("INGRESS_CONTROLLER_LABEL_VALUE", "traefik",
             "NetworkPolicy: that label's value (traefik on k3s, ingress-nginx for ingress-nginx)."),
    Variable("PALESS_BASE_DOMAIN", None,
             "Branch mode: Ingress host becomes *.{namespace}.{PALESS_BASE_DOMAIN}.",
             substitutable=False),
    Variable("MINIO_CONSOLE_NODEPORT", None,
             "dev only: fixed NodePort of the MinIO console; unset = auto-assigned.",
             optional_field=True),
    Variable("STORAGE_CLASS", "local-path", "StorageClass of StatefulSet volumes and dynamic claims."),
    Variable("SHARED_VOLUME_ACCESS_MODE", "ReadWriteOnce",
             "Access mode of the data and media claims (ReadWriteMany across nodes)."),
    Variable("DATA_VOLUME_SIZE", "1Gi", "Size of the data claim."),
    Variable("MEDIA_VOLUME_SIZE", "2Gi", "Size of the media claim."),
    Variable("POSTGRES_VOLUME_SIZE", "10Gi", "Size of each PostgreSQL volume."),
    Variable("REDIS_VOLUME_SIZE", "2Gi", "Size of each Redis volume."),
    Variable("MINIO_VOLUME_SIZE", "20Gi", "Size of each MinIO volume."),
    Variable("BASE_IMAGE", "ghcr.io/paperless-ngx/paperless-ngx:2.18.4",
             "Build argument of the component Dockerfiles (FROM ${BASE_IMAGE}); the default "
             "goes only to a Dockerfile whose ARG BASE_IMAGE has no default of its own.",
             substitutable=False),
    Variable("BUILDER", "auto",
             "Image builder: auto (BuildKit when the Docker CLI offers it, else classic), "
             "buildkit, classic.", substitutable=False),
    Variable("PLATFORM", None,
             "Platform of the built images, e.g. linux/amd64 (the nodes'); unset: the engine's.",
             substitutable=False),
    Variable("BUILD_TARGETS", None,
             "Dockerfile stage built per app, e.g. web=runtime,worker=runtime (*=stage: all).",
             substitutable=False),
    Variable("BUILD_SECRETS", None,
             "Build secrets id=VARIABLE,...: RUN --mount=type=secret,id=<id> reads VARIABLE.",
             substitutable=False),
    Variable("DOCKERFILE_FRONTEND", None,
             "BuildKit's Dockerfile frontend image, in place of `# syntax=` (offline mirrors).",
             substitutable=False),
    Variable("PALESS_TTL", None, "Branch namespaces: gc deletes one not deployed for this long, e.g. 3d.",
             substitutable=False),
    Variable("PALESS_LOCK_TIMEOUT", "10m", "How long a deploy waits for the namespace lock.",
             substitutable=False),
    Variable("PALESS_SNAPSHOT_BEFORE_MIGRATE", "auto",
             "A snapshot before a deploy runs migrations with a new image: auto (outside the "
             "dev overlay), always or never.", substitutable=False),
    Variable("PALESS_SNAPSHOT_DIR", None,
             "Where snapshots go (backup, before migrations); unset: "
             "$XDG_DATA_HOME/paless-deploy/snapshots (~/.local/share/...).",
             substitutable=False),
    Variable("PALESS_ALLOW_RECLAIM_DELETE", None,
             "true: the prod overlay accepts volumes deleted with their claims "
             "(reclaim policy Delete); as --allow-reclaim-delete.", substitutable=False),
    Variable("PALESS_QUOTA_CPU", None,
             "ResourceQuota requests.cpu of a namespace (branch mode default 8).",
             substitutable=False),
    Variable("PALESS_QUOTA_MEMORY", None,
             "ResourceQuota requests.memory (branch mode default 16Gi).", substitutable=False),
    Variable("PALESS_QUOTA_STORAGE", None,
             "ResourceQuota requests.storage (branch mode default 50Gi).", substitutable=False),
    Variable("PALESS_QUOTA_PODS", None, "ResourceQuota pods (branch mode default 40).",
             substitutable=False),
    Variable("PALESS_LIMIT_CPU", None,
             "LimitRange: CPU request and limit of a container that sets none (branch mode "
             "default 500m).", substitutable=False),
    Variable("PALESS_LIMIT_MEMORY", None,
             "LimitRange: memory request and limit of a container that sets none (branch "
             "mode default 512Mi).", substitutable=False),
)

BY_NAME: dict[str, Variable] = {v.name: v for v in VARIABLES}
SECRET_NAMES: frozenset[str] = frozenset(v.name for v in VARIABLES if v.secret)
MIN_CREDENTIAL_LENGTH = 8  # a secret shorter than this is refused (MinIO's own minimum)
SUBSTITUTABLE_NAMES: frozenset[str] = frozenset(v.name for v in VARIABLES if v.substitutable)


def nearest_variable(name: str, names: Collection[str] = BY_NAME) -> str | None:
    """The variable of `names` that `name` is most likely a typo of (None when `name` is one
    of them or near none): `POSTGRES_PASWORD` -> `POSTGRES_PASSWORD`, `Ingress_Host` ->
    `INGRESS_HOST`."""
    if name in names:
        return None
    close = difflib.get_close_matches(name.upper(), sorted(names), n=1, cutoff=0.8)
    return close[0] if close else None
