"""The audit trail: who did what to the service, and when.

More: docs/architecture.md, "core/audit.py".
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection

from core import index_sync
from core.mongo import get_database

logger = logging.getLogger(__name__)

COLLECTION = "audit"
MODEL_TRAIN = "model.train"
MODEL_ACTIVATE = "model.activate"
MODEL_ROLLBACK = "model.rollback"
MODEL_REPLAY = "model.replay"
KEY_CREATE = "api_key.create"
KEY_REVOKE = "api_key.revoke"
ACTIONS = (MODEL_TRAIN, MODEL_ACTIVATE, MODEL_ROLLBACK, MODEL_REPLAY, KEY_CREATE, KEY_REVOKE)


@dataclass(frozen=True)
class Actor:
    """Who did it: an API key's name (``via="api"``) or an operating system user (``via="command"``)."""

    name: str
    via: str

    def as_document(self) -> dict[str, str]:
        return {"name": self.name, "via": self.via}


def command_actor() -> Actor:
    """The user running a management command (a container may have no name for its user id)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return Actor(name=name, via="command")


def api_actor(client: Any) -> Actor:
    """The API key behind a request (DRF's request.user, an ApiClient)."""
    return Actor(name=getattr(client, "name", None) or "anonymous", via="api")


# Newest first, _id breaking ties so pages stay stable; per action too.
INDEXES = [
    IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="at"),
    IndexModel([("action", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name="action_at"),
]


class AuditLog(index_sync.OwnIndexes):
    indexes = INDEXES

    def __init__(self, collection: Collection):
        self.collection = collection

    def record(
        self, action: str, actor: Actor, target: dict[str, Any], details: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        entry = {
            "at": datetime.now(UTC),
            "action": action,
            "actor": actor.as_document(),
            "target": target,
            "details": details or {},
        }
        self.collection.insert_one(entry)
        logger.info("audit: %s by %s (%s) on %s", action, actor.name, actor.via, target)
        return entry

    def find(self, *, action: str | None, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        query = {"action": action} if action else {}
        cursor = self.collection.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).skip(skip).limit(limit)
        entries = list(cursor)
        total = self.collection.count_documents(query) if query else self.collection.estimated_document_count()
        return entries, total


def audit_log() -> AuditLog:
    return AuditLog(get_database()[COLLECTION])
