"""The stored shadow-replay reports (modelops/replay.py makes them), newest first per candidate version."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection

from core import index_sync
from core.mongo import get_database

REPLAYS = "replays"
INDEXES = [IndexModel([("version", ASCENDING), ("created", DESCENDING)], name="version")]


class ReplayReports(index_sync.OwnIndexes):
    """Stored replay reports, newest first per candidate version."""

    indexes = INDEXES

    def __init__(self, collection: Collection):
        self.collection = collection

    def save(self, report: dict[str, Any]) -> dict[str, Any]:
        self.collection.insert_one(report)
        return report

    def for_version(self, version: int, *, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.collection.find({"version": version}).sort("created", DESCENDING).limit(limit))

    def latest(self, *, limit: int = 5) -> list[dict[str, Any]]:
        return list(self.collection.find().sort("created", DESCENDING).limit(limit))


def replay_reports() -> ReplayReports:
    return ReplayReports(get_database()[REPLAYS])
