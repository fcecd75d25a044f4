"""What the management commands share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError
from pymongo.errors import PyMongoError

from . import mongo

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
    """A database failure ends the command with one clear line instead of a traceback."""
    try:
        yield
    except PyMongoError as exc:
        raise CommandError(
            f"{doing} failed: MongoDB did not answer as expected ({type(exc).__name__}). "
            "Is it running, and is MONGO_URI right?"
        ) from exc
