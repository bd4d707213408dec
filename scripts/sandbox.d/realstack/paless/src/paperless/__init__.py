"""The Paless stand-in: a Django project shaped like Paperless-ngx's `paperless`."""

from .celery import app as celery_app

__all__ = ("celery_app",)
