"""Concurrent single inserts share one insert_many; each caller still gets its own outcome."""

from __future__ import annotations

import threading
import time

import mongomock
import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError

from core.errors import MSG_INSERT_REMOVED, MSG_INSERT_UNKNOWN_KEYED, ServiceUnavailable
from core.runtime import group_insert
from core.runtime.group_insert import GroupInsert, NotSent
from estimations.store import IDEMPOTENCY_FIELD, estimation_store
from tests.helpers import new_document, queue_length

WAIT = 10  # seconds: a thread still waiting after this is stuck


class Spy:
    """A collection whose first write waits until ``release`` is set, counting the commands it gets."""

    def __init__(self, collection):
        self.collection = collection
        self.release = threading.Event()
        self.commands: list[tuple[str, list]] = []

    def insert_one(self, document):
        self.commands.append(("insert_one", [document]))
        if len(self.commands) == 1:
            assert self.release.wait(WAIT)
        return self.collection.insert_one(document)

    def insert_many(self, documents, ordered=True):
        assert ordered is False  # unordered: one refused document does not stop the others
        self.commands.append(("insert_many", list(documents)))
        if len(self.commands) == 1:
            assert self.release.wait(WAIT)
        return self.collection.insert_many(documents, ordered=ordered)


def insert_in_threads(group: GroupInsert, documents: list[dict], **kwargs) -> dict[int, BaseException | None]:
    """Start one thread per document; their outcomes (None: stored) by rank once all have finished."""
    outcomes: dict[int, BaseException | None] = {}

    def insert(document):
        try:
            group.insert(document, **kwargs)
            outcomes[document["bestseller_rank"]] = None
        except BaseException as exc:  # noqa: BLE001 - the outcome is what the test looks at
            outcomes[document["bestseller_rank"]] = exc

    threads = [threading.Thread(target=insert, args=(document,), daemon=True) for document in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "an insert never returned"
    return outcomes


def wait_until(condition) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def hold_first_write(group: GroupInsert, spy: Spy, first: dict, queued: list[dict], **kwargs):
    """The first document's write waits at the database while ``queued`` arrive; then all go on."""
    result: dict = {}
    leader = threading.Thread(target=lambda: result.update(insert_in_threads(group, [first], **kwargs)))
    leader.start()
    wait_until(lambda: spy.commands)
    followers = threading.Thread(target=lambda: result.update(insert_in_threads(group, queued, **kwargs)))
    followers.start()
    wait_until(lambda: queue_length(group) == len(queued))
    spy.release.set()
    leader.join(WAIT)
    followers.join(WAIT)
    return result


def documents(*ranks: int, **fields) -> list[dict]:
    return [{"_id": ObjectId(), "bestseller_rank": rank, **fields} for rank in ranks]


def test_a_lone_insert_goes_at_once_as_insert_one():
    spy = Spy(mongomock.MongoClient().db.c)
    spy.release.set()
    group = GroupInsert(spy)

    group.insert(documents(1)[0])

    assert [name for name, _ in spy.commands] == ["insert_one"]
    assert spy.collection.count_documents({}) == 1


def test_with_the_switch_off_every_insert_is_its_own_insert_one_after_before_write(monkeypatch):
    from core import runtime

    monkeypatch.setattr(runtime, "OFF", frozenset({"group_insert"}))
    spy = Spy(mongomock.MongoClient().db.c)
    spy.release.set()
    group = GroupInsert(spy)
    swept: list[str] = []

    for document in documents(1, 2):
        group.insert(document, before_write=lambda: swept.append("before"))

    assert [name for name, _ in spy.commands] == ["insert_one", "insert_one"]
    assert swept == ["before", "before"] and spy.collection.count_documents({}) == 2


def test_inserts_that_arrive_during_a_write_go_together_as_one_insert_many():
    spy = Spy(mongomock.MongoClient().db.c)
    group = GroupInsert(spy)

    outcomes = hold_first_write(group, spy, documents(1)[0], documents(2, 3, 4))

    assert outcomes == {1: None, 2: None, 3: None, 4: None}
    assert [(name, sorted(d["bestseller_rank"] for d in docs)) for name, docs in spy.commands] == [
        ("insert_one", [1]),
        ("insert_many", [2, 3, 4]),
    ]
    assert sorted(d["bestseller_rank"] for d in spy.collection.find()) == [1, 2, 3, 4]
    assert queue_length(group) == 0


def test_a_write_that_hangs_holds_those_queued_behind_it_no_longer_than_their_wait():
    """A database that stops answering: the write ahead hangs (here until released), and the requests
    queued behind it leave after ``wait_seconds``, told their document was never sent."""
    spy = Spy(mongomock.MongoClient().db.c)
    group = GroupInsert(spy, wait_seconds=0.3)
    leader = threading.Thread(target=group.insert, args=(documents(1)[0],), daemon=True)
    leader.start()
    wait_until(lambda: spy.commands)
    started = time.monotonic()

    outcomes = insert_in_threads(group, documents(2, 3))

    assert time.monotonic() - started < WAIT / 2  # bounded: released only afterwards
    assert all(isinstance(outcome, NotSent) for outcome in outcomes.values()), outcomes
    assert queue_length(group) == 0
    spy.release.set()
    leader.join(WAIT)
    # Never sent: only the hung write's document is stored, and the next insert goes through at once
    group.insert(documents(4)[0])
    assert sorted(d["bestseller_rank"] for d in spy.collection.find()) == [1, 4]


def test_a_duplicate_in_a_batch_is_refused_to_its_own_caller_only():
    collection = mongomock.MongoClient().db.c
    collection.create_index("key", unique=True, sparse=True)  # as the idempotency index
    collection.insert_one({"key": "taken"})
    spy = Spy(collection)
    group = GroupInsert(spy)
    queued = documents(2, 4) + documents(3, key="taken")

    outcomes = hold_first_write(group, spy, documents(1)[0], queued)

    assert isinstance(outcomes.pop(3), DuplicateKeyError)
    assert outcomes == {1: None, 2: None, 4: None}
    assert sorted(d.get("bestseller_rank", 0) for d in collection.find()) == [0, 1, 2, 4]


def test_a_write_concern_error_fails_every_caller_of_the_batch():
    class WriteConcernFails(Spy):
        def insert_many(self, documents, ordered=True):
            super().insert_many(documents, ordered)
            raise BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "timeout"}]})

    spy = WriteConcernFails(mongomock.MongoClient().db.c)
    group = GroupInsert(spy)

    outcomes = hold_first_write(group, spy, documents(1)[0], documents(2, 3))

    assert outcomes[1] is None
    assert isinstance(outcomes[2], BulkWriteError) and isinstance(outcomes[3], BulkWriteError)


