"""/health/live and /health/ready (estimator_project/health.py): ready with a database and a model, not
ready saying why, and during an election "no primary for now" told from "the database is gone"."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

import pymongo
import pytest
from pymongo.errors import NetworkTimeout, ServerSelectionTimeoutError
from pymongo.read_preferences import Nearest, ReadPreference
from pymongo.topology_description import TopologyDescription

from core import mongo
from estimator_project import health
from ml import serving
from tests.helpers import UNREACHABLE_URI, assert_error_envelope, post_json


class TestHealth:
    def test_live_always(self, client):
        assert client.get("/health/live").json() == {"status": "live"}

    def test_ready_with_a_database_and_a_model(self, api, active_model):
        response = api.get("/health/ready")

        assert response.status_code == HTTPStatus.OK
        checks = response.json()["checks"]
        assert {**checks, "indexes": "-"} == {
            "database": "ok",
            "model": f"version {active_model['version']}",
            "indexes": "-",
        }
        assert checks["indexes"]  # what it says: tests/modelops/test_indexes.py

    def test_not_ready_without_a_model_says_why(self, api_without_model):
        response = api_without_model.get("/health/ready")

        body = assert_error_envelope(response, 503)
        assert "no active model" in body["_error"]["message"]
        assert body["checks"]["database"] == "ok"

    @pytest.mark.parametrize("changed", ["SECRET_KEY", "MODEL_SIGNING_KEY"])
    def test_not_ready_when_the_key_changed_says_the_active_version_is_refused_and_why(
        self, api, active_model, settings, changed
    ):

        # Given the active version, signed with the key derived from SECRET_KEY (MODEL_SIGNING_KEY unset),
        assert not settings.MODEL_SIGNING_KEY
        # when either key changes
        setattr(settings, changed, "another-key-" + "y" * 40)
        serving.reset()

        response = api.get("/health/ready")

        body = assert_error_envelope(response, 503)
        model = body["checks"]["model"]
        assert model.startswith(f"active version {active_model['version']} refused: ")
        assert "the signature does not verify with this key" in model and "no active model" not in model
        assert model in body["_error"]["message"]
        # and a write says the same instead of "no model is active yet"
        write = assert_error_envelope(post_json(api, {"bestseller_rank": 70}), 503)
        assert "is active, but this service refused to load it" in write["_error"]["message"]
        assert "signature does not verify with this key" in write["_error"]["message"]

    def test_ready_on_the_version_it_had_says_why_the_newly_active_one_is_not_served(
        self, api, active_model, trained_model, settings
    ):
        from tests.helpers import tamper_bytes

        settings.MODEL_REFRESH_SECONDS = 0
        assert api.get("/health/ready").status_code == HTTPStatus.OK
        registry = serving.model_registry()
        bad = registry.save(trained_model)["version"]
        tamper_bytes(registry, bad)
        registry.state.replace_one({"_id": "active"}, {"_id": "active", "version": bad})

        response = api.get("/health/ready")

        assert response.status_code == HTTPStatus.OK
        assert response.json()["checks"]["model"] == (
            f"version {active_model['version']} (active version {bad} refused: model version {bad}: "
            "the artifact's bytes do not match its checksum)"
        )

    def test_not_ready_without_the_database(self, client, settings):
        settings.MONGO_URI = "mongodb://127.0.0.1:9/x"
        settings.MONGO_SERVER_SELECTION_TIMEOUT_MS = 200
        mongo.reset()
        try:
            body = assert_error_envelope(client.get("/health/ready"), 503)
        finally:
            mongo.reset()

        assert body["checks"]["database"].startswith("unreachable")
        assert "database: unreachable" in body["_error"]["message"]


# --- readiness ----------------------------------------------------------------------------------------


@pytest.fixture
def pings(monkeypatch) -> tuple[dict[str, Exception], list[str]]:
    """/health/ready's pings, answered as a test says: (failure by read preference mode, modes asked)."""
    failures: dict[str, Exception] = {}
    asked: list[str] = []

    def ping(read_preference) -> None:
        asked.append(read_preference.mongos_mode)
        if read_preference.mongos_mode in failures:
            raise failures[read_preference.mongos_mode]

    monkeypatch.setattr(health, "_ping", ping)
    return failures, asked


NO_PRIMARY_FAILURES = [
    ServerSelectionTimeoutError("No primary available for writes, Timeout: 1.5s"),  # between two primaries
    NetworkTimeout("db1:27017: timed out"),  # a primary that stopped answering, not yet noticed
]


