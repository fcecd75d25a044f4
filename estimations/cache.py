"""A short-lived cache of stored estimations for GET /estimations/{id}, invalidated by every write.

Reading one estimation costs a database round trip: for a service that answers the same ids again
and again (a client polling its estimate, a dashboard), that round trip is most of the request. This
cache keeps each document read for at most ``seconds`` in the worker that read it.

Writes invalidate through *write marks*: one 8-byte slot per group of ids, in memory shared by every
worker that gunicorn forks (``share_write_marks`` runs in its master, before the fork). Every write of
an estimation, from any worker on the host, puts a new mark in the id's slot before it is
acknowledged. A cached document remembers the mark its slot held *before* it was read from the
database, and is served only while the slot still holds that mark, so:

- a client always reads its own writes, whichever worker answers, on one host;
- a write that lands while another worker is reading can only make that read uncacheable, never stale;
- a document changed outside this host's workers (another host, the TTL monitor, a hand-made update)
  is seen at the latest ``seconds`` later, which the service's own Cache-Control already allows every
  HTTP cache. ``ITEM_CACHE_SECONDS=0`` turns the cache off.

This module imports nothing from Django: gunicorn's master imports it to share the marks.
"""

from __future__ import annotations

import itertools
import mmap
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from bson import ObjectId

MARK_BYTES = 8
SLOTS = 1 << 16  # 512 KiB of marks: two ids share a slot, and so their invalidations, rarely


class WriteMarks:
    """One mark per slot of ids; a write to an id changes its slot's mark."""

    def __init__(self, buffer: mmap.mmap | bytearray):
        self._buffer = buffer
        self._slots = len(buffer) // MARK_BYTES
        self._counter = itertools.count(1)

    def _offset(self, object_id: ObjectId) -> int:
        # The last bytes of an ObjectId are its creator's counter: consecutive ids fill consecutive slots.
        return (int.from_bytes(object_id.binary[8:], "big") % self._slots) * MARK_BYTES

    def read(self, object_id: ObjectId) -> bytes:
        offset = self._offset(object_id)
        return bytes(self._buffer[offset : offset + MARK_BYTES])

    def touch(self, object_ids: Iterable[ObjectId]) -> None:
        # Unique across the host's processes (pid, then a per-process count), so a mark never comes back.
        prefix = os.getpid().to_bytes(4, "big")
        for object_id in object_ids:
            offset = self._offset(object_id)
            self._buffer[offset : offset + MARK_BYTES] = prefix + (next(self._counter) & 0xFFFFFFFF).to_bytes(4, "big")


_marks = WriteMarks(bytearray(SLOTS * MARK_BYTES))  # this process's own, until shared


def share_write_marks() -> None:
    """Put the marks in anonymous shared memory, which every process forked after this call shares.
    gunicorn's master calls it (estimator_project/gunicorn.conf.py); without it, each process has its own."""
    global _marks
    _marks = WriteMarks(mmap.mmap(-1, SLOTS * MARK_BYTES))


def write_marks() -> WriteMarks:
    return _marks


class ItemCache:
    """Documents by (collection, id), each served while younger than ``seconds`` and its mark unchanged.

    At most ``size`` documents; beyond, the oldest entries go first. Callers get a shallow copy, so a
    caller that changes what it got cannot change what the next request reads.
    """

    def __init__(self, *, seconds: float, size: int, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.size, self._clock = seconds, size, clock
        self._entries: dict[tuple[str, ObjectId], tuple[dict[str, Any], bytes, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.seconds > 0 and self.size > 0

    def get(
        self, namespace: str, object_id: ObjectId, load: Callable[[], dict[str, Any] | None]
    ) -> tuple[dict[str, Any] | None, bool]:
        """(document or None, whether it came from the cache); ``load`` reads the database on a miss."""
        if not self.enabled:
            return load(), False
        marks, key = write_marks(), (namespace, object_id)
        entry = self._entries.get(key)
        if entry is not None:
            document, mark, expires = entry
            if self._clock() < expires and marks.read(object_id) == mark:
                return dict(document), True
        # Both taken before the read: a write landing during it changes the mark, and the copy's age
        # counts from the moment the database was asked, not from when it answered.
        mark, expires = marks.read(object_id), self._clock() + self.seconds
        loaded = load()
        if loaded is not None:
            self._put(key, (dict(loaded), mark, expires))
        return loaded, False

    def _put(self, key: tuple[str, ObjectId], entry: tuple[dict[str, Any], bytes, float]) -> None:
        with self._lock:
            self._entries.pop(key, None)  # re-inserted last: the dict's order is the eviction order
            while len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = entry

    def __len__(self) -> int:
        return len(self._entries)


def invalidate(object_ids: Iterable[ObjectId]) -> None:
    """After a write of these ids (done, failed or unknown): no worker on this host serves an older copy."""
    write_marks().touch(object_ids)
