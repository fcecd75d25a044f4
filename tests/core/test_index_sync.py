"""core/index_sync.py: an index that conflicts with ours is resolved (dropped and rebuilt, adopted, or
left beside ours), a second run sends nothing, and builds are bounded (maxTimeMS, commitQuorum)."""

from __future__ import annotations

import logging
import uuid

import mongomock
import pymongo
import pytest
from pymongo import ASCENDING, IndexModel, monitoring
from pymongo.errors import OperationFailure

from core import index_sync
from estimations.store import INDEXES


def infos(collection) -> dict:
    return {name: {**info, "key": list(info["key"])} for name, info in collection.index_information().items()}


class Counting:
    """A collection that counts the index commands it is sent, and can answer them with an error."""

    def __init__(self, collection, refuse=None):
        self._collection = collection
        self.refuse = refuse  # (method name, spec) -> an exception to raise, or None
        self.sent: list[str] = []

    def __getattr__(self, name):
        return getattr(self._collection, name)

    def _call(self, method, *args, **kwargs):
        self.sent.append(method)
        failure = self.refuse and self.refuse(method, args, kwargs)
        if failure:
            raise failure
        return getattr(self._collection, method)(*args, **kwargs)

    def create_index(self, *args, **kwargs):
        return self._call("create_index", *args, **kwargs)

    def create_indexes(self, *args, **kwargs):
        return self._call("create_indexes", *args, **kwargs)

    def drop_index(self, *args, **kwargs):
        return self._call("drop_index", *args, **kwargs)


@pytest.fixture
def collection():
    return mongomock.MongoClient().db.estimations


# --- conflicts ------------------------------------------------------------------------------------


def test_a_changed_option_under_our_name_is_dropped_and_rebuilt(collection, caplog):
    collection.create_index([("_idempotency_key", ASCENDING)], name="idempotency_key")  # not unique: an old one

    with caplog.at_level(logging.WARNING, logger="core.index_sync"):
        names = index_sync.ensure(collection, INDEXES)

    assert "idempotency_key" in names
    info = collection.index_information()["idempotency_key"]
    assert info["unique"] is True and info["sparse"] is True
    assert "index estimations.idempotency_key differs (unique None -> True; sparse None -> True)" in caplog.text


def test_a_changed_key_under_our_name_is_dropped_and_rebuilt(collection):
    collection.create_index([("bestseller_rank", ASCENDING)], name="rank")  # the key before _id was added

    index_sync.ensure(collection, INDEXES)

    assert list(collection.index_information()["rank"]["key"]) == [("bestseller_rank", 1), ("_id", 1)]


def test_an_equivalent_index_under_another_name_is_adopted_not_built_again(collection, caplog):
    collection.create_index([("bestseller_rank", ASCENDING), ("_id", ASCENDING)], name="bestseller_rank_1__id_1")
    counted = Counting(collection)

    with caplog.at_level(logging.INFO, logger="core.index_sync"):
        names = index_sync.ensure(counted, INDEXES)

    assert names[0] == "bestseller_rank_1__id_1"
    assert "rank" not in collection.index_information()
    assert counted.sent.count("create_index") == len(INDEXES) - 1 and "drop_index" not in counted.sent
    assert "index estimations.rank: adopted the equivalent index bestseller_rank_1__id_1" in caplog.text


def test_the_same_key_with_other_options_under_another_name_is_replaced(collection):
    # MongoDB keeps one index per key pattern unless the partial filter or the collation differ.
    collection.create_index([("_idempotency_key", ASCENDING)], name="by_key")

    index_sync.ensure(collection, INDEXES)

    found = collection.index_information()
    assert "by_key" not in found and found["idempotency_key"]["unique"] is True


def test_another_partial_index_on_the_same_key_is_left_beside_ours(collection):
    collection.create_index([("sku", ASCENDING)], name="sku_unique_everywhere", unique=True)

    index_sync.ensure(collection, INDEXES)

    found = collection.index_information()
    assert found["sku_unique_everywhere"]["unique"] is True
    assert found["sku"]["partialFilterExpression"] == {"sku": {"$exists": True}}


