"""The store of training jobs: the ``model_jobs`` collection, one document per POST /models, which any
replica reads (ml/jobs.py runs them). A job whose heartbeat is older than ``STALE_SECONDS`` reads as failed."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.collection import Collection

from core.audit import Actor
from core.mongo import get_database

logger = logging.getLogger(__name__)

COLLECTION = "model_jobs"
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
UNFINISHED = (QUEUED, RUNNING)
DONE = "done"  # the last phase of a job that succeeded
STALE_SECONDS = 60.0

MSG_STALE = (
    "The worker running this training stopped (no heartbeat for {seconds:.0f} s): it was restarted, "
    "stopped or killed. No new version was activated by this job; POST the CSV to /models again."
)


def _now() -> datetime:
    return datetime.now(UTC)


def _object_id(job_id: str | ObjectId) -> ObjectId | None:
    try:
        return ObjectId(job_id)
    except (InvalidId, TypeError):
        return None


# One job-store call at a time in this process: the runner's thread writes the job while requests read it,
# and the embedded store (mongomock) is not thread-safe (a replace empties the document before it fills it
# again; a read copies it as it changes). MongoDB needs no lock; the calls are a few a second.
STORE_LOCK = threading.RLock()


class TrainingJobs:
    """The ``model_jobs`` collection: one document per POST /models.

    Every change is a whole-document replace (every field keeps its BSON type), made only if the job
    still has the status and heartbeat it was read with: of a runner's heartbeat and a reader marking
    the job failed for want of one, exactly one wins.
    """

    def __init__(self, collection: Collection, *, stale_seconds: float | None = None):
        self.collection = collection
        self.stale_seconds = STALE_SECONDS if stale_seconds is None else stale_seconds

    def create(self, *, request: dict[str, Any], actor: Actor) -> dict[str, Any]:
        now = _now()
        job = {
            "status": QUEUED,
            "created": now,
            "heartbeat": now,
            "started": None,
            "finished": None,
            "request": request,
            "actor": actor.as_document(),
            "progress": {"phase": QUEUED, "rows_read": 0, "bytes_read": 0, "bytes_total": request["bytes"]},
            "version": None,
            "active": None,
            "warnings": [],
            "held_back": None,
            "error": None,
            "issues": None,
        }
        with STORE_LOCK:
            self.collection.insert_one(job)
        return job

    def _read(self, job_id: ObjectId) -> dict[str, Any] | None:
        with STORE_LOCK:
            return self.collection.find_one({"_id": job_id})

    def _change(self, job_id: ObjectId, statuses: tuple[str, ...], changes: dict[str, Any]) -> dict[str, Any] | None:
        """The job with ``changes`` made, if its status is one of ``statuses``; else None."""
        for _ in range(5):
            job = self._read(job_id)
            if job is None or job["status"] not in statuses:
                return None
            changed = {**job, **changes}
            with STORE_LOCK:
                result = self.collection.replace_one(
                    {"_id": job_id, "status": job["status"], "heartbeat": job["heartbeat"]}, changed
                )
            if result.matched_count == 1:
                return changed
        return None  # changed by others each time: it is not this writer's to change

    def start(self, job_id: ObjectId) -> bool:
        """Queued to running; False when the job is no longer waiting (it was marked failed)."""
        now = _now()
        return self._change(job_id, (QUEUED,), {"status": RUNNING, "started": now, "heartbeat": now}) is not None

    def beat(self, job_id: ObjectId, progress: dict[str, Any]) -> bool:
        """Record that the runner is alive, with its progress. False: the job was marked failed meanwhile."""
        return self._change(job_id, UNFINISHED, {"heartbeat": _now(), "progress": progress}) is not None

    def succeed(
        self,
        job_id: ObjectId,
        *,
        version: int,
        active: bool,
        warnings: list[str],
        held_back: str | None,
        progress: dict[str, Any],
    ) -> None:
        # Whatever a reader concluded meanwhile: a version was stored, and the job says so.
        now = _now()
        changes = {
            "status": SUCCEEDED,
            "finished": now,
            "heartbeat": now,
            "progress": progress,
            "version": version,
            "active": active,
            "warnings": warnings,
            "held_back": held_back,
            "error": None,
            "issues": None,
        }
        self._change(job_id, (*UNFINISHED, FAILED), changes)

    def fail(
        self,
        job_id: ObjectId,
        *,
        code: int,
        message: str,
        issues: dict[str, str] | None = None,
        progress: dict[str, Any] | None = None,
    ) -> None:
        now = _now()
        changes: dict[str, Any] = {
            "status": FAILED,
            "finished": now,
            "heartbeat": now,
            "error": {"code": code, "message": message},
            "issues": issues,
        }
        if progress is not None:
            changes["progress"] = progress
        self._change(job_id, UNFINISHED, changes)

    def get(self, job_id: str | ObjectId) -> dict[str, Any] | None:
        """The job, or None. One whose heartbeat is older than ``stale_seconds`` is marked failed first."""
        oid = _object_id(job_id)
        if oid is None:
            return None
        job = self._read(oid)
        if job is None or job["status"] not in UNFINISHED:
            return job
        if _aware(job["heartbeat"]) >= _now() - timedelta(seconds=self.stale_seconds):
            return job
        marked = {
            **job,
            "status": FAILED,
            "finished": _now(),
            "error": {"code": 500, "message": MSG_STALE.format(seconds=self.stale_seconds)},
            "issues": None,
        }
        with STORE_LOCK:
            result = self.collection.replace_one(
                {"_id": oid, "status": job["status"], "heartbeat": job["heartbeat"]}, marked
            )
        if result.matched_count == 1:
            logger.warning("training job %s had no heartbeat for %.0f s: marked failed", oid, self.stale_seconds)
            return marked
        return self._read(oid)  # a heartbeat or an end came in between


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def training_jobs() -> TrainingJobs:
    return TrainingJobs(get_database()[COLLECTION])
