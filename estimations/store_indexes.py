"""The estimations collection's indexes: kept in line with the store's table (core/index_sync.py), and
the retention (TTL) index, whose expiry follows ESTIMATION_TTL_DAYS."""

from __future__ import annotations

import logging
from typing import Any

import pymongo
from pymongo import ASCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from core import index_sync
from estimations.documents import EXPIRES_FROM, LEGACY_MARKETPLACE, compute_etag

logger = logging.getLogger(__name__)

TTL_INDEX = "retention"
UNAUTHORIZED = 13
BACKFILL_BATCH = 1000


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


def ensure(collection: Collection, indexes: list[IndexModel], *, ttl_days: int) -> list[str]:
    """Idempotent, and resolves conflicts (core/index_sync.py): a changed index is rebuilt, an
    equivalent one under another name adopted. With ``ttl_days``, the retention (TTL) index too;
    without, any retention index is dropped. Then the marketplace backfill (backfill_marketplace)."""
    names = index_sync.ensure(collection, indexes)
    retention = ensure_retention(collection, ttl_days)
    backfill_marketplace(collection)  # last: the indexes are in place even if it runs out of time
    return [*names, retention] if retention else names


def differences(collection: Collection, indexes: list[IndexModel], *, ttl_days: int) -> list[str]:
    """What ``ensure`` would change, one line each ("rank: missing"); empty: nothing."""
    found = index_sync.described(collection, indexes)
    existing = retention_index(collection)
    where = f"{collection.name}.{TTL_INDEX}"
    if ttl_days > 0 and existing is None:
        found.append(f"{where}: missing")
    elif ttl_days > 0 and existing and existing[1].get("expireAfterSeconds") != ttl_days * 86_400:
        found.append(
            f"{where}: differs (expireAfterSeconds {existing[1].get('expireAfterSeconds')} -> {ttl_days * 86_400})"
        )
    elif ttl_days <= 0 and existing:
        found.append(f"{where}: differs (a TTL index, {existing[0]}, with ESTIMATION_TTL_DAYS=0)")
    return found


def retention_index(collection: Collection) -> tuple[str, dict[str, Any]] | None:
    """The TTL index on ``_expires_from`` (found by its key: servers may name indexes their own way)."""
    for name, info in collection.index_information().items():
        if [tuple(part) for part in info["key"]] == [(EXPIRES_FROM, ASCENDING)]:
            return name, info
    return None


def ensure_retention(collection: Collection, ttl_days: int) -> str | None:
    """Make the TTL index match ``ttl_days`` (0: none): created, its expiry changed in place
    (collMod, no rebuild), or dropped. Returns the index's name, or None when there is none.

    collMod needs the dbAdmin role (readWrite lacks it): refused, the index keeps its expiry and
    ``RetentionNotChanged`` says what to grant."""
    existing = retention_index(collection)
    if ttl_days <= 0:
        if existing:
            collection.drop_index(existing[0])
            logger.info("retention off: dropped the TTL index %s", existing[0])
        return None
    seconds = ttl_days * 86_400
    if existing is None:
        model = IndexModel([(EXPIRES_FROM, ASCENDING)], name=TTL_INDEX, expireAfterSeconds=seconds)
        return index_sync.ensure(collection, [model])[0]
    name, info = existing
    if info.get("expireAfterSeconds") != seconds:
        command = {"collMod": collection.name, "index": {"name": name, "expireAfterSeconds": seconds}}
        try:
            with pymongo.timeout(index_sync.timeout_seconds()):
                collection.database.command(command)
        except OperationFailure as exc:
            if exc.code != UNAUTHORIZED:
                raise
            raise RetentionNotChanged(collection, name, info.get("expireAfterSeconds"), ttl_days) from exc
        logger.info("retention changed to %d days on the TTL index %s", ttl_days, name)
    return name


def backfill_marketplace(collection: Collection, *, batch: int = BACKFILL_BATCH) -> int:
    """Give estimations stored before there were marketplaces ``marketplace: "us"`` (and the etag of what
    they now show), so filters and answers agree. Idempotent; each update is conditional on the document
    still lacking the field, so two hosts running it at once write each document once. Returns the count."""
    done = 0
    with pymongo.timeout(index_sync.timeout_seconds()):
        while documents := list(collection.find(LACKS_MARKETPLACE).limit(batch)):
            for condition, change in backfill_updates(documents):
                done += collection.update_one(condition, change).modified_count
    if done:
        logger.info("marketplace %s given to %d estimations stored before marketplaces", LEGACY_MARKETPLACE, done)
    return done


LACKS_MARKETPLACE = {"marketplace": {"$exists": False}}


def backfill_updates(documents: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each document's (filter, update), conditional on it still lacking a marketplace."""
    updates = []
    for document in documents:
        change = {"marketplace": LEGACY_MARKETPLACE}
        change["_etag"] = compute_etag({**document, **change})
        updates.append(({"_id": document["_id"], **LACKS_MARKETPLACE}, {"$set": change}))
    return updates
