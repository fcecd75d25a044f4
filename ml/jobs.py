"""Training through the API: the uploaded CSV and the runner that trains on it (ml/job_store.py keeps the jobs).

More: docs/architecture.md, "ml/jobs.py".
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo.errors import PyMongoError

from core.audit import Actor
from core.errors import MSG_SERVER_ERROR
from core.runtime import cooperative
from ml.data import DataError
from ml.job_store import DONE, QUEUED, TrainingJobs, training_jobs
from ml.registry import RegistryError
from ml.services import model_train

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
CHUNK = 1 << 20
# While a training runs, the interpreter hands the GIL between threads every 1 ms (Python's default: 5 ms):
# each time a request of the worker waits on I/O, the training thread takes the GIL, and the request
# waits this long to get it back. Only one training runs per process, so nothing else sets it meanwhile.
TRAINING_SWITCH_INTERVAL = 0.001
UPLOAD_NAME = "upload.csv"

MSG_BAD_ROWS = (
    "Training failure: {name} has bad rows (the first {shown} shown in _issues, by line); fix them, or "
    "POST it again with ?skip_bad_rows=true to skip and count them."
)
MSG_NOT_STORED = "The model was trained but not stored: {reason}. POST the CSV again."
MSG_DATABASE = (
    "The database became unreachable during training, so no new version was stored or activated. "
    "POST the CSV again once it is back."
)


# --- the upload ----------------------------------------------------------------------------------


@dataclass
class TrainingUpload:
    """A request body saved to a private temporary directory, read in chunks, never whole in memory."""

    directory: Path
    bytes: int

    @property
    def path(self) -> Path:
        return self.directory / UPLOAD_NAME

    @classmethod
    def receive(cls, stream, limit: int, too_large: Callable[[], Exception]) -> TrainingUpload:
        """Copy ``stream`` to disk; ``too_large()`` is raised (and nothing kept) past ``limit`` bytes."""
        upload = cls(Path(tempfile.mkdtemp(prefix="model-training-")), 0)
        try:
            with upload.path.open("wb") as file:
                while chunk := stream.read(CHUNK):
                    upload.bytes += len(chunk)
                    if upload.bytes > limit:
                        raise too_large()
                    file.write(chunk)
        except BaseException:
            upload.discard()
            raise
        return upload

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# --- the runner ----------------------------------------------------------------------------------


class Abandoned(Exception):
    """The job was marked failed (no heartbeat seen in time) while this runner still worked on it."""


class _Progress:
    """What the job has done so far. Written by the CPU thread and the runner, read by the runner; each
    update replaces the whole dict, so a reader never sees half of one."""

    def __init__(self, bytes_total: int):
        self.state: dict[str, Any] = {"phase": QUEUED, "rows_read": 0, "bytes_read": 0, "bytes_total": bytes_total}

    def __call__(self, phase: str, **counts: int) -> None:
        self.state = {**self.state, "phase": phase, **counts}

    def document(self) -> dict[str, Any]:
        state = dict(self.state)
        total = state.get("bytes_total") or 0
        if state["phase"] == "reading" and total:
            state["fraction"] = round(state["bytes_read"] / total, 4)
        else:
            state["fraction"] = 1.0 if state["phase"] == DONE else None
        return state


_executor: Executor | None = None
_executor_lock = threading.Lock()
_slot: threading.Semaphore | None = None


def _cpu_executor() -> Executor:
    """One native thread per process for the CPU work (created in the worker, after the fork)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            if cooperative():
                from gevent.threadpool import ThreadPoolExecutor as NativeThreads
            else:
                from concurrent.futures import ThreadPoolExecutor as NativeThreads
            _executor = NativeThreads(max_workers=1, thread_name_prefix="model-training")
        return _executor


def _training_slot() -> threading.Semaphore:
    """One training at a time per process. Under gevent, a greenlet-aware semaphore (monkey-patched)."""
    global _slot
    with _executor_lock:
        if _slot is None:
            _slot = threading.Semaphore(1)
        return _slot


