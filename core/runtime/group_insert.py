"""Concurrent single inserts of one process share one insert_many (the group_insert switch, core/runtime/__init__.py).

While one insert is on its way to the database, those that arrive queue; the first of them then takes
the whole queue as one unordered insert_many. Nobody waits for a batch to fill, and each document keeps
its own outcome. How it behaves when the database fails or hangs: ``GroupInsert``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, NetworkTimeout, WriteError

from core.runtime import give_way, on

DUPLICATE_KEY = 11000


class NotSent(ConnectionFailure):
    """The document waited in the queue behind a write that did not finish in time: it was never sent."""


class _Pending:
    __slots__ = ("document", "error", "event", "leads")

    def __init__(self, document: dict[str, Any]):
        self.document = document
        self.error: BaseException | None = None
        self.event = threading.Event()
        self.leads = False  # it takes the queue to the database: first in, or handed the lead when woken


class GroupInsert:
    """Each document has its own outcome: stored, refused by a unique index (DuplicateKeyError, as
    insert_one raises it), or unknown because the database failed (the PyMongoError is raised to every
    caller of that batch). Nothing is acknowledged before the database acknowledged it. A request stopped
    while it waits in the queue leaves it, and hands the lead on if it had it. No wait is without end
    (``wait_seconds``): behind a write that hangs, the queued leave with ``NotSent`` (never sent); one
    taken into a batch that does not come back in time gets ``NetworkTimeout``, its outcome unknown.
    Under gevent the writer first gives way (``give_way``), so the requests already read join its batch.
    """

    def __init__(self, collection: Collection, *, wait_seconds: float | None = None):
        self.collection = collection
        self.wait_seconds = wait_seconds  # None: wait as long as the write ahead takes
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False

    def insert(self, document: dict[str, Any], before_write: Callable[[], object] = lambda: None) -> None:
        """Store ``document`` (its ``_id`` set by the caller), alone or with those queued beside it.
        ``before_write`` runs once before each write to the database, in the thread that makes it."""
        if not on("group_insert"):  # the benchmark's B: every document its own insert_one
            before_write()
            self.collection.insert_one(document)
            return
        mine = _Pending(document)
        with self._lock:
            self._queue.append(mine)
            mine.leads = not self._writing
            self._writing = True
        try:
            if not mine.leads and not mine.event.wait(self.wait_seconds):
                self._give_up(mine)
            if mine.leads:
                give_way()  # under gevent: the requests already read join this batch
        except BaseException:  # interrupted before any write took it: a greenlet killed as its worker stops
            self._leave(mine)
            raise
        if mine.leads:
            self._write_queue(before_write)
        if mine.error is not None:
            raise mine.error

    def _give_up(self, mine: _Pending) -> None:
        """``mine`` waited ``wait_seconds``: it leaves the queue if still in it (NotSent), or, taken into a
        batch, waits as long again for it (NetworkTimeout if that batch does not come back either). Handed
        the lead meanwhile, it goes on and writes."""
        with self._lock:
            if mine.leads:
                return
            if any(pending is mine for pending in self._queue):
                self._queue = [pending for pending in self._queue if pending is not mine]
                raise NotSent("queued behind a write the database did not answer in time; not sent")
        if not mine.event.wait(self.wait_seconds):
            raise NetworkTimeout("the database did not answer this write in time")

    def _leave(self, mine: _Pending) -> None:
        """``mine`` gives up while still queued: it leaves the queue, and passes the lead on if it had it
        (else the requests behind it would wait for a writer that never comes). Taken into a batch
        already, it is written as the others are."""
        with self._lock:
            self._queue = [pending for pending in self._queue if pending is not mine]
            if mine.leads:
                self._hand_on()

    def _hand_on(self) -> None:
        """With the lock held: the first request queued writes next, or nobody is writing."""
        if self._queue:
            self._queue[0].leads = True
            self._queue[0].event.set()
        else:
            self._writing = False

    def _write_queue(self, before_write: Callable[[], object]) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            before_write()
            self._write(batch)
        except BaseException as exc:  # every caller of this batch learns that its write failed
            for pending in batch:
                pending.error = pending.error or exc
        finally:
            with self._lock:
                self._hand_on()  # those who arrived meanwhile: the first of them writes the next batch
            for pending in batch:
                pending.event.set()

    def _write(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            self.collection.insert_one(batch[0].document)
            return
        try:
            self.collection.insert_many([pending.document for pending in batch], ordered=False)
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors"):
                raise  # stored, but not as durably as asked: every caller treats its write as failed
            # Unordered: every document without an error of its own was stored.
            for error in exc.details.get("writeErrors", []):
                kind = DuplicateKeyError if error.get("code") == DUPLICATE_KEY else WriteError
                batch[error["index"]].error = kind(error.get("errmsg", ""), error.get("code"), error)
