"""The documents app: what was uploaded, and what the worker made of it."""

from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    default_auto_field = "django.db.models.AutoField"
