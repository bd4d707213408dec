"""Django settings of the Paless stand-in, read from the PAPERLESS_* variables.

The names, defaults and meanings are Paperless-ngx's own (src/paperless/settings.py
there), for the variables the Paless manifests set; everything else is left out.
"""

import os
from pathlib import Path
from urllib.parse import urlparse


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else default


BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PAPERLESS_DATA_DIR", BASE_DIR.parent / "data"))
MEDIA_ROOT = Path(os.environ.get("PAPERLESS_MEDIA_ROOT", BASE_DIR.parent / "media"))
ORIGINALS_DIR = MEDIA_ROOT / "documents" / "originals"
CONSUMPTION_DIR = Path(os.environ.get("PAPERLESS_CONSUMPTION_DIR", BASE_DIR.parent / "consume"))
SCRATCH_DIR = Path(os.environ.get("PAPERLESS_SCRATCH_DIR", "/tmp/paperless"))
STATIC_ROOT = os.environ.get("PAPERLESS_STATICDIR", str(BASE_DIR.parent / "static"))
STATIC_URL = "/static/"

# Paperless refuses to start without a secret key in production; its default is public.
SECRET_KEY = os.environ.get("PAPERLESS_SECRET_KEY", "e11fl1oa-*ytql8p)(06fbj4ukrlo+n7k&q5+$1md7i+mge=ee")
DEBUG = os.environ.get("PAPERLESS_DEBUG", "false").lower() in ("1", "true", "yes")

PAPERLESS_URL = os.environ.get("PAPERLESS_URL")
ALLOWED_HOSTS = _env_list("PAPERLESS_ALLOWED_HOSTS", ["*"])
if PAPERLESS_URL and ALLOWED_HOSTS != ["*"]:
    # as Paperless does: the URL's host is always allowed
    ALLOWED_HOSTS.append(urlparse(PAPERLESS_URL).hostname or "")
CSRF_TRUSTED_ORIGINS = [PAPERLESS_URL] if PAPERLESS_URL else []

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "documents",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "paperless.urls"
ASGI_APPLICATION = "paperless.asgi.application"
LOGIN_URL = "/accounts/login/"
TEMPLATES: list[dict] = []
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = os.environ.get("PAPERLESS_TIME_ZONE", "UTC")
DATA_UPLOAD_MAX_MEMORY_SIZE = 100 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(SCRATCH_DIR) if SCRATCH_DIR.is_dir() else None


def _database() -> dict:
    engine = os.environ.get("PAPERLESS_DBENGINE", "postgresql" if os.environ.get("PAPERLESS_DBHOST") else "sqlite")
    if engine == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "db.sqlite3")}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PAPERLESS_DBHOST", "localhost"),
        "PORT": os.environ.get("PAPERLESS_DBPORT", "5432"),
        "NAME": os.environ.get("PAPERLESS_DBNAME", "paperless"),
        "USER": os.environ.get("PAPERLESS_DBUSER", "paperless"),
        "PASSWORD": os.environ.get("PAPERLESS_DBPASS", "paperless"),
        "OPTIONS": {"connect_timeout": int(os.environ.get("PAPERLESS_DB_TIMEOUT", "10"))},
    }


DATABASES = {"default": _database()}

REDIS_URL = os.environ.get("PAPERLESS_REDIS", "redis://localhost:6379")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_CONCURRENCY = int(os.environ.get("PAPERLESS_TASK_WORKERS", "1"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("PAPERLESS_WORKER_TIMEOUT", "1800"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule.db")
CELERY_BEAT_SCHEDULE = {
    # Paless fans periodic work out per tenant in batches (CELERY_TENANT_BATCH_*)
    "tenant-maintenance": {
        "task": "documents.tasks.tenant_maintenance",
        "schedule": float(os.environ.get("CELERY_TENANT_BATCH_DELAY", "60") or 60),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[{asctime}] [{levelname}] [{name}] {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
