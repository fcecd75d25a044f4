"""What the management commands share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from core import mongo

MSG_NO_STORE_HERE = (
    "MONGO_URI is not set: the embedded store lives inside the running server (make run), and this command, "
    "a process of its own, cannot reach it, so nothing was {done}. {instead} Or set MONGO_URI=mongodb://HOST/DB "
    "(in .env or the environment) to share MongoDB between the server and the commands."
)
WITH_THE_KEY = "with the admin key the server printed when it started (Authorization: Api-Key <key>)"


def require_the_servers_store(done: str, instead: str) -> None:
    """Stop, saying why and what to do instead, when what the command would read or write is not the
    store a server serves: the embedded default, from a command run beside the server. It never reports
    a success that no server would see."""
    if mongo.is_embedded() and not mongo.serves_embedded_store():
        raise CommandError(MSG_NO_STORE_HERE.format(done=done, instead=instead))


@contextmanager
def database_errors_as_command_errors(doing: str) -> Iterator[None]:
    """A database failure ends the command with one line saying what the server said (or that it could not
    be reached, and where), instead of a traceback. No credentials are shown."""
    try:
        yield
    except PyMongoError as exc:
        raise CommandError(f"{doing} failed: {describe_database_error(exc)}") from exc


def describe_database_error(exc: PyMongoError) -> str:
    if isinstance(exc, OperationFailure):
        return f"MongoDB refused it: {server_message(exc)}."
    if isinstance(exc, ServerSelectionTimeoutError):
        return (
            f"cannot reach MongoDB at {mongo_hosts()} (waited {settings.MONGO_SERVER_SELECTION_TIMEOUT_MS} ms, "
            f"MONGO_SERVER_SELECTION_TIMEOUT_MS; {type(exc).__name__}). Is it running, and is MONGO_URI right?"
        )
    if isinstance(exc, ConnectionFailure):
        return (
            f"lost the connection to MongoDB at {mongo_hosts()} ({type(exc).__name__}: {exc}). Check that it is "
            "up, then run the command again."
        )
    return f"MongoDB did not answer as expected ({type(exc).__name__}). Is it running, and is MONGO_URI right?"


def server_message(exc: OperationFailure) -> str:
    """The server's own code and errmsg: of the first write error of a bulk write, else of the command."""
    details: Any = exc.details or {}
    if isinstance(exc, BulkWriteError):
        first = (details.get("writeErrors") or details.get("writeConcernErrors") or [{}])[0]
        code, message = first.get("code"), first.get("errmsg")
        count = len(details.get("writeErrors") or [])
        more = f" (and {count - 1} more write errors)" if count > 1 else ""
    else:
        code, message, more = exc.code, details.get("errmsg"), ""
    name = details.get("codeName") if not isinstance(exc, BulkWriteError) else None
    label = f"code {code}" + (f" {name}" if name else "") if code is not None else "no code"
    return f"{message or exc}{more} ({label})"


def mongo_hosts() -> str:
    """The hosts of MONGO_URI, without user or password (split as PyMongo splits it: the hosts run to the
    first '/', after the last '@')."""
    hosts = settings.MONGO_URI.partition("://")[2].partition("/")[0].rpartition("@")[2].partition("?")[0]
    return hosts or "(no host in MONGO_URI)"
