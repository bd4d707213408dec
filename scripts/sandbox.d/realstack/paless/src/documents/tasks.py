"""Celery tasks: consume an uploaded original, and the scheduler's periodic fan-out."""

import hashlib
import logging
import socket
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import Document

log = logging.getLogger("paperless.tasks")


@shared_task(bind=True, autoretry_for=(FileNotFoundError,), retry_backoff=2, retry_backoff_max=30,
             max_retries=40)
def consume_file(self, document_id: int) -> str:
    """Read the original through this worker's own view of the media root, record its checksum.

    The web pod wrote it through its rclone mount; this worker's mount may list it only
    after rclone's directory cache expires, hence the retries on FileNotFoundError.
    """
    doc = Document.objects.get(pk=document_id)
    path = Path(settings.MEDIA_ROOT) / doc.storage_path
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    doc.checksum = digest.hexdigest()
    doc.status = "consumed"
    doc.consumed = timezone.now()
    doc.consumed_by = socket.gethostname()
    doc.save(update_fields=["checksum", "status", "consumed", "consumed_by"])
    log.info("consumed document %s (%s, %d bytes, sha256 %s)", doc.pk, doc.storage_path, doc.size, doc.checksum)
    return doc.checksum


@shared_task
def tenant_maintenance() -> int:
    """The scheduler's periodic task: counts the documents (one query, as a health signal)."""
    count = Document.objects.count()
    log.info("tenant maintenance: %d documents", count)
    return count
