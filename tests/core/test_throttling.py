"""Throttle counters shared by workers and hosts (MongoDB, Redis), and a live server with two workers."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import fakeredis
import pytest

from core import throttling
from core.mongo import get_database
from tests.live import LiveServer, counts_by_worker, request, trained_database


@pytest.fixture
def mongo_counters(mongo_db) -> throttling.MongoCounters:
    store = throttling.MongoCounters(get_database()[throttling.COLLECTION])
    store.ensure_indexes()
    return store


@pytest.fixture
def redis_counters() -> throttling.RedisCounters:
    return throttling.RedisCounters(fakeredis.FakeRedis())


def assert_each_hit_gets_its_own_count(counters) -> None:
    """Atomic: 200 hits from 8 threads are numbered 1..200 with no number twice (no lost update)."""
    with ThreadPoolExecutor(8) as pool:
        counts = [count for count, _ in pool.map(lambda _: counters.hit("c", 3600), range(200))]

    assert sorted(counts) == list(range(1, 201))
    count, left = counters.peek("c")
    assert count == 200 and 3500 < left <= 3600
    assert counters.peek("other") == (0, 0.0)


# On the wire-protocol store only: MongoCounters serve where MONGO_URI is set, and mongomock (the embedded
# store, which uses LocalCounters) is not safe across threads.
@pytest.mark.parametrize("store_kind", [pytest.param("wire", marks=pytest.mark.integration)])
def test_mongo_counters_are_atomic(mongo_counters):
    assert_each_hit_gets_its_own_count(mongo_counters)


def test_redis_counters_are_atomic(redis_counters):
    assert_each_hit_gets_its_own_count(redis_counters)


def test_local_counters_are_atomic():
    assert_each_hit_gets_its_own_count(throttling.LocalCounters())


def test_a_window_starts_at_the_first_hit_and_a_new_one_after_it_ends(mongo_counters):
    assert mongo_counters.hit("k", 60)[0] == 1
    assert mongo_counters.hit("k", 60)[0] == 2
    # The window ends (moved into the past rather than waited for)
    mongo_counters.collection.update_one({"_id": "k"}, {"$set": {"reset": time.time() - 1}})

    assert mongo_counters.peek("k") == (0, 0.0)
    count, left = mongo_counters.hit("k", 60)
    assert count == 1 and 59 < left <= 60
    assert mongo_counters.collection.count_documents({}) == 1  # one document per client, reused


def test_mongo_windows_are_removed_by_a_ttl_index(mongo_counters):
    indexes = mongo_counters.collection.index_information().values()  # (nx-27017 names indexes its own way)

    assert [index.get("expireAfterSeconds") for index in indexes if list(index["key"]) == [("expires", 1)]] == [0]
    mongo_counters.hit("k", 60)
    assert mongo_counters.collection.find_one({"_id": "k"})["expires"]  # the date the TTL index reads


def test_redis_windows_expire_with_the_key(redis_counters):
    redis_counters.hit("k", 60)

    assert 59_000 < redis_counters.client.pttl("k") <= 60_000
    redis_counters.client.delete("k")  # what expiry does
    assert redis_counters.hit("k", 60)[0] == 1


def test_the_store_follows_the_settings(settings, mongo_db):
    settings.REDIS_URL, settings.MONGO_URI = "", ""
    assert isinstance(throttling.counters(), throttling.LocalCounters)
    settings.MONGO_URI = "mongodb://db:27017/x"
    assert isinstance(throttling.counters(), throttling.MongoCounters)
    settings.REDIS_URL = "redis://redis:6379/0"
    assert isinstance(throttling.counters(), throttling.RedisCounters)
    throttling.reset()


@pytest.mark.parametrize(
    ("name", "value"),
    [("THROTTLE_ANON_RATE", "600"), ("THROTTLE_KEY_RATE", "600/fortnight"), ("THROTTLE_LOGIN_RATE", "0/min")],
)
def test_a_rate_that_cannot_be_read_stops_start_up(name, value):
    from tests.helpers import run_django

    started = run_django({"SECRET_KEY": "k" * 50, name: value})

    assert started.returncode != 0 and f"{name}='{value}': give requests per period, e.g. 600/min" in started.stderr


def test_the_sign_in_budget_is_a_setting():
    from tests.helpers import run_django

    started = run_django({"SECRET_KEY": "k" * 50, "THROTTLE_LOGIN_RATE": "5/hour"}, show="THROTTLE_LOGIN_RATE")

    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout.split("started", 1)[1]) == {"THROTTLE_LOGIN_RATE": "5/hour"}


@pytest.mark.integration
def test_two_workers_share_one_budget_and_bogus_keys_get_429(wire_server, tmp_path):
    """gunicorn with WEB_CONCURRENCY=2 on the wire-protocol store (counters in MongoDB): of 90 anonymous
    requests against a budget of 40, exactly 40 pass, with both workers serving; then bogus keys get 429."""
    signing_key = "throttle-signing-key-not-a-secret"
    metrics = tmp_path / "metrics"
    with trained_database(wire_server, "test_throttle", signing_key) as database:
        server = LiveServer(
            {
                "MONGO_URI": wire_server.uri,
                "MONGO_DB_NAME": database,
                "MODEL_SIGNING_KEY": signing_key,
                "LOG_LEVEL": "WARNING",
                "WEB_CONCURRENCY": "2",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                "THROTTLE_ANON_RATE": "40/hour",
            },
            tmp_path / "server.log",
        )
        # LiveServer.start's readiness probes (GET /) spend the budget too: counted from the metrics
        server.start()
        try:
            # Each request on a new connection: each worker has its own socket (reuse_port), so the
            # kernel spreads connections over both
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda _: request("GET", server.url + "/estimations"), range(90)))
            bogus = [
                request("GET", server.url + "/estimations", headers={"Authorization": "Api-Key x"}) for _ in range(30)
            ]
        finally:
            server.stop()

    statuses = [status for status, _, _ in answers]
    probes = sum(counts_by_worker(metrics, '"http_requests_total"', '"home"').values())
    assert 1 <= probes < 40
    assert statuses.count(200) == 40 - probes and statuses.count(429) == 90 - (40 - probes), statuses
    passed = counts_by_worker(metrics, '"http_requests_total"', '"estimations-list"', '"200"')
    refused = counts_by_worker(metrics, '"http_requests_total"', '"estimations-list"', '"429"')
    assert len(passed) == 2 and len(refused) == 2, (passed, refused)  # both workers served, and refused
    assert [status for status, _, _ in bogus] == [429] * 30
    status, body, headers = bogus[-1]
    assert body["_status"] == "ERR" and body["_error"]["code"] == 429
    assert "client address has spent its budget of 40/hour" in body["_error"]["message"]
    assert 0 < int(headers["Retry-After"]) <= 3600


def test_a_redis_that_is_down_answers_503_in_the_envelope(api, settings):
    settings.THROTTLE_ANON_RATE = "100/min"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    throttling.reset()
    try:
        response = api.get("/estimations")
    finally:
        throttling.reset()

    assert response.status_code == 503
    assert response.json() == {"_status": "ERR", "_error": {"code": 503, "message": throttling.MSG_STORE_DOWN}}


class TestElection:
    """Between two primaries no member takes a count; the reads go on, uncounted (docs/mongodb.md)."""

    def test_with_no_primary_for_now_a_hit_counts_nothing_and_writes_nothing(self, mongo_counters, monkeypatch):
        monkeypatch.setattr(throttling.mongo, "no_primary_for_now", lambda client: True)

        assert mongo_counters.hit("throttle:addr:10.0.0.1", 60) == (0, 60.0)
        assert mongo_counters.peek("throttle:addr:10.0.0.1") == (0, 0.0)
        assert mongo_counters.collection.count_documents({}) == 0

    def test_with_a_primary_the_same_hits_are_counted(self, mongo_counters, monkeypatch):
        monkeypatch.setattr(throttling.mongo, "no_primary_for_now", lambda client: False)

        assert [mongo_counters.hit("throttle:addr:10.0.0.1", 60)[0] for _ in range(3)] == [1, 2, 3]

    @pytest.mark.parametrize(("no_primary", "statuses"), [(True, [200, 200, 200]), (False, [200, 429, 429])])
    def test_gets_over_budget_are_served_only_while_there_is_no_primary(
        self, api, settings, monkeypatch, no_primary, statuses
    ):
        settings.THROTTLE_ANON_RATE = "1/min"
        store = throttling.MongoCounters(get_database()[throttling.COLLECTION])
        monkeypatch.setattr(throttling, "counters", lambda: store)
        monkeypatch.setattr(throttling.mongo, "no_primary_for_now", lambda client: no_primary)
        throttling.reset()
        try:
            answers = [api.get("/estimations").status_code for _ in range(3)]
        finally:
            throttling.reset()

        assert answers == statuses
