"""Two API hosts on one store, as `docker compose up --scale api=2` runs them behind the proxy: two
independent gunicorn masters (not one master with two workers) with the production config, on the same
wire-protocol database. Whichever host a client's next request lands on, it sees what was written."""

from __future__ import annotations

import json
from http import HTTPStatus
from urllib.parse import urlencode

import pymongo
import pytest
from bson import ObjectId

from tests.live import LiveServer, request, trained_database

pytestmark = pytest.mark.integration

SIGNING_KEY = "replicas-signing-key-not-a-secret"


@pytest.fixture(scope="module")
def hosts(wire_server, tmp_path_factory):
    """Hosts A and B, each its own gunicorn master with two workers, sharing one trained database."""
    logs = tmp_path_factory.mktemp("replicas")
    with trained_database(wire_server, "test_replicas", SIGNING_KEY) as database:
        servers = [
            LiveServer(
                {
                    "MONGO_URI": wire_server.uri,
                    "MONGO_DB_NAME": database,
                    "MODEL_SIGNING_KEY": SIGNING_KEY,
                    "WEB_CONCURRENCY": "2",
                    "LOG_LEVEL": "WARNING",
                },
                logs / f"host-{name}.log",
            )
            for name in "ab"
        ]
        try:
            for server in servers:
                server.start()
            yield servers
        finally:
            for server in servers:
                server.stop()


def test_a_write_through_one_host_is_read_through_the_other(hosts):
    a, b = hosts
    status, created, _ = request("POST", a.url + "/estimations", {"bestseller_rank": 90, "category": "books"})
    assert status == HTTPStatus.CREATED, created
    path = f"/estimations/{created['_id']}"
    etag = created["_etag"]

    for round_ in range(5):
        # Given host B has just answered with the current version (several times: both its workers)
        for _ in range(4):
            status, read, headers = request("GET", b.url + path)
            assert (status, read["_etag"], headers["ETag"]) == (HTTPStatus.OK, etag, f'"{etag}"'), round_
        # When the client changes it through host A
        rank = 100 + round_
        status, written, headers = request("PATCH", a.url + path, {"bestseller_rank": rank}, {"If-Match": etag})
        assert status == HTTPStatus.OK, written
        assert written["_etag"] != etag and headers["ETag"] == f'"{written["_etag"]}"'
        etag = written["_etag"]
        # Then host B, asked right after the 200, answers with the new rank and etag, never the old copy
        for _ in range(4):
            status, read, headers = request("GET", b.url + path)
            assert status == HTTPStatus.OK, read
            assert (read["bestseller_rank"], read["_etag"], headers["ETag"]) == (rank, etag, f'"{etag}"'), round_

    # And after a delete through A (204), B answers 404
    status, _, _ = request("DELETE", a.url + path, headers={"If-Match": etag})
    assert status == HTTPStatus.NO_CONTENT
    for _ in range(4):
        status, body, _ = request("GET", b.url + path)
        assert status == HTTPStatus.NOT_FOUND, body
        assert body["_error"]["code"] == HTTPStatus.NOT_FOUND


def test_a_change_made_in_the_database_itself_shows_on_the_next_get_of_every_host(hosts, wire_server):
    # Given both hosts have answered with the stored version
    a = hosts[0]
    status, created, _ = request("POST", a.url + "/estimations", {"bestseller_rank": 91, "category": "books"})
    assert status == HTTPStatus.CREATED, created
    path = f"/estimations/{created['_id']}"
    for host in hosts:
        assert request("GET", host.url + path)[1]["_etag"] == created["_etag"]

    # When the document changes outside the service (an operator's update, another service)
    client = pymongo.MongoClient(wire_server.uri)
    try:
        database = client[a.env["MONGO_DB_NAME"]]
        database["estimations"].update_one(
            {"_id": ObjectId(created["_id"])}, {"$set": {"sku": "BY-HAND", "_etag": "changed-by-hand"}}
        )
    finally:
        client.close()

    # Then the next GET through either host shows it
    for host in hosts:
        status, read, headers = request("GET", host.url + path)
        assert (status, read.get("sku"), headers["ETag"]) == (HTTPStatus.OK, "BY-HAND", '"changed-by-hand"')


def test_estimations_posted_through_both_hosts_list_back_in_creation_order(hosts):
    # Given five POSTs alternating between the hosts (and so between at least two processes, whose
    # ids made within one second are not in creation order)
    run = ObjectId()  # this test's own SKUs, so the other tests' documents stay out of the list
    ranks = [50000, 123, 70, 500, 5000]
    for number, rank in enumerate(ranks):
        host = hosts[number % 2]
        body = {"bestseller_rank": rank, "category": "books", "sku": f"ORDER-{run}-{number}"}
        status, created, _ = request("POST", host.url + "/estimations", body)
        assert status == HTTPStatus.CREATED, created

    # When the list is read without a sort, through either host
    where = json.dumps({"sku": {"$in": [f"ORDER-{run}-{number}" for number in range(len(ranks))]}})
    for host in hosts:
        status, listed, _ = request("GET", f"{host.url}/estimations?{urlencode({'where': where})}")

        # Then they come back in the order they were created
        assert status == HTTPStatus.OK, listed
        assert [item["bestseller_rank"] for item in listed["_items"]] == ranks
