"""The Celery application `paperless`, as Paperless-ngx names it (`celery --app paperless`)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperless.settings")

app = Celery("paperless")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _worker_needs_services(**_: object) -> None:
    from .startup import require_services

    require_services("worker")


@signals.beat_init.connect
def _beat_needs_services(**_: object) -> None:
    from .startup import require_services

    require_services("scheduler")