def test_before_write_runs_once_per_command_in_the_writing_thread():
    spy = Spy(mongomock.MongoClient().db.c)
    group = GroupInsert(spy)
    calls: list[int] = []

    hold_first_write(group, spy, documents(1)[0], documents(2, 3, 4), before_write=lambda: calls.append(1))

    assert len(calls) == len(spy.commands) == 2


def test_after_a_failed_batch_the_next_inserts_still_go_through():
    class FailsOnce(Spy):
        def insert_many(self, documents, ordered=True):
            super().insert_many(documents, ordered)
            raise AutoReconnect("connection closed")

    spy = FailsOnce(mongomock.MongoClient().db.c)
    group = GroupInsert(spy)

    outcomes = hold_first_write(group, spy, documents(1)[0], documents(2, 3))
    group.insert(documents(5)[0])

    assert isinstance(outcomes[2], AutoReconnect) and isinstance(outcomes[3], AutoReconnect)
    assert spy.collection.count_documents({"bestseller_rank": 5}) == 1
    assert queue_length(group) == 0


def test_the_writer_gives_way_first_so_the_requests_already_read_join_its_batch(monkeypatch):
    spy = Spy(mongomock.MongoClient().db.c)
    spy.release.set()
    group = GroupInsert(spy)
    others: list[threading.Thread] = []

    def give_way():  # as gevent does: the worker's other requests in hand run up to the queue
        if not others:
            others.append(threading.Thread(target=insert_in_threads, args=(group, documents(2, 3, 4))))
            others[0].start()
            wait_until(lambda: queue_length(group) == 4)  # the writer's own document and theirs

    monkeypatch.setattr(group_insert, "give_way", give_way)
    group.insert(documents(1)[0])
    others[0].join(WAIT)

    assert [(name, sorted(d["bestseller_rank"] for d in docs)) for name, docs in spy.commands] == [
        ("insert_many", [1, 2, 3, 4])
    ]


class Stopped(BaseException):
    """What a greenlet killed as its worker stops gets (GreenletExit is a BaseException too)."""