class TestReadiness:
    @pytest.mark.parametrize("failure", NO_PRIMARY_FAILURES, ids=type)
    def test_no_primary_but_a_member_answers_is_ready_and_says_writes_wait(self, api, active_model, pings, failure):
        failures, asked = pings
        failures["primary"] = failure

        response = api.get("/health/ready")

        assert response.status_code == HTTPStatus.OK, response.content
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"]["database"] == (
            "no primary (election in progress?): reads are served, writes answer 503 until one is elected"
        )
        assert body["checks"]["model"] == f"version {active_model['version']}"
        assert asked == ["primary", "primaryPreferred"]  # then the members the reads go to

    def test_no_member_answering_is_not_ready_the_database_is_unreachable(self, api, pings):
        failures, asked = pings
        failures["primary"] = failures["primaryPreferred"] = ServerSelectionTimeoutError("no servers")

        body = assert_error_envelope(api.get("/health/ready"), 503)

        assert body["checks"]["database"] == "unreachable (ServerSelectionTimeoutError)"
        assert body["checks"]["model"] == "not checked: no database"
        assert "database: unreachable" in body["_error"]["message"]
        assert asked == ["primary", "primaryPreferred"]

    def test_with_primary_only_reads_it_asks_any_member_and_says_reads_wait_too(self, api, pings, settings):
        settings.MONGO_READ_PREFERENCE = "primary"
        failures, asked = pings
        failures["primary"] = NO_PRIMARY_FAILURES[0]

        response = api.get("/health/ready")

        assert response.status_code == HTTPStatus.OK, response.content
        assert response.json()["checks"]["database"] == (
            "no primary (election in progress?): reads (MONGO_READ_PREFERENCE=primary) and writes answer 503 until "
            "one is elected"
        )
        assert asked == ["primary", "nearest"]

    def test_the_secondaries_the_reads_may_use_are_the_ones_asked(self, api, pings, settings):
        settings.MONGO_READ_PREFERENCE, settings.MONGO_MAX_STALENESS_SECONDS = "secondaryPreferred", 120
        failures, asked = pings
        failures["primary"] = NO_PRIMARY_FAILURES[0]
        failures["secondaryPreferred"] = ServerSelectionTimeoutError("no secondary within maxStalenessSeconds")

        body = assert_error_envelope(api.get("/health/ready"), 503)

        assert body["checks"]["database"] == "unreachable (ServerSelectionTimeoutError)"
        assert asked == ["primary", "secondaryPreferred"]

    def test_no_primary_still_checks_the_model(self, api_without_model, pings):
        failures, _ = pings
        failures["primary"] = NO_PRIMARY_FAILURES[0]

        body = assert_error_envelope(api_without_model.get("/health/ready"), 503)

        assert body["checks"]["database"].startswith("no primary")
        assert body["checks"]["model"].startswith("no active model")

    def test_a_primary_that_answers_is_asked_alone(self, api, pings):
        _, asked = pings

        assert api.get("/health/ready").json()["checks"]["database"] == "ok"
        assert asked == ["primary"]

    def test_each_ping_is_the_read_preference_it_names_within_the_ready_timeout(self, monkeypatch, settings):
        settings.MONGO_READY_TIMEOUT_MS = 700
        sent: list[tuple[str, Any, float | None]] = []

        class Database:
            def command(self, name, read_preference):
                from pymongo import _csot  # where PyMongo keeps the deadline of pymongo.timeout

                sent.append((name, read_preference, _csot.get_timeout()))
                return {"ok": 1}

        monkeypatch.setattr(health, "get_database", Database)

        health._ping(ReadPreference.NEAREST)

        ((name, read_preference, timeout),) = sent
        assert name == "ping" and read_preference == Nearest()
        assert timeout is not None and 0 < timeout <= 0.7

    def test_an_unreachable_database_is_reported_within_the_ready_timeout_not_the_selection_timeout(
        self, client, settings
    ):
        settings.MONGO_URI = UNREACHABLE_URI
        settings.MONGO_SERVER_SELECTION_TIMEOUT_MS = 20_000  # without the ready bound: 2 pings of 20 s
        settings.MONGO_READY_TIMEOUT_MS = 300
        mongo.reset()
        started = time.monotonic()
        try:
            body = assert_error_envelope(client.get("/health/ready"), 503)
        finally:
            mongo.reset()

        assert time.monotonic() - started < 10
        assert body["checks"]["database"].startswith("unreachable")


class TestNoPrimaryForNow:
    """mongo.no_primary_for_now reads what PyMongo's monitors know of the set (no round trip)."""

    class Description(TopologyDescription):
        def __init__(self, writable: bool, readable: bool):  # what the monitors found, said directly
            self.writable, self.readable, self.asked = writable, readable, []

        def has_writable_server(self) -> bool:
            return self.writable

        def has_readable_server(self, read_preference) -> bool:
            self.asked.append(read_preference)
            return self.readable

    @pytest.mark.parametrize(
        ("writable", "readable", "expected"),
        [(False, True, True), (True, True, False), (False, False, False), (True, False, False)],
        ids=["election", "primary", "gone", "primary-only"],
    )
    def test_only_a_set_without_a_writable_member_but_with_readable_ones_is_between_primaries(
        self, settings, monkeypatch, writable, readable, expected
    ):

        from core import mongo

        settings.MONGO_READ_PREFERENCE = "primaryPreferred"
        description = self.Description(writable, readable)
        client = pymongo.MongoClient("mongodb://h1:27017,h2:27017/?replicaSet=rs0", connect=False)
        monkeypatch.setattr(type(client), "topology_description", property(lambda self: description))
        try:
            assert mongo.no_primary_for_now(client) is expected
        finally:
            client.close()
        if not writable:  # asked with the reads' own preference
            assert description.asked == [mongo.reads_preference()]

    def test_a_client_that_knows_nothing_yet_and_the_embedded_store_are_not_in_an_election(self):
        import mongomock

        from core import mongo

        client = pymongo.MongoClient("mongodb://h1:27017,h2:27017/?replicaSet=rs0", connect=False)
        try:
            assert mongo.no_primary_for_now(client) is False
        finally:
            client.close()
        assert mongo.no_primary_for_now(mongomock.MongoClient()) is False
