"""What a server process does once at start (called from wsgi.py / asgi.py, not on import)."""

from __future__ import annotations

from estimator_project import mongo
from estimator_project.indexes import ensure_all_indexes
from ml.services import ensure_default_model


def on_server_start() -> None:
    if mongo.is_embedded():
        mongo.log_embedded_warning()
        # The embedded store lives in this process, so no other process can have indexed it or
        # trained a model into it: both happen here.
        ensure_all_indexes()
        ensure_default_model()
