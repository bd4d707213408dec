"""ASGI entry point (`paperless.asgi:application`), served by the granian stand-in."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperless.settings")

application = get_asgi_application()