class JobRunner:
    def __init__(self, jobs: TrainingJobs, job_id: ObjectId, upload: TrainingUpload, options: dict[str, Any]):
        self.jobs = jobs
        self.job_id = job_id
        self.upload = upload
        self.options = options
        self.progress = _Progress(upload.bytes)

    def _beat(self) -> None:
        try:
            alive = self.jobs.beat(self.job_id, self.progress.document())
        except PyMongoError:
            logger.warning("training job %s: could not record a heartbeat", self.job_id)
            return
        if not alive:
            raise Abandoned()

    def run_cpu(self, work: Callable[[], Any]) -> Any:
        """``work()`` in the native training thread; heartbeats from here (the runner) while it runs. What
        ``work`` raises comes back as a value and is raised here: gevent's pool would print the traceback of
        an expected failure (a bad CSV) to the log as if the worker had crashed."""

        def attempt() -> tuple[bool, Any]:
            try:
                return True, work()
            except Exception as exc:
                return False, exc

        future = _cpu_executor().submit(attempt)
        while True:
            try:
                done, result = future.result(timeout=HEARTBEAT_SECONDS)
            except FutureTimeout:
                self._beat()
                continue
            self._beat()  # the last check before the caller goes on to write
            if not done:
                raise result
            return result

    def run(self, actor: Actor) -> None:
        try:
            self._run(actor)
        finally:
            self.upload.discard()

    def _run(self, actor: Actor) -> None:
        slot = _training_slot()
        try:
            while not slot.acquire(timeout=HEARTBEAT_SECONDS):
                self._beat()
        except Abandoned:
            return
        interval = sys.getswitchinterval()
        sys.setswitchinterval(TRAINING_SWITCH_INTERVAL)
        try:
            if not self.jobs.start(self.job_id):
                return
            metadata = model_train(
                csv_path=self.upload.path,
                actor=actor,
                activate=self.options["activate"],
                skip_bad_rows=self.options["skip_bad_rows"],
                seed=self.options["seed"],
                progress=False,
                name=self.options["name"],
                on_progress=self.progress,
                run_cpu=self.run_cpu,
            )
        except Abandoned:
            logger.warning("training job %s was marked failed (no heartbeat in time); stopped", self.job_id)
        except DataError as exc:
            self._fail(422, *_data_error(exc, self.options["name"]))
        except RegistryError as exc:
            self._fail(409, MSG_NOT_STORED.format(reason=exc))
        except PyMongoError:
            logger.warning("training job %s: the database failed", self.job_id, exc_info=True)
            self._fail(503, MSG_DATABASE)
        except Exception:
            logger.exception("training job %s failed", self.job_id)
            self._fail(500, MSG_SERVER_ERROR)
        else:
            self._succeed(metadata)
        finally:
            sys.setswitchinterval(interval)
            slot.release()

    def _succeed(self, metadata: dict[str, Any]) -> None:
        self.progress(DONE)
        version = metadata["version"]
        try:
            self.jobs.succeed(
                self.job_id,
                version=version,
                active=metadata["active"],
                warnings=metadata.get("warnings", []),
                held_back=metadata.get("held_back"),
                progress=self.progress.document(),
            )
        except PyMongoError:
            logger.error("training job %s stored model version %s but could not record it", self.job_id, version)
            return
        logger.info("training job %s stored model version %s", self.job_id, version)

    def _fail(self, code: int, message: str, issues: dict[str, str] | None = None) -> None:
        try:
            self.jobs.fail(self.job_id, code=code, message=message, issues=issues, progress=self.progress.document())
        except PyMongoError:
            # Its heartbeat stops with this runner: the job reads as failed after STALE_SECONDS.
            logger.warning("training job %s: could not record its failure", self.job_id)


def _data_error(exc: DataError, name: str) -> tuple[str, dict[str, str] | None]:
    """The reader's message, or, for bad rows, the rows by line as train_model lists them."""
    if not exc.bad_rows:
        return str(exc), None
    issues = {f"line {row.line}": row.reason for row in exc.bad_rows}
    return MSG_BAD_ROWS.format(name=name, shown=len(exc.bad_rows)), issues


def start_training(*, upload: TrainingUpload, options: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Record a queued job for ``upload`` and start its runner; returns the job. The runner owns the
    upload from here (and removes it when done); if no job could be recorded, it is removed here."""
    jobs = training_jobs()
    try:
        job = jobs.create(request={**options, "bytes": upload.bytes}, actor=actor)
    except BaseException:
        upload.discard()
        raise
    runner = JobRunner(jobs, job["_id"], upload, options)
    _spawn(lambda: runner.run(actor))
    return job


def _spawn(work: Callable[[], None]) -> None:
    if cooperative():
        import gevent

        gevent.spawn(work)
    else:
        threading.Thread(target=work, name="model-training-job", daemon=True).start()
