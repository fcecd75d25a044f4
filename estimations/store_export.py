"""The export's read: every estimation a query matches, in its sort, in batches, resumed after a failed
batch from the last document given, and cut short (``ExportIncomplete``) where it cannot go on."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import ExecutionTimeout, OperationFailure, PyMongoError

from estimations.keyset import with_keyset
from estimations.list_query import ListQuery
from estimations.store_failures import refused

logger = logging.getLogger(__name__)

# How long an export waits before reading a failed batch again (a replica set elects a new primary
# within about 12 s): one resume after each.
EXPORT_RESUME_DELAYS = (1.0, 2.0, 4.0)


class ExportIncomplete(Exception):
    """An export cannot go on (a batch failed past its resumes, its row or time bound). Raised while the
    answer streams: the server then closes the connection without the chunked body's last chunk, so the
    client sees a truncated transfer, not a complete CSV. Not an OSError, which gunicorn would hide."""


def export(
    reads: Collection,
    query: ListQuery,
    *,
    batch_size: int = 1000,
    max_rows: int | None = None,
    max_time_ms: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every document the filter matches, in the query's sort, fetched ``batch_size`` at a time.

    The first batch is read here, so a query the database refuses is an error before anything is
    sent; the rest is read as the caller iterates. ``max_time_ms`` bounds the database time of the
    whole export (maxTimeMS is cumulative over a cursor's batches; a resumed cursor gets what is left,
    as waited for here). A batch that fails after the first (a failover, a lost cursor) is read again
    from after the last document given, EXPORT_RESUME_DELAYS times at most; then, as when the export
    would pass ``max_rows`` or runs out of time, ExportIncomplete is raised, so the streamed answer is
    cut short where the client can tell (docs/api.md).
    """
    started = time.monotonic()
    cursor = _cursor(reads, query, None, batch_size, max_rows, max_time_ms)
    try:
        first = next(cursor, None)
    except ExecutionTimeout:
        raise
    except OperationFailure as exc:
        raise refused(exc) from exc
    if first is None:
        return iter(())
    waited = time.monotonic() - started
    return _rest(reads, query, cursor, first, waited, batch_size, max_rows, max_time_ms)


def _cursor(
    reads: Collection,
    query: ListQuery,
    after: dict[str, Any] | None,
    batch_size: int,
    rows_left: int | None,
    time_left_ms: int | None,
) -> Any:
    where = query.filter
    if after is not None:
        where = with_keyset(where, query.sort, tuple(after.get(field) for field, _ in query.sort))
    cursor = reads.find(where).sort(query.sort).batch_size(batch_size)
    if rows_left is not None:
        cursor = cursor.limit(rows_left + 1)  # one more: an export past the bound is cut, not silent
    if time_left_ms is not None:
        cursor = cursor.max_time_ms(max(1, time_left_ms))
    return cursor


def _rest(
    reads: Collection,
    query: ListQuery,
    cursor: Any,
    first: dict[str, Any],
    waited: float,
    batch_size: int,
    max_rows: int | None,
    max_time_ms: int | None,
) -> Iterator[dict[str, Any]]:
    last, sent, failures = first, 1, 0
    yield first
    while True:
        if max_time_ms is not None and waited * 1000 >= max_time_ms:
            raise ExportIncomplete(f"out of its {max_time_ms} ms of database time after {sent} rows")
        began = time.monotonic()
        try:
            document = next(cursor)
        except StopIteration:
            return
        except ExecutionTimeout as exc:
            raise ExportIncomplete(f"out of its {max_time_ms} ms of database time after {sent} rows") from exc
        except PyMongoError as exc:
            waited += time.monotonic() - began
            if failures >= len(EXPORT_RESUME_DELAYS):
                raise ExportIncomplete(f"a batch failed {failures + 1} times after {sent} rows") from exc
            logger.warning(
                "export: a batch failed after %d rows (%s); resuming after the last row sent",
                sent,
                type(exc).__name__,
            )
            with contextlib.suppress(PyMongoError):
                cursor.close()
            time.sleep(EXPORT_RESUME_DELAYS[failures])
            failures += 1
            rows_left = None if max_rows is None else max_rows - sent
            time_left = None if max_time_ms is None else max_time_ms - int(waited * 1000)
            cursor = _cursor(reads, query, last, batch_size, rows_left, time_left)
            continue
        waited += time.monotonic() - began
        if max_rows is not None and sent >= max_rows:
            raise ExportIncomplete(f"more than its {max_rows} rows")
        yield document
        last, sent = document, sent + 1
