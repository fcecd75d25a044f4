"""What a failed database operation of the estimations store answers: a read, a conditional write, or a
query the database refused for its shape (the client's 400) or for its own reasons (a 503)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from pymongo.errors import OperationFailure, PyMongoError, WriteError
from rest_framework.exceptions import APIException

from core.errors import (
    MSG_DATABASE_REFUSED,
    MSG_DATABASE_UNAVAILABLE,
    MSG_QUERY_REFUSED,
    NOT_SENT,
    BadQuery,
    ServiceUnavailable,
    database_failure,
)
from core.runtime.group_insert import NotSent

logger = logging.getLogger(__name__)

# Never sent to a server (none selected, no connection free, or still queued behind another insert).
NEVER_SENT = (NotSent, *NOT_SENT)


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """A read: whatever its failure, nothing was changed (a 503 that says so)."""
    try:
        yield
    except PyMongoError as exc:
        logger.warning("a read failed: %s code=%s", type(exc).__name__, getattr(exc, "code", None))
        raise database_failure(exc, write=False) from exc


@contextlib.contextmanager
def writing(unknown: str) -> Iterator[None]:
    """One conditional write (a replace or a delete), whose failure answers 503 with what is known: not
    sent, or refused by the server (nothing was changed), or else ``unknown``: sent and not confirmed (a
    timeout, a broken connection, a write concern not met, a node stepping down), so it may have been
    applied. Such writes are not undone; the message tells the client how to check, and how to retry."""
    try:
        yield
    except NEVER_SENT as exc:
        raise ServiceUnavailable(MSG_DATABASE_UNAVAILABLE) from exc
    except WriteError as exc:  # the server's own "not applied" for this document (DuplicateKeyError too)
        logger.warning("a write was refused: code=%s", exc.code)
        raise ServiceUnavailable(MSG_DATABASE_REFUSED) from exc
    except PyMongoError as exc:
        logger.warning("a write's outcome is unknown: %s code=%s", type(exc).__name__, getattr(exc, "code", None))
        raise ServiceUnavailable(unknown) from exc


# Codes of a query the database refused for its shape: the client's to change, so a 400. Any other code
# is the server's doing, or unknown, so a 503: Unauthorized (13), CursorNotFound (43), QueryPlanKilled
# (175), Interrupted (11601), InterruptedAtShutdown (11600), InterruptedDueToReplStateChange (11602), the
# not-primary codes (10107, 13435, 13436, 189, 91), a memory limit (292), none at all.
QUERY_SHAPE_CODES = frozenset(
    {
        2,  # BadValue: an unknown operator, an operator given the wrong kind of argument
        9,  # FailedToParse
        14,  # TypeMismatch
        31253,  # inclusion in an exclusion projection
        31254,  # exclusion in an inclusion projection
        51091,  # an invalid regular expression
        51108,  # invalid regular expression options
    }
)


def refused(exc: OperationFailure) -> APIException:
    """A query of ``where`` and ``sort`` that failed on the server: the client's (400) only by its code."""
    if exc.code in QUERY_SHAPE_CODES:
        logger.info("query refused by the database: code=%s", exc.code)
        return BadQuery("where", MSG_QUERY_REFUSED)
    logger.warning("the database failed a query: code=%s", exc.code)
    return database_failure(exc, write=False)
