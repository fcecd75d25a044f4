"""What an election changes, without a replica set: which reads may go to a secondary
(MONGO_READ_PREFERENCE). /health/ready during an election: test_health.py. The same behaviour on a
real replica set, with a step-down: tests/estimator_project/test_replica_set.py (TEST_MONGO_URI).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pymongo
import pytest
from pymongo.read_preferences import Nearest, Primary, PrimaryPreferred, SecondaryPreferred

from core import mongo
from core.api_keys import api_key_store
from estimations import selectors, services
from estimations.store import EstimationStore, estimation_store
from ml import serving
from tests.helpers import UNREACHABLE_URI, post_json, run_django


@pytest.fixture
def unconnected(settings):
    """A real PyMongo client (connect=False: nothing is opened) for MONGO_URI."""
    settings.MONGO_URI = UNREACHABLE_URI
    mongo.reset()
    yield
    mongo.reset()


# --- the setting --------------------------------------------------------------------------------------


class TestTheSetting:
    def test_the_default_is_primary_preferred_without_a_staleness_limit(self, settings):
        assert settings.MONGO_READ_PREFERENCE == "primaryPreferred"
        assert settings.MONGO_MAX_STALENESS_SECONDS == 0
        assert mongo.reads_preference() == PrimaryPreferred()

    @pytest.mark.parametrize(
        ("env", "says"),
        [
            ({"MONGO_READ_PREFERENCE": "secondary_preferred"}, "MONGO_READ_PREFERENCE='secondary_preferred': give one"),
            ({"MONGO_MAX_STALENESS_SECONDS": "30"}, "give 0 (no limit) or 90 seconds or more"),
            (
                {"MONGO_READ_PREFERENCE": "primary", "MONGO_MAX_STALENESS_SECONDS": "120"},
                "MONGO_READ_PREFERENCE=primary never reads from a secondary",
            ),
            ({"MONGO_READY_TIMEOUT_MS": "0"}, "MONGO_READY_TIMEOUT_MS=0"),
            (
                {"MONGO_URI": "mongodb://user:s3cret-pw@db1,db2/x?replicaSet=rs0&readPreference=secondary"},
                "MONGO_URI sets readPreference: remove it from the URI and set MONGO_READ_PREFERENCE",
            ),
        ],
    )
    def test_a_wrong_value_stops_start_up_saying_what_to_give(self, env, says):
        result = run_django({"SECRET_KEY": "x" * 50, **env})

        assert result.returncode != 0 and "started" not in result.stdout
        assert says in result.stderr, result.stderr[-2000:]
        assert "s3cret-pw" not in result.stderr  # the URI's password is never repeated

    def test_each_mode_and_a_staleness_limit_start(self):
        result = run_django(
            {
                "SECRET_KEY": "x" * 50,
                "MONGO_READ_PREFERENCE": "secondaryPreferred",
                "MONGO_MAX_STALENESS_SECONDS": "90",
            },
            show="MONGO_READ_PREFERENCE MONGO_MAX_STALENESS_SECONDS",
        )

        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout.splitlines()[-1])
        assert shown == {"MONGO_READ_PREFERENCE": "secondaryPreferred", "MONGO_MAX_STALENESS_SECONDS": 90}


# --- which reads use it -------------------------------------------------------------------------------


class TestTheStoresOfAProcess:
    """On a real PyMongo client, as the service builds them (nothing connects: connect=False)."""

    def test_the_estimation_reads_use_the_read_preference_and_everything_else_the_primary(self, unconnected):
        store = estimation_store()

        assert isinstance(mongo.get_client(), pymongo.MongoClient)
        assert store.reads.read_preference == PrimaryPreferred()
        assert store.collection.read_preference == Primary()
        assert store.reads.full_name == store.collection.full_name  # the same collection, read another way

    def test_a_staleness_limit_and_another_mode_are_what_the_reads_get(self, unconnected, settings):
        settings.MONGO_READ_PREFERENCE, settings.MONGO_MAX_STALENESS_SECONDS = "nearest", 120
        mongo.reset()

        store = estimation_store()

        assert store.reads.read_preference == Nearest(max_staleness=120)
        assert store.collection.read_preference == Primary()

    def test_models_keys_and_throttling_read_from_the_primary(self, unconnected):
        from core import throttling

        assert mongo.get_client().read_preference == Primary()
        assert mongo.get_database().read_preference == Primary()
        registry = serving.model_registry()
        assert registry.models.read_preference == Primary() and registry.state.read_preference == Primary()
        assert api_key_store().collection.read_preference == Primary()
        counters = throttling.counters()
        assert isinstance(counters, throttling.MongoCounters) and counters.collection.read_preference == Primary()


class Recording:
    """A collection that notes the name of every method called on it (and otherwise is the collection)."""

    def __init__(self, target: Any):
        self._target = target
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            self.calls.append(name)
            return value(*args, **kwargs)

        return call


@pytest.mark.parametrize("store_kind", ["mongomock"])
class TestWhichHandleEachRequestUses:
    """Every request of the estimations resource, through the API: which of the store's two handles it used
    (``reads``, with MONGO_READ_PREFERENCE, or ``collection``, on the primary)."""

    @pytest.fixture
    def handles(self, api, mongo_db, monkeypatch):
        collection = mongo_db["estimations"]
        primary = Recording(collection)
        reads = Recording(collection.with_options(read_preference=SecondaryPreferred()))
        store = EstimationStore(primary, reads=reads)  # type: ignore[arg-type]
        for module in (selectors, services):  # reads and writes
            monkeypatch.setattr(module, "estimation_store", lambda: store)
        stored = post_json(api, {"bestseller_rank": 70}).json()
        primary.calls.clear()
        return primary, reads, stored

    def used(self, handles, request) -> tuple[list[str], list[str]]:
        primary, reads, _ = handles
        primary.calls.clear()
        reads.calls.clear()
        response = request()
        assert response.status_code < 500, response.content
        return primary.calls, reads.calls

    @pytest.mark.parametrize(
        "path",
        [
            "/estimations/{id}",
            "/estimations",
            '/estimations?where={{"category": "books"}}',
            "/estimations?format=csv",
        ],
    )
    def test_get_one_the_list_its_count_and_the_export_read_with_the_read_preference(self, api, handles, path):
        _, _, stored = handles

        answered: list[bytes] = []

        def get():
            response = api.get(path.format(id=stored["_id"]))
            answered.append(b"".join(response.streaming_content) if response.streaming else response.content)
            return response

        on_primary, on_reads = self.used(handles, get)

        assert stored["_id"].encode() in answered[0]
        assert on_reads and not on_primary, (on_primary, on_reads)

    def test_a_put_patch_and_delete_read_what_they_check_from_the_primary(self, api, handles):
        primary, reads, stored = handles
        url = f"/estimations/{stored['_id']}"
        first = f'"{stored["_etag"]}"'

        def current() -> str:
            return f'"{api.get(url).json()["_etag"]}"'

        for method, body, if_match, expected in (
            ("put", {"bestseller_rank": 71}, lambda: first, HTTPStatus.OK),
            # the etag is stale now: 412, from the version read on the primary
            ("patch", {"sku": "A-1"}, lambda: first, HTTPStatus.PRECONDITION_FAILED),
            # a conditional delete that matches nothing: its "why not" check tells 412 from 404
            ("delete", None, lambda: first, HTTPStatus.PRECONDITION_FAILED),
            ("delete", None, current, HTTPStatus.NO_CONTENT),
            ("delete", None, lambda: first, HTTPStatus.NOT_FOUND),
        ):
            etag = if_match()  # before the request: current() reads with the read preference itself
            primary.calls.clear()
            reads.calls.clear()
            data = {} if body is None else {"data": json.dumps(body), "content_type": "application/json"}

            response = getattr(api, method)(url, HTTP_IF_MATCH=etag, **data)

            assert response.status_code == expected, response.content
            assert primary.calls and not reads.calls, (method, expected, primary.calls, reads.calls)

    def test_an_idempotent_retry_finds_its_first_answer_on_the_primary(self, api, handles):
        key = {"HTTP_IDEMPOTENCY_KEY": "retry-1"}
        post_json(api, {"bestseller_rank": 72}, **key)

        on_primary, on_reads = self.used(handles, lambda: post_json(api, {"bestseller_rank": 72}, **key))

        assert "find_one" in on_primary and not on_reads
