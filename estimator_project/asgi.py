"""ASGI entry point, for servers that speak ASGI."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estimator_project.settings")

application = get_asgi_application()

from modelops.startup import on_server_start  # noqa: E402

on_server_start()