def test_a_writer_stopped_while_giving_way_hands_the_lead_on_and_nobody_waits_for_it(monkeypatch):
    spy = Spy(mongomock.MongoClient().db.c)
    spy.release.set()
    group = GroupInsert(spy)
    others: list[threading.Thread] = []
    outcomes: dict = {}

    def give_way():
        if not others:  # the first writer: two requests queue behind it, then it is stopped
            others.append(
                threading.Thread(target=lambda: outcomes.update(insert_in_threads(group, documents(2, 3))), daemon=True)
            )
            others[0].start()
            wait_until(lambda: queue_length(group) == 3)
            raise Stopped

    monkeypatch.setattr(group_insert, "give_way", give_way)
    with pytest.raises(Stopped):
        group.insert(documents(1)[0])
    others[0].join(WAIT)

    assert outcomes == {2: None, 3: None}  # without the hand-on: "an insert never returned"
    assert [(name, sorted(d["bestseller_rank"] for d in docs)) for name, docs in spy.commands] == [
        ("insert_many", [2, 3])
    ]
    assert queue_length(group) == 0
    group.insert(documents(4)[0])  # and the next one is not stuck behind a writer that never came
    assert spy.collection.count_documents({}) == 3


class TestThroughTheStore:
    @pytest.fixture
    def store(self, mongo_db):
        return estimation_store()

    def test_many_threads_each_get_their_document_stored_once(self, store):
        ranks = range(1, 401)
        outcomes: dict[int, object] = {}

        def insert(chunk):
            for rank in chunk:
                outcomes[rank] = store.insert(new_document(rank))["_id"]

        threads = [threading.Thread(target=insert, args=(ranks[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive()

        stored = {d["bestseller_rank"]: d["_id"] for d in store.collection.find({}, {"bestseller_rank": 1})}
        assert stored == outcomes
        assert len(stored) == 400

    def test_a_lost_batch_leaves_none_of_its_plain_documents(self, store):
        class StoresThenLosesTheAnswer(Spy):
            def insert_many(self, documents, ordered=True):
                super().insert_many(documents, ordered)
                raise AutoReconnect("connection closed before the reply")

        spy = StoresThenLosesTheAnswer(store.collection)
        store.inserts.collection = spy
        group = store.inserts
        leader_doc = new_document(1)
        queued = [new_document(2), {**new_document(3), IDEMPOTENCY_FIELD: "anonymous:k"}]
        outcomes = {}

        def run(document):
            try:
                store.insert(document)
                outcomes[document["bestseller_rank"]] = None
            except ServiceUnavailable as exc:  # the store's 503, saying what became of the document
                outcomes[document["bestseller_rank"]] = exc

        leader = threading.Thread(target=run, args=(leader_doc,))
        leader.start()
        wait_until(lambda: spy.commands)
        followers = [threading.Thread(target=run, args=(document,)) for document in queued]
        for thread in followers:
            thread.start()
        wait_until(lambda: queue_length(group) == 2)
        spy.release.set()
        for thread in [leader, *followers]:
            thread.join(WAIT)

        assert outcomes[1] is None
        assert isinstance(outcomes[2].__cause__, AutoReconnect) and isinstance(outcomes[3].__cause__, AutoReconnect)
        assert outcomes[2].detail == MSG_INSERT_REMOVED  # removed again at once: nothing was stored
        assert outcomes[3].detail == MSG_INSERT_UNKNOWN_KEYED  # left to the retry with its key
        # The plain one is removed at once; the keyed one waits for its retry (as for a lone insert)
        assert sorted(d["bestseller_rank"] for d in store.collection.find()) == [1, 3]

    def test_a_taken_idempotency_key_mid_batch_refuses_only_that_document(self, store):
        store.collection.insert_one({IDEMPOTENCY_FIELD: "anonymous:taken"})
        spy = Spy(store.collection)
        group = GroupInsert(spy)
        queued = [
            *documents(2, **{IDEMPOTENCY_FIELD: "anonymous:a"}),
            *documents(3, **{IDEMPOTENCY_FIELD: "anonymous:taken"}),
            *documents(4, **{IDEMPOTENCY_FIELD: "anonymous:b"}),
        ]

        outcomes = hold_first_write(group, spy, documents(1)[0], queued)

        assert isinstance(outcomes.pop(3), DuplicateKeyError)
        assert outcomes == {1: None, 2: None, 4: None}
        assert [name for name, _ in spy.commands] == ["insert_one", "insert_many"]
        assert sorted(d.get("bestseller_rank", 0) for d in store.collection.find()) == [0, 1, 2, 4]
