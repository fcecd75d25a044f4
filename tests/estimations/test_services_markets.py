"""estimations/services.py with issue 21's inputs, on a fake model and a mongomock store: the marketplace an
estimate is made in, a history's estimate and gaps, the revenue a price gives, what an update keeps, the
idempotency digest; and the backfill that gives old estimations their marketplace."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import mongomock
import pytest

from core.errors import ValidationFailed
from estimations import store_indexes
from estimations.documents import compute_etag
from estimations.services import _input_digest, estimation_create, estimation_create_many, estimation_update
from estimations.store import EstimationStore
from tests.helpers import FakeModel

NOW = datetime.now(UTC).replace(microsecond=0)


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def store() -> EstimationStore:
    store = EstimationStore(mongomock.MongoClient(tz_aware=True).db.estimations)
    store.ensure_indexes()
    return store


def create(store, **data):
    return estimation_create(store=store, estimator=FakeModel(), data=data)[0]


def patch(store, document, **data):
    return estimation_update(
        store=store, estimator=FakeModel(), estimation_id=str(document["_id"]), if_match=None, data=data, partial=True
    )


def test_the_marketplace_is_the_default_or_the_one_sent_and_the_estimate_is_made_in_it(store, settings):
    settings.DEFAULT_CATEGORY = "books"

    assert create(store, bestseller_rank=100)["marketplace"] == "us"
    document = create(store, bestseller_rank=100, marketplace="de")
    assert (document["marketplace"], document["estimated_sales"]) == ("de", 5_000)
    assert "estimated_daily_sales" not in document  # only a rank history's answer carries it


def test_an_unknown_marketplace_or_a_category_it_lacks_stores_nothing(store):
    with pytest.raises(ValidationFailed) as unknown:
        create(store, bestseller_rank=100, marketplace="jp")
    with pytest.raises(ValidationFailed) as lacking:
        create(store, bestseller_rank=100, marketplace="de", category="toys_games")

    assert unknown.value.issues == {"marketplace": "unallowed value 'jp': known marketplaces are de, us"}
    assert lacking.value.issues == {
        "category": "unallowed value 'toys_games' in marketplace 'de': its categories are books"
    }
    assert store.collection.count_documents({}) == 0


def test_a_history_is_estimated_over_time_and_its_gaps_said(store):
    samples = [{"at": at(100), "rank": 100}, {"at": at(99), "rank": 200}, {"at": at(1), "rank": 400}]

    document = create(store, rank_history=samples, category="books")

    assert document["bestseller_rank"] == 400
    assert document["estimated_sales"] == (10_000 + 5_000 + 2_500) // 3
    stored = store.collection.find_one({"_id": document["_id"]})
    assert [sample["at"] for sample in stored["rank_history"]] == [
        datetime.fromisoformat(sample["at"]) for sample in samples
    ]
    assert stored["rank_history_gaps"] == [
        {"from": stored["rank_history"][1]["at"], "to": stored["rank_history"][2]["at"]}
    ]


def test_a_history_without_gaps_says_none(store):
    document = create(store, rank_history=[{"at": at(3), "rank": 100}, {"at": at(1), "rank": 100}], category="books")

    assert "rank_history_gaps" not in document and document["estimated_sales"] == 10_000


def test_a_price_gives_the_revenue_in_the_marketplaces_currency(store):
    document = create(store, bestseller_rank=300, category="books", marketplace="de", price=19.99)

    assert (document["currency"], document["estimated_sales"]) == ("EUR", 1666)
    assert document["estimated_revenue"] == 33_303.34  # 1666 x 19.99
    assert (document["estimated_revenue_low"], document["estimated_revenue_high"]) == (16_651.67, 66_606.68)


def test_a_price_change_keeps_the_estimate_and_recomputes_the_revenue(store):
    document = create(store, bestseller_rank=300, category="books", price=10)
    store.collection.update_one({"_id": document["_id"]}, {"$set": {"model_version": 3}})  # an older model's

    changed = patch(store, document, price=2.5)
    assert changed["model_version"] == 3 and changed["estimated_sales"] == document["estimated_sales"]
    assert changed["estimated_revenue"] == 3333 * 2.5
    removed = patch(store, changed, price=None)
    assert not {"price", "currency", "estimated_revenue", "estimated_revenue_low"} & set(removed)
    assert removed["model_version"] == 3


def test_a_marketplace_change_is_a_new_estimate(store):
    document = create(store, bestseller_rank=300, category="books", price=10)
    store.collection.update_one({"_id": document["_id"]}, {"$set": {"model_version": 3}})

    moved = patch(store, document, marketplace="de")
    assert (moved["model_version"], moved["estimated_sales"], moved["currency"]) == (7, 1666, "EUR")
    assert moved["estimated_revenue"] == 16_660.0
    with pytest.raises(ValidationFailed) as lacking:
        patch(store, document | {"_id": moved["_id"]}, category="toys_games")
    assert "in marketplace 'de'" in lacking.value.issues["category"]


def test_a_patch_of_the_history_estimates_again_and_a_rank_that_differs_from_it_is_refused(store):
    document = create(store, bestseller_rank=100, category="books")

    changed = patch(store, document, rank_history=[{"at": at(2), "rank": 100}, {"at": at(1), "rank": 300}])
    assert (changed["bestseller_rank"], changed["estimated_sales"]) == (300, (10_000 + 3_333) // 2)
    with pytest.raises(ValidationFailed) as differs:
        patch(store, changed, bestseller_rank=50)
    assert "latest sample has rank 300" in differs.value.issues["bestseller_rank"]
    dropped = patch(store, changed, rank_history=None, bestseller_rank=50)
    assert "rank_history" not in dropped and dropped["estimated_sales"] == 20_000


def test_a_bulk_insert_mixes_snapshots_and_histories(store):
    items = [
        {"bestseller_rank": 100, "category": "books"},
        {"rank_history": [{"at": at(5), "rank": 100}, {"at": at(1), "rank": 200}], "category": "books"},
        {"bestseller_rank": 100, "category": "books", "marketplace": "de", "price": 3},
    ]

    stored = estimation_create_many(store=store, estimator=FakeModel(), items=items)
    assert [document["estimated_sales"] for document in stored] == [10_000, 7_500, 5_000]
    assert [document["bestseller_rank"] for document in stored] == [100, 200, 100]
    assert stored[2]["estimated_revenue"] == 15_000.0


def test_the_digest_of_an_old_clients_input_is_what_it_was_and_new_inputs_change_it():
    old = {"bestseller_rank": 5, "category": "books", "sku": None, "actual_sales": None, "actual_period": None}
    # main's recipe: the sha256 of the sorted JSON of these five fields, nulls included
    before = hashlib.sha256(json.dumps(old, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    assert _input_digest({**old, "marketplace": "us"}) == before
    digests = {
        _input_digest({**old, "marketplace": "de"}),
        _input_digest({**old, "marketplace": "us", "price": 3.0}),
        _input_digest({**old, "marketplace": "us", "rank_history": [{"at": NOW, "rank": 5}]}),
    }
    assert len(digests - {before}) == 3


def test_an_idempotent_retry_with_another_marketplace_is_refused(store):
    def post(**data):
        return estimation_create(store=store, estimator=FakeModel(), data=data, idempotency_key="k1")

    first, created = post(bestseller_rank=100, category="books", marketplace="de")
    again, replayed = post(bestseller_rank=100, category="books", marketplace="de")
    assert created and not replayed and again["_id"] == first["_id"]
    with pytest.raises(ValidationFailed):
        post(bestseller_rank=100, category="books")


class TestBackfill:
    def old(self, store, count: int) -> list:
        documents = []
        for rank in range(1, count + 1):
            document = create(store, bestseller_rank=rank, category="books")
            del document["marketplace"]  # as main stored it, with the etag of what it showed
            change = {"$unset": {"marketplace": ""}, "$set": {"_etag": compute_etag(document)}}
            store.collection.update_one({"_id": document["_id"]}, change)
            documents.append(store.collection.find_one({"_id": document["_id"]}))
        return documents

    def test_old_estimations_become_us_with_the_etag_of_what_they_show(self, store):
        old = self.old(store, 5)

        assert store_indexes.backfill_marketplace(store.collection, batch=2) == 5
        for document in old:
            now = store.collection.find_one({"_id": document["_id"]})
            assert now["marketplace"] == "us" and now["_updated"] == document["_updated"]
            assert now["_etag"] == compute_etag(now) != document["_etag"]
        assert store.collection.count_documents({"marketplace": "us"}) == 5

    def test_it_is_idempotent_and_runs_with_the_index_sync(self, store):
        self.old(store, 3)
        store.ensure_indexes()

        assert store.collection.count_documents({"marketplace": {"$exists": False}}) == 0
        assert store_indexes.backfill_marketplace(store.collection) == 0

    def test_two_hosts_at_once_write_each_document_once(self, store):
        self.old(store, 4)
        stale = list(store.collection.find(store_indexes.LACKS_MARKETPLACE))  # what the other host read

        assert store_indexes.backfill_marketplace(store.collection) == 4
        etags = {document["_id"]: document["_etag"] for document in store.collection.find()}
        late = [store.collection.update_one(*update) for update in store_indexes.backfill_updates(stale)]

        assert len(late) == 4 and sum(result.matched_count for result in late) == 0  # the other host's: none
        assert {document["_id"]: document["_etag"] for document in store.collection.find()} == etags
