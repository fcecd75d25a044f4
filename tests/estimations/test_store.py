"""The PyMongo store: indexes, all-or-nothing bulk insert, atomic conditional writes."""

from __future__ import annotations

import mongomock
import pytest
from bson import ObjectId
from pymongo.errors import BulkWriteError, ExecutionTimeout, OperationFailure

from core.errors import MSG_INSERT_PENDING, MSG_INSERT_UNKNOWN_KEYED, BadQuery, ServiceUnavailable
from estimations.documents import stamp
from estimations.list_query import ListQuery
from estimations.store import INDEXES, EstimationStore, Outcome, estimation_store, parse_id
from tests.helpers import known_departure, new_document


@pytest.fixture
def store(mongo_db) -> EstimationStore:
    return estimation_store()


def test_ensure_indexes_creates_every_index_and_is_idempotent():
    collection = mongomock.MongoClient().db.estimations
    store = EstimationStore(collection)

    store.ensure_indexes()
    store.ensure_indexes()

    keys = {name: info["key"] for name, info in collection.index_information().items()}
    for index in INDEXES:
        assert list(keys[index.document["name"]]) == list(index.document["key"].items())
    assert len(keys) == len(INDEXES) + 1  # and _id's own


def test_an_index_serves_the_default_order_in_both_directions():
    from estimations.query import DEFAULT_SORT
    from estimations.sorting import parse_sort

    default = parse_sort(None)
    keys = [list(index.document["key"].items()) for index in INDEXES]

    assert default == list(DEFAULT_SORT) == [("_created", 1), ("_id", 1)]
    assert default in keys  # read forwards; backwards for [("_created", -1), ("_id", -1)]
    assert parse_sort("-_created") == [("_created", -1), ("_id", -1)]


def test_a_bulks_generated_ids_ascend_in_list_order(store, monkeypatch):
    # Given the ids' counter wrapping in the middle of a bulk (ObjectId() made in this order)
    made = iter([ObjectId(f"65000000aaaaaaaaaa{counter:06x}") for counter in (0xFFFFFE, 0xFFFFFF, 0x000000, 0x000001)])
    monkeypatch.setattr("estimations.store.ObjectId", lambda: next(made))

    stored = store.insert_many([new_document(rank) for rank in (1, 2, 3, 4)])

    ids = [document["_id"] for document in stored]
    assert [document["bestseller_rank"] for document in stored] == [1, 2, 3, 4] and ids == sorted(ids)


def test_every_sortable_field_has_an_index_ending_in_id():
    from estimations.fields import SORTABLE_FIELDS

    led_by = {next(iter(index.document["key"])) for index in INDEXES if list(index.document["key"])[-1] == "_id"}

    assert set(SORTABLE_FIELDS) - {"_id"} <= led_by


class TestRetention:
    """ESTIMATION_TTL_DAYS as a MongoDB TTL index on _expires_from (see estimations.documents)."""

    def test_days_make_a_ttl_index_with_that_expiry(self, store):
        store.ensure_retention(30)

        name, info = store.retention_index()
        assert info["expireAfterSeconds"] == 30 * 86_400

    def test_ensure_indexes_applies_the_setting_and_again_is_a_no_op(self, store):
        store.ensure_indexes(ttl_days=2)
        indexes = store.collection.index_information()
        store.ensure_indexes(ttl_days=2)

        assert store.retention_index()[1]["expireAfterSeconds"] == 2 * 86_400
        assert store.collection.index_information() == indexes

    @pytest.mark.integration
    def test_a_changed_setting_changes_the_expiry_in_place(self, store, store_kind, on_nx_27017):
        if store_kind == "mongomock":
            pytest.skip("mongomock does not implement collMod: the next test checks the command sent")
        store.ensure_retention(30)
        known_departure(on_nx_27017, "collMod does not change an index's expireAfterSeconds")

        store.ensure_retention(7)

        assert store.retention_index()[1]["expireAfterSeconds"] == 7 * 86_400

    def test_a_changed_setting_sends_collmod_for_the_existing_index(self, monkeypatch):
        store = EstimationStore(mongomock.MongoClient().db.estimations)
        store.ensure_retention(30)
        name = store.retention_index()[0]
        sent = []
        monkeypatch.setattr(type(store.collection.database), "command", lambda self, command: sent.append(command))

        store.ensure_retention(7)

        assert sent == [{"collMod": "estimations", "index": {"name": name, "expireAfterSeconds": 7 * 86_400}}]

    def test_zero_days_drops_the_index(self, store):
        store.ensure_retention(30)

        assert store.ensure_retention(0) is None
        assert store.retention_index() is None

    def test_without_retention_there_is_no_ttl_index(self, store):
        store.ensure_indexes()

        assert store.retention_index() is None


