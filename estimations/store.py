"""The PyMongo store behind the estimations resource.

A small class handed its collection: it knows MongoDB, not HTTP. Conditional writes put the etag in
the filter, so the check and the write are one atomic operation on the server.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteError,
)
from rest_framework.exceptions import APIException

from core import index_sync
from core.errors import (
    MSG_DATABASE_REFUSED,
    MSG_DATABASE_UNAVAILABLE,
    MSG_DELETE_UNKNOWN,
    MSG_INSERT_PENDING,
    MSG_INSERT_REMOVED,
    MSG_INSERT_UNKNOWN_KEYED,
    MSG_QUERY_REFUSED,
    MSG_UPDATE_UNKNOWN,
    NOT_SENT,
    BadQuery,
    ServiceUnavailable,
    database_failure,
)
from estimations.documents import EXPIRES_FROM
from estimations.group_insert import GroupInsert, NotSent
from estimations.query import ListQuery, with_keyset

logger = logging.getLogger(__name__)

COLLECTION = "estimations"
IDEMPOTENCY_FIELD = "_idempotency_key"
# A digest of the input of the POST that used the key: a retry is checked against it, also after updates.
IDEMPOTENCY_INPUT = "_idempotency_input"
# What stays with a document through every PUT and PATCH, so that a retried POST still finds it.
IDEMPOTENCY_FIELDS = (IDEMPOTENCY_FIELD, IDEMPOTENCY_INPUT)
TTL_INDEX = "retention"

# One index per sortable field, each ending in _id: the API appends _id to every sort as a
# tiebreaker, so these serve every single-field sort (both directions) and the filters on the same
# field without an in-memory sort. "created" also serves the default order (query.DEFAULT_SORT). The
# API accepts exactly the sorts these key patterns (or their reverses) serve: query.sort_plans derives
# them from this table, and a unit test checks every sort the parser accepts against it.
INDEXES = [
    IndexModel([("bestseller_rank", ASCENDING), ("_id", ASCENDING)], name="rank"),
    IndexModel([("estimated_sales", ASCENDING), ("_id", ASCENDING)], name="sales"),
    IndexModel([("category", ASCENDING), ("_id", ASCENDING)], name="category"),
    IndexModel(
        [("category", ASCENDING), ("bestseller_rank", ASCENDING), ("_id", ASCENDING)],
        name="category_rank",
    ),
    # A category's best sellers first (sort=category,-bestseller_rank), and its reverse.
    IndexModel(
        [("category", ASCENDING), ("bestseller_rank", DESCENDING), ("_id", DESCENDING)],
        name="category_rank_desc",
    ),
    IndexModel([("model_version", ASCENDING), ("_id", ASCENDING)], name="model_version"),
    IndexModel([("_created", ASCENDING), ("_id", ASCENDING)], name="created"),
    IndexModel([("_updated", ASCENDING), ("_id", ASCENDING)], name="updated"),
    # Sellers find their products by SKU; most estimations have none, so only those with one are indexed.
    IndexModel([("sku", ASCENDING)], name="sku", partialFilterExpression={"sku": {"$exists": True}}),
    # Live accuracy reads the estimations with actuals, per model version and category.
    IndexModel(
        [("model_version", ASCENDING), ("category", ASCENDING)],
        name="actuals",
        partialFilterExpression={"actual_sales": {"$exists": True}},
    ),
    # One document per Idempotency-Key: a retried POST cannot insert twice, even concurrently.
    IndexModel([(IDEMPOTENCY_FIELD, ASCENDING)], name="idempotency_key", unique=True, sparse=True),
]


UNAUTHORIZED = 13


class RetentionNotChanged(OperationFailure):
    """MongoDB refused the collMod that changes the TTL index's expiry (Unauthorized): the index keeps
    its expiry, and the message says which role changes it."""

    def __init__(self, collection: Collection, name: str, seconds: Any, ttl_days: int):
        kept = f"{seconds // 86_400} days" if isinstance(seconds, int) else f"expireAfterSeconds {seconds!r}"
        database = collection.database.name
        super().__init__(
            f"the TTL index {collection.name}.{name} keeps its expiry of {kept}, not ESTIMATION_TTL_DAYS="
            f"{ttl_days}: MongoDB refused collMod (Unauthorized). Changing a TTL index's expiry needs "
            f"the dbAdmin role on '{database}' (readWrite lacks collMod): grant it, or drop the index "
            f"'{name}' and run python manage.py ensure_indexes, which builds it again with readWrite",
            UNAUTHORIZED,
        )


# How long an export waits before reading a failed batch again (a replica set elects a new primary
# within about 12 s): one resume after each.
EXPORT_RESUME_DELAYS = (1.0, 2.0, 4.0)


class ExportIncomplete(Exception):
    """An export cannot go on (a batch failed past its resumes, its row or time bound). Raised while the
    answer streams: the server then closes the connection without the chunked body's last chunk, so the
    client sees a truncated transfer, not a complete CSV. Not an OSError, which gunicorn would hide."""


class _Unacknowledged:
    """Ids of documents whose insert failed in a way that may still have stored them.

    The client got a 5xx for those, so nothing may stay behind: they are removed as soon as the database
    answers again (at this process's next write). Documents carrying an idempotency key are left to the
    client's retry, which acknowledges them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, set[ObjectId]] = {}

    def remember(self, collection: Collection, ids: list[ObjectId]) -> None:
        with self._lock:
            self._ids.setdefault(collection.full_name, set()).update(ids)

    def sweep(self, collection: Collection) -> bool:
        """Remove the remembered documents; whether none is pending any more."""
        if not self._ids:  # the usual case, on every insert: nothing pending, no lock taken
            return True
        with self._lock:
            ids = self._ids.pop(collection.full_name, None)
        if not ids:
            return True
        try:
            collection.delete_many({"_id": {"$in": list(ids)}, IDEMPOTENCY_FIELD: {"$exists": False}})
            logger.info("removed up to %d documents of writes that failed", len(ids))
        except PyMongoError:
            self.remember(collection, list(ids))  # still down: next time
            return False
        return True


unacknowledged = _Unacknowledged()


# Never sent to a server (none selected, no connection free, or still queued behind another insert).
NEVER_SENT = (NotSent, *NOT_SENT)


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """A read: whatever its failure, nothing was changed (a 503 that says so)."""
    try:
        yield
    except PyMongoError as exc:
        logger.warning("a read failed: %s code=%s", type(exc).__name__, getattr(exc, "code", None))
        raise database_failure(exc, write=False) from exc


@contextlib.contextmanager
def _writing(unknown: str) -> Iterator[None]:
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


class Outcome(enum.Enum):
    DONE = "done"
    NOT_FOUND = "not_found"
    STALE = "stale"


def parse_id(raw: Any) -> ObjectId | None:
    """The ObjectId for a URL id, or None for anything malformed (the view answers 404)."""
    try:
        return ObjectId(raw) if isinstance(raw, str) else None
    except (InvalidId, TypeError):
        return None


class EstimationStore:
    def __init__(
        self,
        collection: Collection,
        *,
        reads: Collection | None = None,
        query_timeout_ms: int = 5000,
        insert_wait_seconds: float | None = None,
    ):
        self.collection = collection
        # What GET one, the list, its count and the export read: the same collection with the read
        # preference that lets a secondary serve them (services.estimation_store). Every other read,
        # a write's own checks included, is on ``collection`` (the primary).
        self.reads = collection if reads is None else reads
        # Bounds the server-side time of any one list query: no filter can scan without limit.
        self.query_timeout_ms = query_timeout_ms
        # Single inserts of concurrent requests share one database command (estimations/group_insert.py).
        # A request waits at most insert_wait_seconds for the write ahead of it.
        self.inserts = GroupInsert(collection, wait_seconds=insert_wait_seconds)

    def ensure_indexes(self, *, ttl_days: int = 0) -> list[str]:
        """Idempotent, and resolves conflicts (core/index_sync.py): a changed index is
        rebuilt, an equivalent one under another name adopted. With ``ttl_days``, the retention (TTL)
        index too; without, any retention index is dropped."""
        names = index_sync.ensure(self.collection, INDEXES)
        retention = self.ensure_retention(ttl_days)
        return [*names, retention] if retention else names

    def index_differences(self, *, ttl_days: int = 0) -> list[str]:
        """What ``ensure_indexes`` would change, one line each ("rank: missing"); empty: nothing."""
        found = [step.describe(self.collection.name) for step in index_sync.check(self.collection, INDEXES)]
        existing = self.retention_index()
        where = f"{self.collection.name}.{TTL_INDEX}"
        if ttl_days > 0 and existing is None:
            found.append(f"{where}: missing")
        elif ttl_days > 0 and existing and existing[1].get("expireAfterSeconds") != ttl_days * 86_400:
            found.append(
                f"{where}: differs (expireAfterSeconds {existing[1].get('expireAfterSeconds')} -> {ttl_days * 86_400})"
            )
        elif ttl_days <= 0 and existing:
            found.append(f"{where}: differs (a TTL index, {existing[0]}, with ESTIMATION_TTL_DAYS=0)")
        return found

    def retention_index(self) -> tuple[str, dict[str, Any]] | None:
        """The TTL index on ``_expires_from`` (found by its key: servers may name indexes their own way)."""
        for name, info in self.collection.index_information().items():
            if [tuple(part) for part in info["key"]] == [(EXPIRES_FROM, ASCENDING)]:
                return name, info
        return None

    def ensure_retention(self, ttl_days: int) -> str | None:
        """Make the TTL index match ``ttl_days`` (0: none): created, its expiry changed in place
        (collMod, no rebuild), or dropped. Returns the index's name, or None when there is none.

        collMod needs the dbAdmin role (readWrite lacks it): refused, the index keeps its expiry and
        ``RetentionNotChanged`` says what to grant."""
        existing = self.retention_index()
        if ttl_days <= 0:
            if existing:
                self.collection.drop_index(existing[0])
                logger.info("retention off: dropped the TTL index %s", existing[0])
            return None
        seconds = ttl_days * 86_400
        if existing is None:
            model = IndexModel([(EXPIRES_FROM, ASCENDING)], name=TTL_INDEX, expireAfterSeconds=seconds)
            return index_sync.ensure(self.collection, [model])[0]
        name, info = existing
        if info.get("expireAfterSeconds") != seconds:
            command = {"collMod": self.collection.name, "index": {"name": name, "expireAfterSeconds": seconds}}
            try:
                with pymongo.timeout(index_sync.timeout_seconds()):
                    self.collection.database.command(command)
            except OperationFailure as exc:
                if exc.code != UNAUTHORIZED:
                    raise
                raise RetentionNotChanged(self.collection, name, info.get("expireAfterSeconds"), ttl_days) from exc
            logger.info("retention changed to %d days on the TTL index %s", ttl_days, name)
        return name

    # --- reads --------------------------------------------------------------------------------

    @_reading()
    def get(self, raw_id: Any, *, from_primary: bool = False) -> dict[str, Any] | None:
        """The stored document; ``from_primary`` for the version a write is about to be conditional on."""
        object_id = parse_id(raw_id)
        if object_id is None:
            return None
        return (self.collection if from_primary else self.reads).find_one({"_id": object_id})

    def find(self, query: ListQuery, *, lookahead: int = 0) -> list[dict[str, Any]]:
        """A page: up to ``max_results`` documents (and ``lookahead`` more, to tell whether a next page
        exists) in the query's sort, after its ``after`` item or skipping its pages, read with the sort
        keys kept whatever the projection (query.ListQuery.shown takes them off)."""
        projection = _with_meta(query.fetched_projection())
        try:
            cursor = (
                self.reads.find(query.range_filter, projection)
                .sort(query.sort)
                .skip(query.skip)
                .limit(query.max_results + lookahead)
                .max_time_ms(self.query_timeout_ms)
            )
            return list(cursor)
        except ExecutionTimeout:
            raise  # the server ran out of time: 503, not the client's fault
        except OperationFailure as exc:
            raise _refused(exc) from exc

    def export(
        self,
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
        cursor = self._export_cursor(query, None, batch_size, max_rows, max_time_ms)
        try:
            first = next(cursor, None)
        except ExecutionTimeout:
            raise
        except OperationFailure as exc:
            raise _refused(exc) from exc
        if first is None:
            return iter(())
        waited = time.monotonic() - started
        return self._export_rest(query, cursor, first, waited, batch_size, max_rows, max_time_ms)

    def _export_cursor(
        self,
        query: ListQuery,
        after: dict[str, Any] | None,
        batch_size: int,
        rows_left: int | None,
        time_left_ms: int | None,
    ) -> Any:
        where = query.filter
        if after is not None:
            where = with_keyset(where, query.sort, tuple(after.get(field) for field, _ in query.sort))
        cursor = self.reads.find(where).sort(query.sort).batch_size(batch_size)
        if rows_left is not None:
            cursor = cursor.limit(rows_left + 1)  # one more: an export past the bound is cut, not silent
        if time_left_ms is not None:
            cursor = cursor.max_time_ms(max(1, time_left_ms))
        return cursor

    def _export_rest(
        self,
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
                cursor = self._export_cursor(query, last, batch_size, rows_left, time_left)
                continue
            waited += time.monotonic() - began
            if max_rows is not None and sent >= max_rows:
                raise ExportIncomplete(f"more than its {max_rows} rows")
            yield document
            last, sent = document, sent + 1

    def count(self, filter_: dict[str, Any]) -> int:
        # An unfiltered count comes from collection metadata: counting every document on each list
        # request would cost time that grows with the collection.
        try:
            if not filter_:
                return self.reads.estimated_document_count()
            return self.reads.count_documents(filter_, maxTimeMS=self.query_timeout_ms)
        except ExecutionTimeout:
            raise  # the server ran out of time: 503, not the client's fault
        except OperationFailure as exc:
            raise _refused(exc) from exc

    # --- writes -------------------------------------------------------------------------------

    def insert(self, document: dict[str, Any]) -> dict[str, Any]:
        document.setdefault("_id", ObjectId())
        try:
            self.inserts.insert(document, before_write=lambda: unacknowledged.sweep(self.collection))
        except DuplicateKeyError:
            raise  # refused: nothing was stored
        except NEVER_SENT as exc:
            raise ServiceUnavailable(MSG_DATABASE_UNAVAILABLE) from exc  # never sent: nothing was stored
        except PyMongoError as exc:
            # The server may have stored it before the connection broke; the client gets a 503.
            if IDEMPOTENCY_FIELD in document:  # left for the retry with the same key, which acknowledges it
                raise ServiceUnavailable(MSG_INSERT_UNKNOWN_KEYED) from exc
            self._compensate(exc, [document["_id"]])
        return document

    def _compensate(self, exc: PyMongoError, ids: list[ObjectId]) -> NoReturn:
        """A write of ``ids`` failed after it may have reached the database: they are removed, now if the
        database answers (within what is left of the request's time), else at this process's next write.
        Raises the 503 that says which."""
        unacknowledged.remember(self.collection, ids)
        removed = unacknowledged.sweep(self.collection)
        raise ServiceUnavailable(MSG_INSERT_REMOVED if removed else MSG_INSERT_PENDING) from exc

    def insert_once(
        self, document: dict[str, Any], key: str, input_digest: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Insert ``document`` under an idempotency key (with the digest of the input it was made from);
        if the key was used, the stored document, as it is now.

        Returns (document, inserted). The unique index decides, so of concurrent retries exactly one
        inserts.
        """
        marks = {IDEMPOTENCY_FIELD: key}
        if input_digest is not None:
            marks[IDEMPOTENCY_INPUT] = input_digest
        try:
            return self.insert({**document, **marks}), True
        except DuplicateKeyError:
            with _reading():  # the key's insert was refused: nothing was stored by this request
                existing = self.collection.find_one({IDEMPOTENCY_FIELD: key})
            if existing is None:
                raise
            return existing, False

    def insert_many(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """All or nothing: if the server fails part-way, the part this call stored is removed again."""
        unacknowledged.sweep(self.collection)
        missing = [document for document in documents if "_id" not in document]
        # Ascending in list order, even where the ids' counter wraps (once in 16.7M): a bulk's documents
        # share one _created, and _id breaks the tie in the default order (query.DEFAULT_SORT).
        generated = sorted(ObjectId() for _ in missing)
        for document, object_id in zip(missing, generated, strict=True):
            document["_id"] = object_id
        try:
            self.collection.insert_many(documents, ordered=True)
        except BulkWriteError as exc:
            # Ordered: exactly the documents before the first refused one were stored.
            stored = [document["_id"] for document in documents[: exc.details.get("nInserted", 0)]]
            if exc.details.get("writeConcernErrors"):
                # Stored, but not confirmed as durable as asked: removed again, as after a lost answer.
                self._compensate(exc, stored)
            self._remove_partial(stored)
            raise
        except NEVER_SENT as exc:
            raise ServiceUnavailable(MSG_DATABASE_UNAVAILABLE) from exc  # never sent
        except PyMongoError as exc:
            # Unknown how far the server got: remove what may be ours, never an id the caller chose.
            if len(generated) < len(documents):
                self._remove_partial(generated)
                raise
            self._compensate(exc, generated)
        return documents

    def _remove_partial(self, ids: list[ObjectId]) -> None:
        if ids:
            unacknowledged.remember(self.collection, ids)
            unacknowledged.sweep(self.collection)

    def replace_if_match(self, document: dict[str, Any], etags: list[str] | None) -> Outcome:
        """Replace the stored version of ``document`` (same ``_id``) if its etag is one of ``etags``.

        The whole document is written, ``_id`` and ``_created`` included, so every field keeps its
        BSON type; None for ``etags`` replaces any version.
        """
        with _writing(MSG_UPDATE_UNKNOWN):
            replaced = self.collection.find_one_and_replace(
                self._conditional(document["_id"], etags), document, projection={"_id": 1}
            )
        return Outcome.DONE if replaced is not None else self._why_not(document["_id"])

    def delete_if_match(self, raw_id: Any, etags: list[str] | None) -> Outcome:
        object_id = parse_id(raw_id)
        if object_id is None:
            return Outcome.NOT_FOUND
        with _writing(MSG_DELETE_UNKNOWN):
            deleted = self.collection.delete_one(self._conditional(object_id, etags)).deleted_count
        if deleted:
            return Outcome.DONE
        return self._why_not(object_id)

    @staticmethod
    def _conditional(object_id: ObjectId, etags: list[str] | None) -> dict[str, Any]:
        if etags is None:
            return {"_id": object_id}
        return {"_id": object_id, "_etag": etags[0] if len(etags) == 1 else {"$in": etags}}

    @_reading()  # the write was not applied: what the read finds, or its failure, changes nothing
    def _why_not(self, object_id: ObjectId) -> Outcome:
        exists = self.collection.find_one({"_id": object_id}, {"_id": 1}) is not None
        return Outcome.STALE if exists else Outcome.NOT_FOUND


def _with_meta(projection: dict[str, int] | None) -> dict[str, int] | None:
    if projection is None:
        return None
    if 1 in projection.values():
        return {**projection, "_created": 1, "_updated": 1, "_etag": 1}
    return projection


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


def _refused(exc: OperationFailure) -> APIException:
    """A query of ``where`` and ``sort`` that failed on the server: the client's (400) only by its code."""
    if exc.code in QUERY_SHAPE_CODES:
        logger.info("query refused by the database: code=%s", exc.code)
        return BadQuery("where", MSG_QUERY_REFUSED)
    logger.warning("the database failed a query: code=%s", exc.code)
    return database_failure(exc, write=False)
