"""The cache of read estimations: served while young and unwritten, invalidated by writes from any
worker (shared write marks), and never left holding a copy older than a write it raced with."""

from __future__ import annotations

import os
import time
from http import HTTPStatus

import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect

from estimations import cache
from estimations.cache import ItemCache
from estimations.services import estimation_store
from estimations.store import Outcome
from estimator_project.observability import ITEM_READS

from .test_api_create import post_json


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """A stand-in for the database read: counts the reads, returns the current version."""

    def __init__(self, document: dict | None) -> None:
        self.document, self.reads = document, 0

    def __call__(self) -> dict | None:
        self.reads += 1
        return None if self.document is None else dict(self.document)


@pytest.fixture
def own_marks(monkeypatch):
    """This test's own write marks (process-local), so nothing else's writes touch them."""
    monkeypatch.setattr(cache, "_marks", cache.WriteMarks(bytearray(cache.SLOTS * cache.MARK_BYTES)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def items(own_marks, clock) -> ItemCache:
    return ItemCache(seconds=5, size=100, clock=clock)


def test_a_read_is_served_from_memory_until_it_is_older_than_the_setting(items, clock):
    oid, load = ObjectId(), Loader({"v": 1})

    assert items.get("db.c", oid, load) == ({"v": 1}, False)
    clock.now += 4.9
    assert items.get("db.c", oid, load) == ({"v": 1}, True)
    assert load.reads == 1

    clock.now += 0.2
    load.document = {"v": 2}
    assert items.get("db.c", oid, load) == ({"v": 2}, False)
    assert load.reads == 2


def test_a_write_to_the_id_makes_the_next_read_go_to_the_database(items):
    oid, load = ObjectId(), Loader({"v": 1})
    items.get("db.c", oid, load)

    load.document = {"v": 2}
    cache.invalidate([oid])

    assert items.get("db.c", oid, load) == ({"v": 2}, False)
    assert items.get("db.c", oid, load) == ({"v": 2}, True)


def test_a_write_to_another_id_leaves_the_copy_served(items):
    oid, load = ObjectId(), Loader({"v": 1})
    items.get("db.c", oid, load)

    cache.invalidate([ObjectId()])

    assert items.get("db.c", oid, load) == ({"v": 1}, True)


def test_a_write_landing_during_the_read_leaves_no_stale_copy_behind(items):
    # Given a read that returns the old version while a write (in another worker) lands meanwhile
    oid = ObjectId()

    def racing_read():
        cache.invalidate([oid])  # the write's mark arrives while the database is answering
        return {"v": "old"}

    # When it is read, then read again
    items.get("db.c", oid, racing_read)
    load = Loader({"v": "new"})

    # Then the old copy was not served: the second read went to the database
    assert items.get("db.c", oid, load) == ({"v": "new"}, False)


def test_a_missing_document_is_not_remembered(items):
    oid, load = ObjectId(), Loader(None)
    assert items.get("db.c", oid, load) == (None, False)

    load.document = {"v": 1}
    assert items.get("db.c", oid, load) == ({"v": 1}, False)


def test_the_same_id_in_another_collection_is_another_entry(items):
    oid = ObjectId()
    items.get("db.one", oid, Loader({"in": "one"}))

    assert items.get("db.two", oid, Loader({"in": "two"})) == ({"in": "two"}, False)
    assert items.get("db.one", oid, Loader({"in": "?"})) == ({"in": "one"}, True)


def test_callers_get_copies_so_a_change_to_one_never_reaches_the_next_caller(items):
    oid = ObjectId()
    first, _ = items.get("db.c", oid, Loader({"v": 1}))
    first["v"] = "changed by the caller"

    second, cached = items.get("db.c", oid, Loader({"v": "?"}))
    second["v"] = "changed again"

    assert cached and items.get("db.c", oid, Loader({"v": "?"}))[0] == {"v": 1}


def test_at_most_size_documents_are_kept_and_the_oldest_go_first(own_marks, clock):
    items = ItemCache(seconds=5, size=3, clock=clock)
    ids = [ObjectId() for _ in range(5)]
    for oid in ids:
        items.get("db.c", oid, Loader({"id": str(oid)}))

    assert len(items) == 3
    assert items.get("db.c", ids[0], Loader({"id": "again"}))[1] is False  # evicted
    assert items.get("db.c", ids[4], Loader({"id": "?"}))[1] is True  # kept


@pytest.mark.parametrize("seconds, size", [(0, 100), (5, 0)])
def test_zero_seconds_or_size_turns_it_off(own_marks, seconds, size):
    items, oid, load = ItemCache(seconds=seconds, size=size), ObjectId(), Loader({"v": 1})
    items.get("db.c", oid, load)
    items.get("db.c", oid, load)

    assert load.reads == 2 and len(items) == 0


class TestSharedMarks:
    """Across processes: gunicorn's workers are forked from a master that called share_write_marks."""

    def _write_in_a_child(self, oid: ObjectId) -> None:
        pid = os.fork()
        if pid == 0:  # the child: another worker writing the estimation
            try:
                cache.invalidate([oid])
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0

    def test_a_write_in_another_forked_process_invalidates_the_copy_here(self, monkeypatch, clock):
        monkeypatch.setattr(cache, "_marks", cache._marks)  # restored after the test
        cache.share_write_marks()
        items, oid = ItemCache(seconds=5, size=10, clock=clock), ObjectId()
        items.get("db.c", oid, Loader({"v": 1}))

        self._write_in_a_child(oid)

        assert items.get("db.c", oid, Loader({"v": 2})) == ({"v": 2}, False)

    def test_without_sharing_a_write_elsewhere_is_not_seen(self, own_marks, clock):
        # The control: process-local marks do not carry a child's write (what the shared memory is for)
        items, oid = ItemCache(seconds=5, size=10, clock=clock), ObjectId()
        items.get("db.c", oid, Loader({"v": 1}))

        self._write_in_a_child(oid)

        assert items.get("db.c", oid, Loader({"v": 2})) == ({"v": 1}, True)

    def test_marks_are_never_reused_by_another_process(self, own_marks):
        oid = ObjectId()
        cache.invalidate([oid])
        here = cache.write_marks().read(oid)
        pid = os.fork()
        if pid == 0:
            cache.invalidate([oid])  # the child's counter continues the parent's; its pid differs
            os._exit(0 if cache.write_marks().read(oid) != here else 1)
        assert os.waitpid(pid, 0)[1] == 0


class TestStore:
    """Every write path of the store invalidates, also when the database's answer never came."""

    @pytest.fixture
    def store(self, mongo_db, own_marks, settings):
        settings.ITEM_CACHE_SECONDS = 60
        return estimation_store()

    def _cached(self, store) -> dict:
        document = store.insert({"bestseller_rank": 1, "category": "books", "_etag": "a"})
        store.get_cached(str(document["_id"]))
        assert store.get_cached(str(document["_id"]))[1] is True
        return document

    def test_a_replace_invalidates(self, store):
        document = self._cached(store)

        assert store.replace_if_match({**document, "_etag": "b"}, ["a"]) is Outcome.DONE

        assert store.get_cached(str(document["_id"])) == ({**document, "_etag": "b"}, False)

    def test_a_refused_replace_invalidates_too(self, store):
        document = self._cached(store)

        assert store.replace_if_match({**document, "_etag": "b"}, ["not-it"]) is Outcome.STALE

        assert store.get_cached(str(document["_id"]))[1] is False

    def test_a_delete_invalidates(self, store):
        document = self._cached(store)

        assert store.delete_if_match(str(document["_id"]), None) is Outcome.DONE

        assert store.get_cached(str(document["_id"])) == (None, False)

    def test_a_delete_whose_answer_was_lost_invalidates(self, store, monkeypatch):
        document = self._cached(store)

        def lost(*args, **kwargs):  # the write may or may not have happened: the connection broke
            raise AutoReconnect("connection closed")

        monkeypatch.setattr(type(store.collection), "delete_one", lost)
        with pytest.raises(AutoReconnect):
            store.delete_if_match(str(document["_id"]), None)

        assert store.get_cached(str(document["_id"]))[1] is False

    def test_reads_for_a_write_never_come_from_the_cache(self, store):
        document = self._cached(store)
        store.collection.update_one({"_id": document["_id"]}, {"$set": {"_etag": "changed elsewhere"}})

        assert store.get(str(document["_id"]))["_etag"] == "changed elsewhere"
        assert store.get_cached(str(document["_id"]))[0]["_etag"] == "a"  # up to ITEM_CACHE_SECONDS


class TestThroughTheApi:
    def _get(self, api, oid: str):
        return api.get(f"/estimations/{oid}")

    def test_a_client_reads_its_own_patch_and_delete(self, api, own_marks):
        created = post_json(api, {"bestseller_rank": 250, "category": "books"}).json()
        url = f"/estimations/{created['_id']}"
        assert self._get(api, created["_id"]).json()["_etag"] == created["_etag"]

        patched = api.patch(url, {"sku": "ABC-1"}, content_type="application/json", HTTP_IF_MATCH=created["_etag"])
        assert patched.status_code == HTTPStatus.OK, patched.json()
        read = self._get(api, created["_id"])
        assert read.json()["_etag"] == patched.json()["_etag"] == read["ETag"].strip('"')
        assert read.json()["sku"] == "ABC-1"

        api.delete(url, HTTP_IF_MATCH=patched.json()["_etag"])
        assert self._get(api, created["_id"]).status_code == HTTPStatus.NOT_FOUND

    def test_a_change_made_outside_the_service_shows_after_item_cache_seconds(self, api, own_marks, settings):
        settings.ITEM_CACHE_SECONDS = 0.3
        created = post_json(api, {"bestseller_rank": 250, "category": "books"}).json()
        self._get(api, created["_id"])
        estimation_store().collection.update_one({"_id": ObjectId(created["_id"])}, {"$set": {"sku": "BY-HAND"}})

        assert "sku" not in self._get(api, created["_id"]).json()
        time.sleep(0.35)
        assert self._get(api, created["_id"]).json()["sku"] == "BY-HAND"

    def test_off_every_read_goes_to_the_database(self, api, own_marks, settings):
        settings.ITEM_CACHE_SECONDS = 0
        created = post_json(api, {"bestseller_rank": 250, "category": "books"}).json()
        self._get(api, created["_id"])
        estimation_store().collection.update_one({"_id": ObjectId(created["_id"])}, {"$set": {"sku": "BY-HAND"}})

        assert self._get(api, created["_id"]).json()["sku"] == "BY-HAND"

    def test_reads_are_counted_by_where_they_came_from(self, api, own_marks):
        def count(source: str) -> float:
            return ITEM_READS.labels(source)._value.get()

        created = post_json(api, {"bestseller_rank": 250, "category": "books"}).json()
        database, cached = count("database"), count("cache")

        for _ in range(3):
            assert self._get(api, created["_id"]).status_code == HTTPStatus.OK

        assert (count("database") - database, count("cache") - cached) == (1, 2)


@pytest.mark.integration
class TestTwoWorkers:
    """gunicorn with the production config and two workers: whichever worker answers, a client reads
    its own writes, and both workers answer from their caches."""

    SIGNING_KEY = "cache-signing-key-not-a-secret"

    @pytest.fixture
    def live(self, wire_server, tmp_path):
        from ..live import LiveServer, trained_database

        with trained_database(wire_server, "test_cache", self.SIGNING_KEY) as database:
            server = LiveServer(
                {
                    "MONGO_URI": wire_server.uri,
                    "MONGO_DB_NAME": database,
                    "MODEL_SIGNING_KEY": self.SIGNING_KEY,
                    "WEB_CONCURRENCY": "2",
                    "GUNICORN_THREADS": "2",
                    "ITEM_CACHE_SECONDS": "60",
                    "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
                    "LOG_LEVEL": "WARNING",
                },
                tmp_path / "server.log",
            )
            server.start()
            yield server, tmp_path / "metrics"
            server.stop()

    @staticmethod
    def _cache_reads_by_worker(metrics) -> dict[str, float]:
        from ..live import counts_by_worker

        return counts_by_worker(metrics, "estimation_item_reads_total", '"cache"')

    def test_a_client_reads_its_own_writes_whichever_worker_answers(self, live):
        from ..live import request

        server, metrics = live
        status, created, _ = request("POST", server.url + "/estimations", {"bestseller_rank": 90, "category": "books"})
        assert status == HTTPStatus.CREATED, created
        url, etag = f"{server.url}/estimations/{created['_id']}", created["_etag"]
        # Given both workers holding a copy: which worker accepts a new connection is the kernel's
        # choice, and an idle pair can hand many in a row to the same one
        for _ in range(1000):
            if len(self._cache_reads_by_worker(metrics)) == 2:
                break
            assert request("GET", url)[1]["_etag"] == etag
        assert len(self._cache_reads_by_worker(metrics)) == 2, "one worker took every connection"

        for round_ in range(30):
            # Given copies of the current version in the workers' caches (each request a new connection)
            for _ in range(4):
                assert request("GET", url)[1]["_etag"] == etag
            # When the client changes it, through whichever worker takes the connection
            status, written, _ = request("PATCH", url, {"sku": f"SKU-{round_}"}, headers={"If-Match": etag})
            assert status == HTTPStatus.OK, written
            etag = written["_etag"]
            # Then every read after the answer shows the change
            for _ in range(4):
                status, read, headers = request("GET", url)
                assert (status, read["sku"], read["_etag"]) == (HTTPStatus.OK, f"SKU-{round_}", etag), round_
                assert headers["ETag"] == f'"{etag}"'

        assert request("DELETE", url, headers={"If-Match": etag})[0] == HTTPStatus.NO_CONTENT
        for _ in range(6):
            assert request("GET", url)[0] == HTTPStatus.NOT_FOUND


def test_a_copys_age_counts_from_when_the_database_was_asked(items, clock):
    oid = ObjectId()

    def slow_read():
        clock.now += 3  # the database took 3 s to answer
        return {"v": 1}

    items.get("db.c", oid, slow_read)
    clock.now += 2.1  # 5.1 s after the read began

    assert items.get("db.c", oid, Loader({"v": 2})) == ({"v": 2}, False)
