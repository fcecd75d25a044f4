"""estimations/services.py, called directly with a fake model and a mongomock store: validate, estimate
and store; an Idempotency-Key's replay; all-or-nothing bulk inserts; what an update keeps."""

from __future__ import annotations

import mongomock
import pytest
from rest_framework.exceptions import NotFound

from core.errors import PreconditionFailed, ValidationFailed
from estimations.services import (
    MSG_EMPTY_BULK,
    MSG_IDEMPOTENCY_CONFLICT,
    estimation_create,
    estimation_create_many,
    estimation_delete,
    estimation_update,
)
from estimations.store import EstimationStore
from tests.helpers import FakeModel


@pytest.fixture
def store() -> EstimationStore:
    store = EstimationStore(mongomock.MongoClient().db.estimations)
    store.ensure_indexes()  # the unique Idempotency-Key index among them
    return store


def test_a_created_estimation_is_stored_with_its_estimate_and_model_version(store, settings):
    settings.DEFAULT_CATEGORY = "books"

    document, created = estimation_create(store=store, estimator=FakeModel(), data={"bestseller_rank": 100})

    assert created
    assert (document["category"], document["estimated_sales"], document["model_version"]) == ("books", 10_000, 7)
    assert (document["estimated_sales_low"], document["estimated_sales_high"]) == (5_000, 20_000)
    assert store.collection.find_one({"_id": document["_id"]})["_etag"] == document["_etag"]


def test_an_invalid_estimation_stores_nothing(store):
    with pytest.raises(ValidationFailed) as refused:
        estimation_create(store=store, estimator=FakeModel(), data={"bestseller_rank": 0})

    assert "bestseller_rank" in refused.value.issues
    assert store.collection.count_documents({}) == 0


def test_a_repeated_idempotency_key_returns_the_first_document_and_another_input_is_refused(store):
    first, created = estimation_create(
        store=store, estimator=FakeModel(), data={"bestseller_rank": 100}, idempotency_key="client:k1"
    )
    again, created_again = estimation_create(
        store=store, estimator=FakeModel(), data={"bestseller_rank": 100}, idempotency_key="client:k1"
    )

    assert created and not created_again and again["_id"] == first["_id"]
    with pytest.raises(ValidationFailed) as refused:
        estimation_create(store=store, estimator=FakeModel(), data={"bestseller_rank": 5}, idempotency_key="client:k1")
    assert refused.value.detail == MSG_IDEMPOTENCY_CONFLICT
    assert store.collection.count_documents({}) == 1


def test_a_bulk_insert_with_one_invalid_item_stores_none_and_reports_each(store):
    items = [{"bestseller_rank": 1}, {"bestseller_rank": -1}, {"bestseller_rank": 3}]

    with pytest.raises(ValidationFailed) as refused:
        estimation_create_many(store=store, estimator=FakeModel(), items=items)

    assert [item["_status"] for item in refused.value.items] == ["OK", "ERR", "OK"]
    assert store.collection.count_documents({}) == 0


def test_an_empty_bulk_insert_is_refused(store):
    with pytest.raises(ValidationFailed) as refused:
        estimation_create_many(store=store, estimator=FakeModel(), items=[])

    assert refused.value.detail == MSG_EMPTY_BULK


def test_a_bulk_insert_stores_every_item_with_its_own_estimate(store):
    stored = estimation_create_many(
        store=store, estimator=FakeModel(), items=[{"bestseller_rank": 10}, {"bestseller_rank": 1000}]
    )

    assert [document["estimated_sales"] for document in stored] == [100_000, 1_000]
    assert store.collection.count_documents({}) == 2


def test_an_update_keeps_the_estimate_unless_the_rank_or_category_changes(store):
    document, _ = estimation_create(store=store, estimator=FakeModel(version=1), data={"bestseller_rank": 100})
    newer = FakeModel(version=2)

    named = estimation_update(
        store=store,
        estimator=newer,
        estimation_id=str(document["_id"]),
        if_match=None,
        data={"sku": "A-1"},
        partial=True,
    )
    moved = estimation_update(
        store=store,
        estimator=newer,
        estimation_id=str(document["_id"]),
        if_match=[named["_etag"]],
        data={"bestseller_rank": 10},
        partial=True,
    )

    assert (named["sku"], named["model_version"], named["estimated_sales"]) == ("A-1", 1, 10_000)
    assert (moved["sku"], moved["model_version"], moved["estimated_sales"]) == ("A-1", 2, 100_000)


def test_a_write_with_a_stale_etag_is_412_and_changes_nothing(store):
    document, _ = estimation_create(store=store, estimator=FakeModel(), data={"bestseller_rank": 100})

    with pytest.raises(PreconditionFailed):
        estimation_update(
            store=store,
            estimator=FakeModel(),
            estimation_id=str(document["_id"]),
            if_match=["stale"],
            data={"bestseller_rank": 5},
            partial=True,
        )
    with pytest.raises(PreconditionFailed):
        estimation_delete(store=store, estimation_id=str(document["_id"]), if_match=["stale"])
    assert store.collection.find_one({"_id": document["_id"]})["_etag"] == document["_etag"]


def test_deleting_an_unknown_estimation_is_404(store):
    with pytest.raises(NotFound):
        estimation_delete(store=store, estimation_id="6b0aa8a7e49da0a6640161ec", if_match=None)