@pytest.mark.parametrize(
    "raw", ["", "abc", None, 12, "6b0aa8a7e49da0a6640161e", "g" * 24, ["6b0aa8a7e49da0a6640161ec"]]
)
def test_parse_id_rejects_anything_malformed(raw):
    assert parse_id(raw) is None


def test_get_of_a_malformed_id_is_none_without_a_query(store):
    assert store.get("not-an-id") is None


class TestInsertMany:
    def test_inserts_all_in_order(self, store):
        documents = store.insert_many([new_document(rank) for rank in (3, 1, 2)])

        assert [document["bestseller_rank"] for document in documents] == [3, 1, 2]
        assert store.collection.count_documents({}) == 3

    def test_a_failure_part_way_leaves_nothing_behind(self, store):
        # Given a batch whose third document collides with one already stored
        existing = store.insert(new_document(99))
        batch = [new_document(1), new_document(2), {**new_document(3), "_id": existing["_id"]}, new_document(4)]

        # When the server stores the first two and refuses the third
        with pytest.raises(BulkWriteError):
            store.insert_many(batch)

        # Then the two it stored are removed again, and what was there before stays
        assert sorted(d["bestseller_rank"] for d in store.collection.find()) == [99]


class TestConditionalWrites:
    def test_replace_with_the_current_etag(self, store):
        document = store.insert(new_document())
        replacement = {**stamp({"bestseller_rank": 5, "category": "books"}, new=False), "_id": document["_id"]}

        assert store.replace_if_match(replacement, [document["_etag"]]) is Outcome.DONE
        assert store.get(str(document["_id"]))["bestseller_rank"] == 5

    def test_replace_with_a_stale_etag_or_a_missing_id(self, store):
        document = store.insert(new_document())
        replacement = {**stamp({"bestseller_rank": 5}, new=False), "_id": document["_id"]}

        assert store.replace_if_match(replacement, ["stale"]) is Outcome.STALE
        assert store.replace_if_match({**replacement, "_id": ObjectId()}, None) is Outcome.NOT_FOUND
        assert store.get(str(document["_id"]))["bestseller_rank"] == 10

    def test_delete_outcomes(self, store):
        document = store.insert(new_document())
        object_id = str(document["_id"])

        assert store.delete_if_match(object_id, ["stale"]) is Outcome.STALE
        assert store.delete_if_match("junk", None) is Outcome.NOT_FOUND
        assert store.delete_if_match(object_id, ["other", document["_etag"]]) is Outcome.DONE
        assert store.delete_if_match(object_id, None) is Outcome.NOT_FOUND


class TestReads:
    def query(self, **overrides) -> ListQuery:
        return ListQuery(
            **{"filter": {}, "sort": [("_id", 1)], "projection": None, "page": 1, "max_results": 10, **overrides}
        )

    def test_refused_query_is_a_bad_query(self, store, monkeypatch):
        def refuse(*args, **kwargs):
            raise OperationFailure("unknown operator", code=2)

        monkeypatch.setattr(store.reads, "find", refuse)

        with pytest.raises(BadQuery):
            store.find(self.query())

    def test_server_timeout_is_not_the_clients_fault(self, store, monkeypatch):
        def too_slow(*args, **kwargs):
            raise ExecutionTimeout("operation exceeded time limit", code=50)

        monkeypatch.setattr(store.reads, "count_documents", too_slow)

        with pytest.raises(ExecutionTimeout):
            store.count({"category": "books"})

    def test_unfiltered_count_comes_from_metadata(self, store, monkeypatch):
        store.insert_many([new_document(rank) for rank in range(1, 6)])
        calls = []
        real = store.collection.estimated_document_count

        def spy(*args, **kwargs):
            calls.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(store.reads, "estimated_document_count", spy)

        assert store.count({}) == 5
        assert len(calls) == 1
        assert store.count({"bestseller_rank": {"$gt": 2}}) == 3
        assert len(calls) == 1


