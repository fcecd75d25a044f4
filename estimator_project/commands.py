"""What the management commands share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError
from pymongo.errors import PyMongoError


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
