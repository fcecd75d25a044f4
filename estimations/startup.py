"""What a server process does once at start (called from wsgi.py / asgi.py, not on import)."""

from __future__ import annotations

import gc

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


def freeze_startup_objects() -> None:
    """Move every object made while starting (Django, DRF, PyMongo, the model code: about 150,000) out of
    the garbage collector's reach. They live as long as the process, yet each full collection walked them
    all: a pause of tens of milliseconds in the middle of a worker's requests (the p99 of GET one in
    `make bench`). A full collection now only walks what requests made."""
    gc.collect()
    gc.freeze()