def test_a_conflict_the_listing_did_not_show_is_resolved_when_the_server_reports_it(collection, caplog):
    # Another process made "rank" with another key after this one listed the indexes: MongoDB answers 86.
    def refuse(method, args, kwargs):
        if method == "create_index" and kwargs.get("name") == "rank" and not refused:
            refused.append(True)
            collection.create_index([("other", ASCENDING)], name="rank")
            return OperationFailure("An existing index has the same name", 86, {"codeName": "IndexKeySpecsConflict"})
        return None

    refused: list[bool] = []
    counted = Counting(collection, refuse)

    with caplog.at_level(logging.WARNING, logger="core.index_sync"):
        index_sync.ensure(counted, INDEXES)

    assert refused
    assert list(collection.index_information()["rank"]["key"]) == [("bestseller_rank", 1), ("_id", 1)]
    assert "MongoDB refused it (IndexKeySpecsConflict, code 86): dropping rank" in caplog.text


def test_a_second_run_sends_no_index_command(collection):
    index_sync.ensure(collection, INDEXES)
    before = infos(collection)
    counted = Counting(collection)

    index_sync.ensure(counted, INDEXES)

    assert counted.sent == [] and infos(collection) == before
    assert index_sync.check(collection, INDEXES) == []


def test_what_differs_is_listed_without_building(collection):
    collection.create_index([("_idempotency_key", ASCENDING)], name="idempotency_key")

    found = [step.describe("estimations") for step in index_sync.check(collection, INDEXES)]

    assert "estimations.rank: missing" in found
    assert "estimations.idempotency_key: differs (unique None -> True; sparse None -> True)" in found
    assert list(collection.index_information()) == ["_id_", "idempotency_key"]


def test_a_collation_the_server_completes_is_the_same_collation():
    wanted = IndexModel([("sku", ASCENDING)], name="sku", collation={"locale": "en"})
    listed = {"sku": {"key": [("sku", 1)], "collation": {"locale": "en", "strength": 3, "caseLevel": False}}}

    assert [step.action for step in index_sync.plan(listed, [wanted])] == [index_sync.IN_PLACE]
    listed["sku"]["collation"]["locale"] = "fr"
    assert [step.action for step in index_sync.plan(listed, [wanted])] == [index_sync.REBUILD]


# --- bounded --------------------------------------------------------------------------------------


class Commands(monitoring.CommandListener):
    def __init__(self):
        self.seen: list[dict] = []

    def started(self, event):
        self.seen.append({"name": event.command_name, **event.command})

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def wire_collection(wire_server):
    listener = Commands()
    client = pymongo.MongoClient(wire_server.uri, event_listeners=[listener])
    name = f"test_rollout_{uuid.uuid4().hex[:8]}"
    yield client[name]["things"], listener
    client.drop_database(name)
    client.close()


@pytest.mark.integration
def test_create_indexes_is_sent_with_max_time_ms_from_the_setting(wire_collection, settings):
    collection, listener = wire_collection
    settings.INDEX_BUILD_TIMEOUT_MS = 4321

    index_sync.ensure(collection, [IndexModel([("a", ASCENDING)], name="a")])

    sent = [command for command in listener.seen if command["name"] == "createIndexes"]
    assert len(sent) == 1 and 0 < sent[0]["maxTimeMS"] <= 4321
    assert "commitQuorum" not in sent[0]  # not a replica set: hello names no setName


@pytest.mark.integration
def test_a_replica_set_gets_the_commit_quorum(wire_collection, settings, monkeypatch):
    collection, listener = wire_collection
    settings.INDEX_COMMIT_QUORUM = "majority"
    command = pymongo.database.Database.command

    def hello_of_a_replica_set(self, spec, *args, **kwargs):
        answer = command(self, spec, *args, **kwargs)
        return {**answer, "setName": "rs0"} if spec == "hello" else answer

    monkeypatch.setattr(pymongo.database.Database, "command", hello_of_a_replica_set)

    try:
        index_sync.ensure(collection, [IndexModel([("a", ASCENDING)], name="a")])
    except OperationFailure:
        pass  # a standalone test server may refuse the option: what was sent is what is checked

    sent = [command for command in listener.seen if command["name"] == "createIndexes"]
    assert sent and sent[0]["commitQuorum"] == "majority"
