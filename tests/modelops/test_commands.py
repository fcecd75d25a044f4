"""manage.py ensure_indexes: idempotent on a real connection, clear when it cannot work."""

from __future__ import annotations

import io
import uuid

import pymongo
import pytest
from django.core.management import CommandError, call_command

from core import mongo
from estimations.store import INDEXES


def run(*args) -> str:
    out = io.StringIO()
    call_command("ensure_indexes", *args, stdout=out)
    return out.getvalue()


@pytest.mark.integration
def test_creates_the_indexes_over_the_wire_and_again_is_a_no_op(wire_server, settings):
    settings.MONGO_URI = wire_server.uri
    settings.MONGO_DB_NAME = f"test_cmd_{uuid.uuid4().hex[:8]}"
    mongo.reset()
    client = pymongo.MongoClient(wire_server.uri)
    database = client[settings.MONGO_DB_NAME]
    try:
        first = run()
        indexes = {name: database[name].index_information() for name in database.list_collection_names()}
        run()

        for index in INDEXES:
            assert index.document["name"] in first
        # The second run leaves every index as it was (it may adopt them under the names the server gave).
        assert {name: database[name].index_information() for name in database.list_collection_names()} == indexes
        expected = len(INDEXES) + 1  # and _id's own
        if wire_server.managed:  # nx-27017 names an index by its fields alone: those differing in direction are one
            expected -= len(INDEXES) - len({tuple(index.document["key"]) for index in INDEXES})
        assert len(indexes["estimations"]) == expected
    finally:
        client.close()
        mongo.get_client().drop_database(settings.MONGO_DB_NAME)
        mongo.reset()


@pytest.mark.integration
def test_applies_the_retention_setting_and_indexes_the_other_collections(wire_server, settings):
    settings.MONGO_URI = wire_server.uri
    settings.MONGO_DB_NAME = f"test_cmd_{uuid.uuid4().hex[:8]}"
    settings.ESTIMATION_TTL_DAYS = 30
    mongo.reset()
    try:
        output = run()

        database = pymongo.MongoClient(wire_server.uri)[settings.MONGO_DB_NAME]
        ttl = [info for info in database["estimations"].index_information().values() if "expireAfterSeconds" in info]
        assert [(info["key"], info["expireAfterSeconds"]) for info in ttl] == [([("_expires_from", 1)], 30 * 86_400)]
        for collection in ("audit", "api_keys", "models", "replays"):
            assert f"  {collection}: " in output
            assert len(database[collection].index_information()) > 1, collection
        database.client.close()
    finally:
        mongo.get_client().drop_database(settings.MONGO_DB_NAME)
        mongo.reset()


def test_with_the_embedded_store_says_the_server_indexes_it(settings):
    settings.MONGO_URI = ""

    assert "embedded in-memory store" in run()


def test_unreachable_database_is_a_command_error_without_the_uri(settings):
    settings.MONGO_URI = "mongodb://user:s3cret@127.0.0.1:9/x"
    settings.MONGO_SERVER_SELECTION_TIMEOUT_MS = 200
    mongo.reset()
    try:
        with pytest.raises(CommandError, match="Is it running, and is MONGO_URI right") as caught:
            run()
        assert "s3cret" not in str(caught.value)
    finally:
        mongo.reset()
