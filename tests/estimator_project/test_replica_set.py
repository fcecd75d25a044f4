"""On a real MongoDB replica set: an election, and writes no majority confirms, as clients of a live server
see them (docs/mongodb.md).

What these show cannot happen on mongomock or nx-27017 (a single server that is always primary), so they
are skipped unless TEST_MONGO_URI names a replica set (its ``hello`` has a ``setName``) of at least three
members, each reachable from here under the name the set knows it by:

    TEST_MONGO_URI='mongodb://h1:27017,h2:27017,h3:27017/?replicaSet=rs0' \\
        .venv/bin/python -m pytest tests/estimator_project/test_replica_set.py

They step the primary down, freeze members (no election for a while) and fsync-lock the secondaries (no
replication for a while), and undo each at the end: run them on a set of their own, never on one that
serves anything. The URI's user needs the clusterManager and hostManager roles (or root).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator

import pymongo
import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect, PyMongoError

from core.api_keys import ApiKeyStore
from tests.live import LiveServer, request, trained_database

pytestmark = pytest.mark.integration

SIGNING_KEY = "replica-set-signing-key-not-a-secret"
REQUEST_BUDGET_MS = 3000  # the live server's MONGO_TIMEOUT_MS (the default): a request's database work, in all
SLACK_SECONDS = 3  # what a request may take beyond its database budget on a loaded machine
NO_PRIMARY = "no primary (election in progress?)"


def direct_uri(uri: str, host: str) -> str:
    """``uri`` (a mongodb:// URI) with its host list replaced by ``host``: credentials and options kept."""
    scheme, _, rest = uri.partition("://")
    userinfo, at, after = rest.rpartition("@")
    ends = [index for index in (after.find("/"), after.find("?")) if index >= 0]
    tail = after[min(ends) :] if ends else ""
    return f"{scheme}://{userinfo}{at}{host}{tail}"


class ReplicaSet:
    """The set TEST_MONGO_URI names, and each member reached on its own (directConnection)."""

    def __init__(self, uri: str, hello: dict):
        self.uri = uri
        self.name = hello["setName"]
        self.electable = list(hello["hosts"])  # data-bearing members that can be primary
        self.members = [*hello["hosts"], *hello.get("passives", [])]
        self._clients: dict[str, pymongo.MongoClient] = {}

    def member(self, host: str) -> pymongo.MongoClient:
        if host not in self._clients:
            self._clients[host] = pymongo.MongoClient(
                direct_uri(self.uri, host), directConnection=True, serverSelectionTimeoutMS=5000
            )
        return self._clients[host]

    def primary(self) -> str | None:
        for host in self.members:
            try:
                if self.member(host).admin.command("hello").get("isWritablePrimary"):
                    return host
            except PyMongoError:
                continue  # a member that does not answer is not the primary
        return None

    def wait_for_primary(self, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while (primary := self.primary()) is None:
            assert time.monotonic() < deadline, f"{self.name} elected no primary within {seconds} s"
            time.sleep(0.5)
        return primary

    def wait_replicated(self, database: str, object_id: str, seconds: float = 20) -> None:
        """Until every data-bearing member has the document."""
        deadline = time.monotonic() + seconds
        for host in self.members:
            collection = self.member(host)[database]["estimations"]
            while collection.find_one({"_id": ObjectId(object_id)}) is None:
                assert time.monotonic() < deadline, f"{host} did not replicate {object_id} within {seconds} s"
                time.sleep(0.2)

    @contextlib.contextmanager
    def without_a_primary(self) -> Iterator[str]:
        """No member may be primary until the block ends: the secondaries frozen, the primary stepped down
        (forced: no electable secondary is left to hand over to). Yields the old primary, once no member
        says it is primary; afterwards every member may stand again, and a primary is elected."""
        old = self.wait_for_primary()
        others = [host for host in self.electable if host != old]
        try:
            for host in others:
                self.member(host).admin.command("replSetFreeze", 120)
            with contextlib.suppress(AutoReconnect):  # a stepping-down primary may close the connection
                self.member(old).admin.command({"replSetStepDown": 120, "force": True})
            deadline = time.monotonic() + 15
            while self.primary() is not None:
                assert time.monotonic() < deadline, "the primary did not step down"
                time.sleep(0.2)
            yield old
        finally:
            for host in self.electable:  # 0 unfreezes, and makes a stepped-down member electable again
                with contextlib.suppress(PyMongoError):
                    self.member(host).admin.command("replSetFreeze", 0)
            self.wait_for_primary()

    @contextlib.contextmanager
    def secondaries_not_replicating(self) -> Iterator[list[str]]:
        """Every secondary fsync-locked: none applies the primary's writes, so no write gets a majority."""
        primary = self.wait_for_primary()
        secondaries = [host for host in self.members if host != primary]
        locked = []
        try:
            for host in secondaries:
                self.member(host).admin.command("fsync", lock=True)
                locked.append(host)
            yield secondaries
        finally:
            for host in locked:
                for _ in range(10):  # until its lock count is 0
                    with contextlib.suppress(PyMongoError):
                        if self.member(host).admin.command("fsyncUnlock").get("lockCount", 0) == 0:
                            break

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture(scope="module")
def replica_set() -> Iterator[ReplicaSet]:
    uri = os.environ.get("TEST_MONGO_URI")
    if not uri:
        pytest.skip("needs TEST_MONGO_URI naming a MongoDB replica set (docs/mongodb.md)")
    if not uri.startswith("mongodb://"):
        pytest.skip("needs a mongodb:// TEST_MONGO_URI listing the members (each is also reached on its own)")
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        hello = client.admin.command("hello")
    finally:
        client.close()
    if "setName" not in hello:
        pytest.skip("TEST_MONGO_URI is not a replica set (its hello has no setName)")
    if len(hello["hosts"]) + len(hello.get("passives", [])) < 3 or len(hello["hosts"]) < 2:
        pytest.skip("needs a replica set of three data-bearing members, two of them electable")
    members = ReplicaSet(uri, hello)
    yield members
    members.close()


@pytest.fixture
def live(replica_set, wire_server, tmp_path) -> Iterator[tuple[LiveServer, str]]:
    """A live server on a fresh database of the set (model trained), with the production defaults:
    MONGO_READ_PREFERENCE=primaryPreferred, w: majority."""
    with trained_database(wire_server, "rs", SIGNING_KEY) as database:
        server = LiveServer(
            {
                "MONGO_URI": replica_set.uri,
                "MONGO_DB_NAME": database,
                "MODEL_SIGNING_KEY": SIGNING_KEY,
                "MONGO_TIMEOUT_MS": str(REQUEST_BUDGET_MS),
                "WEB_CONCURRENCY": "1",
                # The production budgets, counted in MongoDB: no count can be written without a primary
                "THROTTLE_ANON_RATE": "600/min",
                "THROTTLE_KEY_RATE": "6000/min",
            },
            tmp_path / "server.log",
        )
        server.start()
        try:
            yield server, database
        finally:
            server.stop()


def timed(method: str, url: str, body=None, headers=None):
    started = time.monotonic()
    status, answer, response_headers = request(method, url, body, headers, timeout=30)
    return status, answer, response_headers, time.monotonic() - started


def post(url: str, rank: int, headers: dict | None = None):
    return timed("POST", url + "/estimations", {"bestseller_rank": rank, "category": "books"}, headers)


def assert_prompt_503(answer: tuple) -> str:
    status, body, _, elapsed = answer
    assert status == 503 and body["_status"] == "ERR" and body["_error"]["code"] == 503, body
    assert elapsed < REQUEST_BUDGET_MS / 1000 + SLACK_SECONDS, elapsed
    return body["_error"]["message"]


def test_in_an_election_reads_and_readiness_keep_answering_and_writes_answer_503_until_one_is_elected(
    replica_set, live
):
    server, database = live
    url = server.url
    status, stored, headers, _ = post(url, 70)
    assert status == 201, stored
    replica_set.wait_replicated(database, stored["_id"])
    acknowledged = [stored["_id"]]
    item = f"{url}/estimations/{stored['_id']}"
    client = pymongo.MongoClient(replica_set.uri)
    try:
        key = ApiKeyStore(client[database]["api_keys"]).create(name="election-reader", scope="write")
    finally:
        client.close()
    keyed = {"Authorization": f"Api-Key {key}"}

    with replica_set.without_a_primary():
        # The server's driver learns of the step-down from the members (streaming hello): readiness says so
        deadline = time.monotonic() + 15
        while True:
            ready_status, ready, _, _ = timed("GET", url + "/health/ready")
            assert ready_status == 200, ready  # ready all along: never every replica out of the balancer
            if ready["checks"]["database"].startswith(NO_PRIMARY):
                break
            assert time.monotonic() < deadline, ready
            time.sleep(0.2)

        # Then, for as long as there is no primary (a few rounds of every kind of request):
        for round_ in range(3):
            # reads are served, from a secondary
            one = timed("GET", item)
            assert one[0] == 200 and one[1]["_id"] == stored["_id"], one
            with_key = timed("GET", item, headers=keyed)  # its key looked up on a secondary
            assert with_key[0] == 200, with_key
            listed = timed("GET", url + "/estimations?max_results=5")
            assert listed[0] == 200 and listed[1]["_meta"]["total"] >= 1, listed
            ready_status, ready, _, _ = timed("GET", url + "/health/ready")
            assert ready_status == 200 and ready["checks"]["database"].startswith(NO_PRIMARY), ready
            assert "writes answer 503" in ready["checks"]["database"]
            # and writes answer 503 promptly, in the envelope
            assert assert_prompt_503(post(url, 100 + round_))
            put = timed(
                "PUT",
                item,
                {"bestseller_rank": 71, "category": "books"},
                {"If-Match": headers["ETag"]},
            )
            assert assert_prompt_503(put)

    # Once a primary is elected, writes succeed again without a restart, and nothing acknowledged is lost
    deadline = time.monotonic() + 30
    while (answer := post(url, 200))[0] != 201:
        assert answer[0] == 503, answer
        assert time.monotonic() < deadline, "writes did not succeed after the election"
        time.sleep(0.5)
    acknowledged.append(answer[1]["_id"])
    assert timed("GET", url + "/health/ready")[1]["checks"]["database"] == "ok"
    for object_id in acknowledged:
        assert timed("GET", f"{url}/estimations/{object_id}")[0] == 200
    # the PUTs answered 503 were not carried out (there was no primary to carry them out)
    assert timed("GET", item)[1]["bestseller_rank"] == 70


def test_a_write_no_majority_confirms_answers_503_saying_it_may_have_been_applied_and_a_retry_is_safe(
    replica_set, live
):
    """MongoDB: a write-concern error "returns an error, even if the write concern will eventually succeed":
    the primary applied the write. The answer says it may have been applied; once the secondaries catch up
    it is there, and the retries the message names are safe."""
    server, database = live
    url = server.url
    status, stored, headers, _ = post(url, 70)
    assert status == 201, stored
    replica_set.wait_replicated(database, stored["_id"])
    item = f"{url}/estimations/{stored['_id']}"
    key = {"Idempotency-Key": f"majority-{uuid.uuid4().hex[:8]}"}

    with replica_set.secondaries_not_replicating():
        put = timed("PUT", item, {"bestseller_rank": 71, "category": "books"}, {"If-Match": headers["ETag"]})
        keyed = post(url, 72, key)

    assert "may have been applied" in assert_prompt_503(put)
    assert assert_prompt_503(keyed)
    # The PUT was applied by the primary: once replicated, the document is the new version, and the retry
    # with the same If-Match answers 412 (changed since), never a second change
    status, now, _, _ = timed("GET", item)
    assert status == 200 and now["bestseller_rank"] == 71, now
    assert timed("PUT", item, {"bestseller_rank": 71, "category": "books"}, {"If-Match": headers["ETag"]})[0] == 412
    # The keyed POST's retry answers with one estimation, stored once
    status, retried, _, _ = post(url, 72, key)
    assert status == 201, retried
    keyed_documents = replica_set.member(replica_set.wait_for_primary())[database]["estimations"]
    assert keyed_documents.count_documents({"bestseller_rank": 72}) == 1
