"""One lazily created, fork-safe MongoDB client per process; an unreachable database is a 503."""

from __future__ import annotations

import os
import time

import mongomock
import pymongo
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from core import mongo
from core.errors import MSG_DATABASE_UNAVAILABLE
from tests.helpers import assert_error_envelope

CLOSED_PORT_URI = "mongodb://127.0.0.1:9/unreachable"  # the discard port: nothing listens there


@pytest.fixture
def unreachable(settings):
    settings.MONGO_URI = CLOSED_PORT_URI
    settings.MONGO_SERVER_SELECTION_TIMEOUT_MS = 300
    settings.MONGO_TIMEOUT_MS = 300  # a request's database work, in all (server selection included)
    mongo.reset()
    yield
    mongo.reset()


def test_client_is_created_without_connecting(unreachable):
    started = time.monotonic()

    client = mongo.get_client()

    assert isinstance(client, pymongo.MongoClient)
    assert time.monotonic() - started < 0.2
    assert client.options.server_selection_timeout == 0.3
    with pytest.raises(ServerSelectionTimeoutError):
        client.admin.command("ping")


def test_one_client_per_process(unreachable):
    assert mongo.get_client() is mongo.get_client()


def test_a_changed_uri_gets_a_new_client(unreachable, settings):
    first = mongo.get_client()
    settings.MONGO_URI = ""

    assert isinstance(mongo.get_client(), mongomock.MongoClient)
    assert mongo.get_client() is not first


def test_a_forked_child_does_not_inherit_the_client(unreachable):
    mongo.get_client()
    assert mongo._client is not None

    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it starts without the parent's client
        os._exit(0 if mongo._client is None else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert mongo._client is not None  # the parent keeps its own


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/estimations"), ("get", "/estimations/6b0aa8a7e49da0a6640161ec"), ("post", "/estimations")],
)
def test_unreachable_database_answers_503_in_the_envelope_within_the_timeout(client, unreachable, method, path):
    started = time.monotonic()

    response = getattr(client, method)(path, data={"bestseller_rank": 5}, content_type="application/json")

    assert assert_error_envelope(response, 503)["_error"]["message"] == MSG_DATABASE_UNAVAILABLE
    assert time.monotonic() - started < 5
    assert CLOSED_PORT_URI not in response.content.decode()


@pytest.mark.parametrize(("setting", "expected"), [("majority", "majority"), ("1", 1), ("2", 2)])
def test_write_concern_from_settings(settings, setting, expected):
    settings.MONGO_URI = CLOSED_PORT_URI
    settings.MONGO_WRITE_CONCERN = setting
    mongo.reset()
    try:
        assert mongo.get_client().write_concern.document["w"] == expected
    finally:
        mongo.reset()
