"""What each PyMongo error of the estimations store answers, for every endpoint (docs/reliability.md).

Each error is raised where the real driver raises it: by the write command (insert, replace, delete),
or while a read's cursor is iterated (find, find_one, the export's first batch). Errors of writes that
MongoDB applies before it reports them (a write concern not met: WriteConcernError, WTimeoutError, a
BulkWriteError with writeConcernErrors) are raised here after the write is applied, as on a replica set.
The table checks the status, the one envelope and the message; the tests after it follow a message's
advice through.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import mongomock
import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    CursorNotFound,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
    WriteError,
    WTimeoutError,
)

from core.errors import (
    MSG_DATABASE_REFUSED,
    MSG_DATABASE_UNAVAILABLE,
    MSG_DELETE_UNKNOWN,
    MSG_INSERT_REMOVED,
    MSG_INSERT_UNKNOWN_KEYED,
    MSG_QUERY_REFUSED,
    MSG_UPDATE_UNKNOWN,
    MSG_WRITE_UNKNOWN,
    database_failure,
)
from estimations.store import COLLECTION, IDEMPOTENCY_FIELD
from estimations.store_failures import QUERY_SHAPE_CODES
from tests.helpers import post_json


@pytest.fixture
def store_kind() -> str:
    return "mongomock"  # the errors are injected into mongomock's collection


# --- the errors -------------------------------------------------------------------------------------
#
# kind: "not sent" (no server selected, no connection free), "lost" (sent, no answer: a timeout, a broken
# connection, a node stepping down), "unconfirmed" (applied, a write concern not met), "server" (an
# OperationFailure the server answered with a code of its own), "shape" (a code of a malformed query).


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    make: Callable[[], PyMongoError]


def failure(code: int | None, message: str = "failed") -> Callable[[], PyMongoError]:
    return lambda: OperationFailure(message, code, {"ok": 0, "code": code, "errmsg": message})


def write_concern_errors() -> BulkWriteError:
    wce = {"code": 64, "errmsg": "waiting for replication timed out", "errInfo": {"wtimeout": True}}
    # Both documents of test_bulk_post stored (where a single insert meets it, nInserted is not read)
    return BulkWriteError({"writeErrors": [], "writeConcernErrors": [wce], "nInserted": 2})


ERRORS = [
    Case("ServerSelectionTimeoutError", "not sent", lambda: ServerSelectionTimeoutError("no primary available")),
    Case("WaitQueueTimeoutError", "not sent", lambda: WaitQueueTimeoutError("no connection free")),
    Case("NetworkTimeout", "lost", lambda: NetworkTimeout("timed out")),
    Case("AutoReconnect", "lost", lambda: AutoReconnect("connection closed")),
    Case("ExecutionTimeout", "lost", lambda: ExecutionTimeout("operation exceeded time limit", 50)),
    Case("NotPrimaryError", "lost", lambda: NotPrimaryError("not primary", {"ok": 0, "code": 10107})),
    Case("NotPrimaryError-11602", "lost", lambda: NotPrimaryError("interrupted", {"ok": 0, "code": 11602})),
    Case("WriteConcernError-11602", "unconfirmed", lambda: WriteConcernError("step down", 11602, {"code": 11602})),
    Case("WTimeoutError", "unconfirmed", lambda: WTimeoutError("waiting for replication timed out", 64, {})),
    Case("BulkWriteError-writeConcernErrors", "unconfirmed", write_concern_errors),
    Case("CursorNotFound-43", "server", lambda: CursorNotFound("cursor id not found", 43, {"code": 43})),
    *(
        Case(f"OperationFailure-{code}", "server", failure(code))
        for code in (13, 175, 11600, 11601, 11602, 10107, 189, 292, 424242, None)
    ),
    *(Case(f"OperationFailure-{code}", "shape", failure(code)) for code in (2, 9, 14, 51091)),
]
READ_ERRORS = [case for case in ERRORS if case.kind != "unconfirmed"]  # no read has a write concern


# --- the injection -----------------------------------------------------------------------------------


@pytest.fixture
def inject(monkeypatch):
    """inject(method, case): the estimations collection's ``method`` fails with the case's error
    (applied first if the case is "unconfirmed"); "read": every read of the collection fails."""

    def install(method: str, case: Case) -> None:
        if method == "read":
            real_next = mongomock.collection.Cursor.__next__

            def failing_next(cursor):
                if cursor.collection.name == COLLECTION:
                    raise case.make()
                return real_next(cursor)

            monkeypatch.setattr(mongomock.collection.Cursor, "__next__", failing_next)
            return
        real = getattr(mongomock.collection.Collection, method)

        def failing(collection, *args, **kwargs):
            if collection.name != COLLECTION:
                return real(collection, *args, **kwargs)
            if case.kind == "unconfirmed":
                real(collection, *args, **kwargs)  # applied on the primary, not confirmed by a majority
            raise case.make()

        monkeypatch.setattr(mongomock.collection.Collection, method, failing)

    return install


def created(api) -> dict:
    response = post_json(api, {"bestseller_rank": 400, "category": "books"})
    assert response.status_code == 201, response.json()
    return response.json()


def edit(api, method: str, document: dict, body: dict | None = None, if_match: str | None = None):
    data = None if body is None else json.dumps(body)
    headers = {"HTTP_IF_MATCH": if_match or document["_etag"]}
    return getattr(api, method)(
        f"/estimations/{document['_id']}", data=data, content_type="application/json", **headers
    )


def assert_answer(response, status: int, message: str) -> None:
    body = response.json()
    assert response.status_code == status, body
    assert response["Content-Type"].startswith("application/json")
    assert body == {"_status": "ERR", "_error": {"code": status, "message": message}}


# --- the table -----------------------------------------------------------------------------------------


def expected_write(case: Case, unknown: str) -> tuple[int, str]:
    return 503, MSG_DATABASE_UNAVAILABLE if case.kind == "not sent" else unknown


def expected_read(case: Case, *, query: bool) -> tuple[int, str]:
    if case.kind == "shape" and query:
        return 400, f"Bad 'where' parameter: {MSG_QUERY_REFUSED}"
    if case.kind in ("not sent", "lost"):
        return 503, MSG_DATABASE_UNAVAILABLE
    return 503, MSG_DATABASE_REFUSED  # the server's failure, not the client's: nothing was changed


@pytest.mark.parametrize("case", ERRORS, ids=lambda case: case.name)
class TestWrites:
    def test_post(self, api, mongo_db, inject, case):
        inject("insert_one", case)

        response = post_json(api, {"bestseller_rank": 400, "category": "books"})

        # Compensated: whatever reached the database was removed again, and the message says so
        assert_answer(response, *expected_write(case, MSG_INSERT_REMOVED))
        assert mongo_db[COLLECTION].count_documents({}) == 0

    def test_post_with_an_idempotency_key(self, api, mongo_db, inject, case):
        inject("insert_one", case)

        response = post_json(api, {"bestseller_rank": 400, "category": "books"}, HTTP_IDEMPOTENCY_KEY="k-1")

        # Kept for the retry with the same key, which the message asks for
        assert_answer(response, *expected_write(case, MSG_INSERT_UNKNOWN_KEYED))
        assert mongo_db[COLLECTION].count_documents({}) == (1 if case.kind == "unconfirmed" else 0)

    def test_bulk_post(self, api, mongo_db, inject, case):
        inject("insert_many", case)

        response = post_json(api, [{"bestseller_rank": 400, "category": "books"}, {"bestseller_rank": 9}])

        assert_answer(response, *expected_write(case, MSG_INSERT_REMOVED))
        assert mongo_db[COLLECTION].count_documents({}) == 0

    @pytest.mark.parametrize("method", ["put", "patch"])
    def test_put_and_patch(self, api, mongo_db, inject, case, method):
        document = created(api)
        inject("find_one_and_replace", case)

        response = edit(api, method, document, {"bestseller_rank": 401, "category": "books"})

        assert_answer(response, *expected_write(case, MSG_UPDATE_UNKNOWN))

    def test_delete(self, api, mongo_db, inject, case):
        document = created(api)
        inject("delete_one", case)

        response = edit(api, "delete", document)

        assert_answer(response, *expected_write(case, MSG_DELETE_UNKNOWN))


@pytest.mark.parametrize("case", READ_ERRORS, ids=lambda case: case.name)
class TestReads:
    def test_get_one(self, api, inject, case):
        document = created(api)
        inject("read", case)

        assert_answer(api.get(f"/estimations/{document['_id']}"), *expected_read(case, query=False))

    def test_list(self, api, inject, case):
        created(api)
        inject("read", case)

        assert_answer(api.get('/estimations?where={"bestseller_rank": 400}'), *expected_read(case, query=True))

    def test_export(self, api, inject, case):
        created(api)
        inject("read", case)

        response = api.get("/estimations", HTTP_ACCEPT="text/csv")

        assert_answer(response, *expected_read(case, query=True))  # in the envelope, not as CSV

    @pytest.mark.parametrize("method", ["put", "patch"])
    def test_the_read_before_an_update_changes_nothing(self, api, inject, case, method):
        document = created(api)
        inject("read", case)

        response = edit(api, method, document, {"bestseller_rank": 401, "category": "books"})

        # The write was never sent: whatever the error, the answer says nothing was changed
        assert_answer(response, *expected_read(case, query=False))


def test_the_table_covers_every_kind_and_the_shape_codes_it_names():
    kinds = {case.kind for case in ERRORS}
    assert kinds == {"not sent", "lost", "unconfirmed", "server", "shape"}
    shape = {int(case.name.rsplit("-", 1)[1]) for case in ERRORS if case.kind == "shape"}
    assert shape <= QUERY_SHAPE_CODES
    server = {case.name.rsplit("-", 1)[1] for case in ERRORS if case.kind == "server"}
    assert not {str(code) for code in QUERY_SHAPE_CODES} & server


def test_nothing_is_said_to_be_unchanged_for_a_write_that_was_sent():
    """The messages that say nothing changed are only for writes known not to be applied."""
    unknown = [MSG_WRITE_UNKNOWN, MSG_UPDATE_UNKNOWN, MSG_DELETE_UNKNOWN, MSG_INSERT_UNKNOWN_KEYED]
    assert all("may have" in message or "is not known" in message for message in unknown)
    assert all("nothing was changed" not in message for message in unknown)
    for case in ERRORS:
        answer = database_failure(case.make(), write=True)
        if case.kind == "not sent":
            assert answer.detail == MSG_DATABASE_UNAVAILABLE, case.name
        else:
            assert answer.detail == MSG_WRITE_UNKNOWN, case.name
    refused = WriteError("document failed validation", 121, {"code": 121})
    assert database_failure(refused, write=True).detail == MSG_DATABASE_REFUSED


# --- the advice, followed ---------------------------------------------------------------------------


def test_a_put_not_confirmed_is_seen_by_its_etag_and_its_retry_with_if_match_changes_nothing_twice(
    api, mongo_db, inject, monkeypatch
):
    document = created(api)
    inject("find_one_and_replace", next(case for case in ERRORS if case.name == "WTimeoutError"))

    response = edit(api, "put", document, {"bestseller_rank": 401, "category": "books"})
    assert_answer(response, 503, MSG_UPDATE_UNKNOWN)

    # GET the document, as the message says: its ETag is no longer the one sent, so the change was made
    current = api.get(f"/estimations/{document['_id']}").json()
    assert current["_etag"] != document["_etag"] and current["bestseller_rank"] == 401
    # and the retry with the same If-Match, the database answering again, cannot make a change twice
    monkeypatch.undo()
    retry = edit(api, "put", document, {"bestseller_rank": 402, "category": "books"})
    assert retry.status_code == 412, retry.json()
    assert mongo_db[COLLECTION].find_one()["bestseller_rank"] == 401


def test_a_delete_not_confirmed_is_seen_as_a_404(api, inject):
    document = created(api)
    inject("delete_one", next(case for case in ERRORS if case.name == "WriteConcernError-11602"))

    assert_answer(edit(api, "delete", document), 503, MSG_DELETE_UNKNOWN)

    assert api.get(f"/estimations/{document['_id']}").status_code == 404


def test_a_keyed_post_not_confirmed_is_returned_once_by_its_retry(api, mongo_db, monkeypatch):
    real = mongomock.collection.Collection.insert_one
    calls = []

    def unconfirmed_once(collection, document, *args, **kwargs):
        result = real(collection, document, *args, **kwargs)
        if collection.name == COLLECTION and not calls:
            calls.append(document["_id"])
            raise WTimeoutError("waiting for replication timed out", 64, {})
        return result

    monkeypatch.setattr(mongomock.collection.Collection, "insert_one", unconfirmed_once)
    body = {"bestseller_rank": 400, "category": "books"}

    assert_answer(post_json(api, body, HTTP_IDEMPOTENCY_KEY="k-2"), 503, MSG_INSERT_UNKNOWN_KEYED)
    retry = post_json(api, body, HTTP_IDEMPOTENCY_KEY="k-2")

    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true", retry.json()
    assert retry.json()["_id"] == str(calls[0])
    assert mongo_db[COLLECTION].count_documents({IDEMPOTENCY_FIELD: {"$exists": True}}) == 1


def test_a_request_budget_the_database_cannot_count_changes_nothing(api, settings, monkeypatch):
    """The budget is counted (in MongoDB, with several hosts) before the request does anything: its
    failure says nothing was done, also on a PUT."""
    from core import throttling

    document = created(api)

    class Down:
        def hit(self, key, period):
            raise NetworkTimeout("timed out")

        peek = hit

    settings.THROTTLE_ANON_RATE = "1000/min"
    monkeypatch.setattr(throttling, "counters", lambda: Down())

    response = edit(api, "put", document, {"bestseller_rank": 401, "category": "books"})

    assert_answer(response, 503, throttling.MSG_MONGO_COUNTERS_DOWN)
