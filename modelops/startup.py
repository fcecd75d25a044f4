"""What a server process does once at start (called from wsgi.py / asgi.py, not on import)."""

from __future__ import annotations

import sys

from core import mongo
from core.api_keys import api_key_create
from ml.services import STARTUP, ensure_default_model
from modelops.indexes import ensure_at_start

RUN_KEY_NAME = "embedded-admin"
RUN_KEY_NOTICE = (
    "This run's admin API key: sign in with it at /inspect/, or send it as 'Authorization: Api-Key <key>' "
    "to /audit and to activate, replay or train models. It ends when the server stops."
)


def on_server_start() -> None:
    if mongo.is_embedded():
        mongo.log_embedded_warning()
        # The embedded store lives in this process, so no other process can index it, train a model
        # into it or create a key in it: all of that happens here.
        mongo.serve_embedded_store()
        ensure_at_start(defer=False)  # nothing else can build them; a failure is logged, the server starts
        ensure_default_model()
        print_run_admin_key()


def print_run_admin_key() -> None:
    """Create an admin key in the embedded store and print it once, as a notebook server prints its token.

    It goes to standard output, not through logging: the service logs to standard error, so the key is
    in no log line or log collector. Only its hash is stored; the audit trail records its creation.
    """
    key = api_key_create(name=RUN_KEY_NAME, scope="admin", actor=STARTUP)
    sys.stdout.write(f"{RUN_KEY_NOTICE}\n    {key}\n")
    sys.stdout.flush()
