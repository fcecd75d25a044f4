"""Faults: the database stops and returns under a running server; concurrent conditional writes.

Each fault test has its own nx-27017 server (stopped and started again on the same port and data
directory) and a live gunicorn pointed at it, so nothing else in the suite is disturbed.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pymongo
import pytest
from bson import ObjectId

from core.errors import (
    MSG_DATABASE_UNAVAILABLE,
    MSG_DELETE_UNKNOWN,
    MSG_INSERT_PENDING,
    MSG_INSERT_REMOVED,
    MSG_INSERT_UNKNOWN_KEYED,
    MSG_UPDATE_UNKNOWN,
)
from core.throttling import MSG_MONGO_COUNTERS_DOWN
from estimations.store import IDEMPOTENCY_FIELD
from tests.conftest import WireServer, own_wire_server
from tests.live import LiveServer, request

pytestmark = pytest.mark.integration

SIGNING_KEY = "fault-signing-key-not-a-secret"
REQUEST_BUDGET_MS = 2000  # MONGO_TIMEOUT_MS of the live server: a request's database work, in all
SOCKET_TIMEOUT_MS = 2000  # MONGO_SOCKET_TIMEOUT_MS: one network wait outside a request's budget (/models)
SELECTION_TIMEOUT_MS = 1000  # MONGO_SERVER_SELECTION_TIMEOUT_MS


@pytest.fixture
def own_database(tmp_path, settings):
    with own_wire_server(tmp_path, settings, "faults", SIGNING_KEY) as server:
        yield server


def live_env(database: WireServer, **more: str) -> dict[str, str]:
    return {
        "MONGO_URI": database.uri,
        "MONGO_DB_NAME": "faults",
        "MODEL_SIGNING_KEY": SIGNING_KEY,
        "MONGO_SERVER_SELECTION_TIMEOUT_MS": str(SELECTION_TIMEOUT_MS),
        "MONGO_TIMEOUT_MS": str(REQUEST_BUDGET_MS),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "4",
        **more,
    }


@pytest.fixture
def live(own_database, tmp_path):
    server = LiveServer(live_env(own_database), tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["budgets not counted", "budgets counted in the store"])
def live_counted(own_database, tmp_path, request):
    """As ``live``, with a short socket timeout (the bound of the /models endpoints' waits); and either
    no request budgets (the requests reach the store's operations), or budgets counted in the store, as
    with several hosts (then counting is the first thing each request waits for)."""
    rate = "100000/min" if request.param.endswith("store") else ""
    env = live_env(own_database, THROTTLE_ANON_RATE=rate, MONGO_SOCKET_TIMEOUT_MS=str(SOCKET_TIMEOUT_MS))
    server = LiveServer(env, tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


def post(url: str, rank: int = 5):
    return request("POST", url + "/estimations", {"bestseller_rank": rank, "category": "books"})


def test_database_down_is_a_prompt_503_and_the_service_recovers_without_a_restart(own_database, live):
    status, before, _ = post(live.url)
    assert status == 201

    # When the database stops
    own_database.stop()
    started = time.monotonic()
    down_status, down_body, _ = post(live.url)
    elapsed = time.monotonic() - started
    ready_status, ready_body, _ = request("GET", live.url + "/health/ready")
    live_status, _, _ = request("GET", live.url + "/health/live")

    # Then writes and reads answer 503 in the envelope within the selection timeout, and readiness says why
    assert down_status == 503 and down_body["_status"] == "ERR", down_body
    assert elapsed < 5, elapsed
    assert request("GET", live.url + "/estimations")[0] == 503
    assert ready_status == 503 and ready_body["checks"]["database"].startswith("unreachable")
    assert live_status == 200

    # When it returns, the same server process serves again, and what it had acknowledged is there
    own_database.start()
    deadline = time.monotonic() + 20
    while post(live.url)[0] != 201:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(0.2)
    assert request("GET", f"{live.url}/estimations/{before['_id']}")[0] == 200
    assert request("GET", live.url + "/health/ready")[0] == 200


def test_no_acknowledged_write_is_lost_when_the_database_restarts_mid_run(own_database, live):
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def keep_posting(worker: int):
        rank = 1 + worker
        while not stop.is_set():
            status, body, _ = post(live.url, rank)
            answers.append((status, (body or {}).get("_id")))
            rank += 4

    clients = [threading.Thread(target=keep_posting, args=(n,)) for n in range(4)]
    for client in clients:
        client.start()
    time.sleep(1.5)
    own_database.stop()
    time.sleep(1.5)
    own_database.start()
    time.sleep(3)
    stop.set()
    for client in clients:
        client.join(timeout=30)

    acknowledged = {object_id for status, object_id in answers if status == 201}
    statuses = {status for status, _ in answers}
    assert statuses <= {201, 503}, statuses
    assert 503 in statuses, "the database was never seen down: the test did not test anything"
    collection = pymongo.MongoClient(own_database.uri)["faults"]["estimations"]
    stored = {str(document["_id"]) for document in collection.find({}, {"_id": 1})}
    assert acknowledged <= stored, f"lost {len(acknowledged - stored)} acknowledged writes"
    unacknowledged = stored - acknowledged
    assert not unacknowledged, f"{len(unacknowledged)} documents stored for requests that got a 503"


def test_concurrent_writes_with_the_same_etag_have_one_winner(own_database, live):
    status, created, _ = post(live.url)
    url, etag = f"{live.url}/estimations/{created['_id']}", created["_etag"]
    outcomes: list[tuple[int, int]] = []
    start = threading.Barrier(8)

    def replace(rank: int):
        start.wait()
        status, body, _ = request("PUT", url, {"bestseller_rank": rank, "category": "books"}, {"If-Match": etag})
        outcomes.append((status, rank))

    threads = [threading.Thread(target=replace, args=(100 + n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [rank for status, rank in outcomes if status == 200]
    assert len(winners) == 1, outcomes
    assert sorted(status for status, _ in outcomes) == [200] + [412] * 7
    assert request("GET", url)[1]["bestseller_rank"] == winners[0]  # no lost update

    etag = request("GET", url)[1]["_etag"]
    deletes: list[int] = []
    start = threading.Barrier(8)

    def delete():
        start.wait()
        deletes.append(request("DELETE", url, None, {"If-Match": etag})[0])

    threads = [threading.Thread(target=delete) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert deletes.count(204) == 1, deletes
    assert set(deletes) <= {204, 404, 412}  # after the winner, the document is gone


def test_a_frozen_database_answers_503_within_the_request_budget_and_leaves_nothing_half_written(
    own_database, live_counted
):
    """The store stopped by SIGSTOP: connections stay open and nothing answers (a hung server, unlike a
    stopped one, which refuses connections). Every request's database work is bounded by MONGO_TIMEOUT_MS:
    writes (POST, PUT, DELETE), reads (GET one, the list, the CSV export), /health/ready, and the request
    budget counted in the store. The /models endpoints are bounded per network wait (MONGO_SOCKET_TIMEOUT_MS)."""
    live = live_counted
    status, first, _ = post(live.url)
    assert status == 201
    status, doomed, _ = post(live.url, 6)
    assert status == 201
    key = {"Idempotency-Key": "frozen-retry-1"}
    bound = REQUEST_BUDGET_MS / 1000 + 1.5  # the budget, and a margin for the machine
    # A read outside the budget: a network wait, PyMongo's one retry after it, the server selection
    # before that retry, and the margin.
    models_bound = 2 * SOCKET_TIMEOUT_MS / 1000 + SELECTION_TIMEOUT_MS / 1000 + 1.5
    answers: dict[str, tuple[int, dict, float]] = {}

    def timed(name: str, method: str, path: str, body=None, headers=None) -> None:
        started = time.monotonic()
        status, payload, _ = request(method, live.url + path, body, headers, timeout=30)
        answers[name] = (status, payload or {}, time.monotonic() - started)

    item, gone = f"/estimations/{first['_id']}", f"/estimations/{doomed['_id']}"
    calls = [(f"post{n}", "POST", "/estimations", {"bestseller_rank": 10 + n}, None) for n in range(6)]
    calls += [
        ("keyed", "POST", "/estimations", {"bestseller_rank": 99, "category": "books"}, key),
        ("put", "PUT", item, {"bestseller_rank": 7, "category": "books"}, {"If-Match": first["_etag"]}),
        ("delete", "DELETE", gone, None, {"If-Match": doomed["_etag"]}),
        ("get", "GET", item, None, None),
        ("list", "GET", "/estimations", None, None),
        ("export", "GET", "/estimations", None, {"Accept": "text/csv"}),
        ("ready", "GET", "/health/ready", None, None),
        ("models", "GET", "/models", None, None),
        ("live", "GET", "/health/live", None, None),
    ]
    # When the store freezes, with concurrent writes queued behind one another (core/runtime/group_insert.py)
    os.kill(own_database.process.pid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=timed, args=call) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        os.kill(own_database.process.pid, signal.SIGCONT)

    # Then each answers 503 in the envelope within its bound (the process itself stays live)
    assert set(answers) == {name for name, *_ in calls}, answers
    slow = {
        name: seconds
        for name, (_, _, seconds) in answers.items()
        if seconds > (models_bound if name == "models" else bound)
    }
    assert not slow, (slow, answers)
    assert answers["live"][0] == 200
    for name in {name for name, *_ in calls} - {"live"}:
        status, body, _ = answers[name]
        assert status == 503 and body["_status"] == "ERR" and body["_error"]["code"] == 503, (name, body)
    assert answers["ready"][1]["checks"]["database"].startswith("unreachable"), answers["ready"]
    # And each says what became of its request: never carried out, removed, left to the keyed retry,
    # or, for a change sent and not confirmed, that it may have been made
    messages = {name: body["_error"]["message"] for name, (_, body, _) in answers.items() if name != "live"}
    not_done = (MSG_DATABASE_UNAVAILABLE, MSG_MONGO_COUNTERS_DOWN)
    for n in range(6):
        assert messages[f"post{n}"] in (*not_done, MSG_INSERT_REMOVED, MSG_INSERT_PENDING), messages
    assert messages["keyed"] in (*not_done, MSG_INSERT_UNKNOWN_KEYED), messages
    assert messages["put"] in (*not_done, MSG_UPDATE_UNKNOWN), messages
    assert messages["delete"] in (*not_done, MSG_DELETE_UNKNOWN), messages
    for name in ("get", "list", "export", "models"):
        assert messages[name] in not_done, messages

    # When it resumes, the keyed retry gets the one document, stored once
    deadline = time.monotonic() + 20
    while request("GET", live.url + "/health/ready")[0] != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(0.2)
    retry_status, retried, _ = request(
        "POST", live.url + "/estimations", {"bestseller_rank": 99, "category": "books"}, key
    )
    assert retry_status in (200, 201), retried
    status, last, _ = post(live.url)  # the next write removes what the 503s may have left
    assert status == 201

    collection = pymongo.MongoClient(own_database.uri)["faults"]["estimations"]
    stored = {str(document["_id"]) for document in collection.find({}, {"_id": 1})}
    # The DELETE, sent before the freeze ended, may have been applied after it: only its message said
    # whether that could be
    kept = {first["_id"], retried["_id"], last["_id"]}
    assert stored in (kept, kept | {doomed["_id"]}), stored
    if messages["delete"] in not_done:
        assert doomed["_id"] in stored
    # The PUT likewise: a change said not to be carried out was not made
    if messages["put"] in not_done:
        assert collection.find_one({"_id": ObjectId(first["_id"])})["_etag"] == first["_etag"]
    stored_key = collection.find_one({"_id": ObjectId(retried["_id"])})[IDEMPOTENCY_FIELD]
    assert collection.count_documents({IDEMPOTENCY_FIELD: stored_key}) == 1
