"""One table of Paperless' shape: a document row per upload, filled in by the worker."""

from django.db import models


class Document(models.Model):
    """An uploaded original under the media root; `status` moves queued -> consumed."""

    title = models.CharField(max_length=128)
    original_filename = models.CharField(max_length=1024)
    storage_path = models.CharField(max_length=1024, help_text="relative to PAPERLESS_MEDIA_ROOT")
    size = models.BigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, default="queued")
    task_id = models.CharField(max_length=64, blank=True, default="")
    consumed_by = models.CharField(max_length=255, blank=True, default="")
    added = models.DateTimeField(auto_now_add=True)
    consumed = models.DateTimeField(null=True, blank=True)

    def as_json(self) -> dict:
        return {
            "id": self.pk, "title": self.title, "original_file_name": self.original_filename,
            "storage_path": self.storage_path, "size": self.size, "checksum": self.checksum,
            "status": self.status, "task_id": self.task_id, "consumed_by": self.consumed_by,
            "added": self.added.isoformat(), "consumed": self.consumed.isoformat() if self.consumed else None,
        }