def test_a_lost_connection_removes_only_the_ids_the_store_generated(store, monkeypatch):
    from pymongo.errors import AutoReconnect

    existing = store.insert(new_document(99))
    real_insert_many = store.collection.insert_many

    def store_some_then_drop(documents, ordered=True):
        real_insert_many(documents[:2], ordered=ordered)
        raise AutoReconnect("connection closed")

    monkeypatch.setattr(store.collection, "insert_many", store_some_then_drop)

    with pytest.raises(AutoReconnect):
        store.insert_many([new_document(1), new_document(2), {**new_document(3), "_id": existing["_id"]}])

    assert [d["bestseller_rank"] for d in store.collection.find()] == [99]


def test_an_insert_that_may_have_stored_before_failing_is_removed_when_the_database_answers(store, monkeypatch):
    from pymongo.errors import AutoReconnect

    from estimations.store import IDEMPOTENCY_FIELD

    real_insert_one = store.collection.insert_one
    calls = {"n": 0}

    def store_then_lose_the_answer(document, *args, **kwargs):
        calls["n"] += 1
        real_insert_one(document, *args, **kwargs)
        if calls["n"] <= 2:
            raise AutoReconnect("connection closed before the reply")

    monkeypatch.setattr(store.collection, "insert_one", store_then_lose_the_answer)
    monkeypatch.setattr(store.collection, "delete_many", _fails_once(store.collection.delete_many))

    # Given two inserts whose answers were lost (one plain, one under an idempotency key), each a 503
    # that says what became of it: removed once the database answers (its delete failed here), or left
    # to the retry with its key
    with pytest.raises(ServiceUnavailable) as plain:
        store.insert(new_document(1))
    assert plain.value.detail == MSG_INSERT_PENDING and isinstance(plain.value.__cause__, AutoReconnect)
    with pytest.raises(ServiceUnavailable) as keyed:
        store.insert({**new_document(2), IDEMPOTENCY_FIELD: "anonymous:k"})
    assert keyed.value.detail == MSG_INSERT_UNKNOWN_KEYED

    # When the next write goes through
    store.insert(new_document(3))

    # Then the plain one is gone, the keyed one waits for its retry, and the new one stands
    assert sorted(d["bestseller_rank"] for d in store.collection.find()) == [2, 3]


def _fails_once(delete_many):
    state = {"failed": False}

    def delete(*args, **kwargs):
        if not state["failed"]:
            state["failed"] = True
            from pymongo.errors import AutoReconnect

            raise AutoReconnect("still down")
        return delete_many(*args, **kwargs)

    return delete


class TestKeysetRanges:
    """query.with_keyset against the store: each page after the last one's item, nulls where MongoDB puts them."""

    @pytest.mark.parametrize("direction", [1, -1])
    def test_pages_after_follow_the_sort_with_missing_values(self, direction):
        from estimations.keyset import encode_after, parse_after

        store = EstimationStore(mongomock.MongoClient().db.estimations)
        documents = [new_document(rank) for rank in range(1, 21)]
        for n, document in enumerate(documents):
            document["estimated_sales"] = n % 3  # ties, broken by _id
        for document in documents[::4]:
            del document["estimated_sales"]  # missing: sorted as null, before every value
        store.collection.insert_many(documents)
        sort = [("estimated_sales", direction), ("_id", direction)]
        ordered = list(store.collection.find().sort(sort))
        whole = [document["_id"] for document in ordered]
        missing_first = ordered[:5] if direction == 1 else ordered[-5:]
        assert all("estimated_sales" not in document for document in missing_first)

        seen, after, page = [], None, 1
        while True:
            query = ListQuery(filter={}, sort=sort, projection=None, page=page, max_results=3, after=after)
            found = store.find(query)
            seen += [document["_id"] for document in found]
            if len(found) < 3:
                break
            after, page = parse_after(encode_after(sort, found[-1], page + 1), sort)

        assert seen == whole and len(whole) == 20
