"""WSGI entry point (gunicorn estimator_project.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estimator_project.settings")

# A request body that stops coming answers 408 (core/deadlines.py).
from core.deadlines import ClientBodyDeadline  # noqa: E402

application = ClientBodyDeadline(get_wsgi_application())

# Runs once per server process, after Django is set up: warns about an in-memory store.
from modelops.startup import on_server_start  # noqa: E402

on_server_start()
