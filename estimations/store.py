"""The PyMongo store behind the estimations resource.

A small class handed its collection: it knows MongoDB, not HTTP. Conditional writes put the etag in
the filter, so the check and the write are one atomic operation on the server.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from bson import ObjectId
from bson.errors import InvalidId
from django.conf import settings
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, ExecutionTimeout, OperationFailure, PyMongoError

from core.errors import (
    MSG_DATABASE_UNAVAILABLE,
    MSG_DELETE_UNKNOWN,
    MSG_INSERT_PENDING,
    MSG_INSERT_REMOVED,
    MSG_INSERT_UNKNOWN_KEYED,
    MSG_UPDATE_UNKNOWN,
    ServiceUnavailable,
)
from core.mongo import database_name, get_client, reads_preference
from core.runtime.group_insert import GroupInsert
from estimations import store_export, store_indexes
from estimations.list_query import ListQuery
from estimations.store_failures import NEVER_SENT, reading, refused, writing

logger = logging.getLogger(__name__)

COLLECTION = "estimations"
IDEMPOTENCY_FIELD = "_idempotency_key"
# A digest of the input of the POST that used the key: a retry is checked against it, also after updates.
IDEMPOTENCY_INPUT = "_idempotency_input"
# What stays with a document through every PUT and PATCH, so that a retried POST still finds it.
IDEMPOTENCY_FIELDS = (IDEMPOTENCY_FIELD, IDEMPOTENCY_INPUT)

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
    IndexModel([("marketplace", ASCENDING), ("_id", ASCENDING)], name="marketplace"),
    # Not partial: a sort on price or revenue reads every estimation (those without one first, as null).
    IndexModel([("price", ASCENDING), ("_id", ASCENDING)], name="price"),
    IndexModel([("estimated_revenue", ASCENDING), ("_id", ASCENDING)], name="revenue"),
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
        # preference that lets a secondary serve them (estimation_store, below). Every other read,
        # a write's own checks included, is on ``collection`` (the primary).
        self.reads = collection if reads is None else reads
        # Bounds the server-side time of any one list query: no filter can scan without limit.
        self.query_timeout_ms = query_timeout_ms
        # Single inserts of concurrent requests share one database command (core/runtime/group_insert.py).
        # A request waits at most insert_wait_seconds for the write ahead of it.
        self.inserts = GroupInsert(collection, wait_seconds=insert_wait_seconds)

    def ensure_indexes(self, *, ttl_days: int = 0) -> list[str]:
        """The indexes of INDEXES, and with ``ttl_days`` the retention (TTL) index (store_indexes.ensure)."""
        return store_indexes.ensure(self.collection, INDEXES, ttl_days=ttl_days)

    def index_differences(self, *, ttl_days: int = 0) -> list[str]:
        """What ``ensure_indexes`` would change, one line each ("rank: missing"); empty: nothing."""
        return store_indexes.differences(self.collection, INDEXES, ttl_days=ttl_days)

    def retention_index(self) -> tuple[str, dict[str, Any]] | None:
        return store_indexes.retention_index(self.collection)

    def ensure_retention(self, ttl_days: int) -> str | None:
        return store_indexes.ensure_retention(self.collection, ttl_days)

    # --- reads --------------------------------------------------------------------------------

    @reading()
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
            raise refused(exc) from exc

    def export(
        self,
        query: ListQuery,
        *,
        batch_size: int = 1000,
        max_rows: int | None = None,
        max_time_ms: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every document the filter matches, in the query's sort, streamed (store_export.export)."""
        return store_export.export(self.reads, query, batch_size=batch_size, max_rows=max_rows, max_time_ms=max_time_ms)

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
            raise refused(exc) from exc

    # --- reads for model operations (live accuracy, replay, inspection), on the primary ---------

    def with_actuals(self, version: int, projection: dict[str, int], *, batch_size: int = 5000) -> Iterable[dict]:
        """Model ``version``'s estimations with recorded actuals (served by the 'actuals' index)."""
        where = {"model_version": version, "actual_sales": {"$exists": True}}
        return self.collection.find(where, projection).batch_size(batch_size)

    def versions_with_actuals(self) -> set[int]:
        """The model versions that made an estimation with recorded actuals."""
        return set(self.collection.distinct("model_version", {"actual_sales": {"$exists": True}}))

    def newest(self, filter_: dict[str, Any], *, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` estimations last created that ``filter_`` matches, newest first."""
        return list(self.collection.find(filter_).sort("_id", DESCENDING).limit(limit))

    def sample(
        self, projection: dict[str, int], size: int | None, *, batch_size: int = 10_000
    ) -> tuple[Iterable[dict[str, Any]], int]:
        """All estimations and how many, or a random ``size`` of them when there are more."""
        total = self.collection.estimated_document_count()
        if size is None or size >= total:
            return self.collection.find({}, projection).batch_size(batch_size), total
        pipeline = [{"$sample": {"size": size}}, {"$project": projection}]
        return self.collection.aggregate(pipeline, allowDiskUse=True, batchSize=batch_size), size

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
            with reading():  # the key's insert was refused: nothing was stored by this request
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
        with writing(MSG_UPDATE_UNKNOWN):
            replaced = self.collection.find_one_and_replace(
                self._conditional(document["_id"], etags), document, projection={"_id": 1}
            )
        return Outcome.DONE if replaced is not None else self._why_not(document["_id"])

    def delete_if_match(self, raw_id: Any, etags: list[str] | None) -> Outcome:
        object_id = parse_id(raw_id)
        if object_id is None:
            return Outcome.NOT_FOUND
        with writing(MSG_DELETE_UNKNOWN):
            deleted = self.collection.delete_one(self._conditional(object_id, etags)).deleted_count
        if deleted:
            return Outcome.DONE
        return self._why_not(object_id)

    @staticmethod
    def _conditional(object_id: ObjectId, etags: list[str] | None) -> dict[str, Any]:
        if etags is None:
            return {"_id": object_id}
        return {"_id": object_id, "_etag": etags[0] if len(etags) == 1 else {"$in": etags}}

    @reading()  # the write was not applied: what the read finds, or its failure, changes nothing
    def _why_not(self, object_id: ObjectId) -> Outcome:
        exists = self.collection.find_one({"_id": object_id}, {"_id": 1}) is not None
        return Outcome.STALE if exists else Outcome.NOT_FOUND


def _with_meta(projection: dict[str, int] | None) -> dict[str, int] | None:
    if projection is None:
        return None
    if 1 in projection.values():
        return {**projection, "_created": 1, "_updated": 1, "_etag": 1}
    return projection


_store: tuple[Any, str, EstimationStore] | None = None


def estimation_store() -> EstimationStore:
    """The store of the process's client and database, made once for each."""
    global _store
    client, database = get_client(), database_name()
    current = _store
    if current is None or current[0] is not client or current[1] != database:
        collection = client[database][COLLECTION]
        # GET one, the list and the export may be served by a secondary (MONGO_READ_PREFERENCE); the rest
        # stays on the client's primary.
        reads = collection.with_options(read_preference=reads_preference())
        wait = settings.MONGO_TIMEOUT_MS / 1000 if settings.MONGO_TIMEOUT_MS > 0 else None
        current = _store = (client, database, EstimationStore(collection, reads=reads, insert_wait_seconds=wait))
    return current[2]
