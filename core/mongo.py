"""One MongoDB client per process, created on first use.

More: docs/architecture.md, "core/mongo.py".
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.read_preferences import _ServerMode, make_read_preference, read_pref_mode_from_name
from pymongo.topology_description import TopologyDescription
from pymongo.uri_parser import parse_uri

logger = logging.getLogger(__name__)

EMBEDDED_STORE_WARNING = (
    "MONGO_URI is not set: using the embedded in-memory store. Data is kept in memory only and is "
    "lost when the process stops. Set MONGO_URI=mongodb://HOST/DB to use MongoDB."
)

_lock = threading.Lock()
_client: Any = None
_client_uri: str | None = None
_serving_embedded = False


def is_embedded() -> bool:
    return not settings.MONGO_URI


def serve_embedded_store() -> None:
    """Say that this process serves requests from its embedded store: the server, once at start
    (modelops/startup.py); the tests, whose API client serves from the test's own process."""
    global _serving_embedded
    _serving_embedded = True


def serves_embedded_store() -> bool:
    """Whether this process's embedded store is the one requests are served from. Not in a management
    command run on its own (``manage.py ...``): what it reads or writes there, no server ever sees."""
    return _serving_embedded


def _new_client(uri: str) -> Any:
    if not uri:
        import mongomock  # only needed for the embedded store
        from mongomock.gridfs import enable_gridfs_integration

        enable_gridfs_integration()
        client: Any = mongomock.MongoClient(tz_aware=True)
        # PyMongo's GridFS reads client.options.timeout, which mongomock does not provide.
        client.options = SimpleNamespace(timeout=None)
        return client
    concern = settings.MONGO_WRITE_CONCERN
    return MongoClient(
        uri,
        connect=False,
        tz_aware=True,
        appname="sales-estimator",
        serverSelectionTimeoutMS=settings.MONGO_SERVER_SELECTION_TIMEOUT_MS,
        # A hung server holds nothing for long: no connection attempt, no network wait and no wait for
        # the other members without an end. A request's own total is MONGO_TIMEOUT_MS (deadlines.py).
        connectTimeoutMS=settings.MONGO_CONNECT_TIMEOUT_MS,
        socketTimeoutMS=settings.MONGO_SOCKET_TIMEOUT_MS,
        wtimeoutMS=settings.MONGO_WTIMEOUT_MS,
        w=int(concern) if concern.isdigit() else concern,
        # Every read is from the primary but those that ask for MONGO_READ_PREFERENCE (reads_preference).
        readPreference="primary",
    )


def reads_preference() -> _ServerMode:
    """The read preference of the reads that may be served by a secondary: GET one, the list (and its
    count) and the CSV export (settings.MONGO_READ_PREFERENCE, MONGO_MAX_STALENESS_SECONDS)."""
    return _reads_preference(settings.MONGO_READ_PREFERENCE, settings.MONGO_MAX_STALENESS_SECONDS)


@functools.lru_cache(maxsize=8)
def _reads_preference(mode: str, max_staleness_seconds: int) -> _ServerMode:
    return make_read_preference(read_pref_mode_from_name(mode), None, max_staleness_seconds or -1)


def no_primary_for_now(client: Any) -> bool:
    """Whether ``client`` knows a replica set between two primaries (an election): no member takes a
    write, yet members the reads may use (MONGO_READ_PREFERENCE) answer. Read from what PyMongo's
    monitors already know, so it costs no round trip; False when nothing is known yet (a new client, or a
    database that is gone) and for the embedded store, which has no topology."""
    description = client.topology_description if isinstance(client, MongoClient) else None
    if not isinstance(description, TopologyDescription):
        return False
    return not description.has_writable_server() and description.has_readable_server(reads_preference())


def get_client() -> Any:
    """The process's client for settings.MONGO_URI (re-created if the setting changed)."""
    global _client, _client_uri
    uri = settings.MONGO_URI
    client = _client
    if client is not None and _client_uri == uri:
        return client
    with _lock:
        if _client is None or _client_uri != uri:
            if _client is not None:
                _client.close()
            _client = _new_client(uri)
            _client_uri = uri
        return _client


def database_name() -> str:
    return _database_name(settings.MONGO_URI, settings.MONGO_DB_NAME)


@functools.lru_cache(maxsize=8)
def _database_name(uri: str, name: str) -> str:
    # The URI is parsed once per (URI, name), not on every request.
    if name:
        return name
    if uri:
        parsed = parse_uri(uri).get("database")
        if parsed:
            return parsed
    return settings.MONGO_DEFAULT_DB_NAME


def get_database() -> Database:
    return get_client()[database_name()]


def reset() -> None:
    """Forget the process's client (tests, and a forked child), and with it that its store was served."""
    global _client, _client_uri, _serving_embedded
    _client = None
    _client_uri = None
    _serving_embedded = False


def _after_fork_in_child() -> None:
    # The parent's client (if any) must not be used in the child: its sockets are shared.
    # mongomock has no sockets, so the embedded store is kept: it is the child's only copy of data.
    if _client is not None and _client_uri:
        reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


def log_embedded_warning() -> None:
    if is_embedded():
        logger.warning(EMBEDDED_STORE_WARNING)
