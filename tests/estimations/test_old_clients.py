"""Old clients, which send only bestseller_rank and category (and sku), see no change but the new
``marketplace: "us"``: each answer here is what main answered before issue 21 for the same request and
the same model's estimates (recorded from commit 430d140), without the ids, dates, etags and links."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from ml.predictor import Estimate

# What 430d140 answered (POST /estimations, JSON), per request; "marketplace" is the one new field.
BEFORE = {
    "one": (
        {"bestseller_rank": 70, "category": "books", "sku": "A-1"},
        201,
        {
            "bestseller_rank": 70,
            "category": "books",
            "sku": "A-1",
            "estimated_sales": 14285,
            "estimated_sales_low": 7142,
            "estimated_sales_high": 28570,
            "extrapolated": False,
            "model_version": 3,
            "_status": "OK",
        },
    ),
    "default": (
        {"bestseller_rank": 60000},
        201,
        {
            "bestseller_rank": 60000,
            "category": "books",
            "estimated_sales": 16,
            "estimated_sales_low": 8,
            "estimated_sales_high": 32,
            "extrapolated": True,
            "model_version": 3,
            "_status": "OK",
        },
    ),
    "invalid": (
        {"bestseller_rank": 0, "category": "x"},
        422,
        {
            "_status": "ERR",
            "_error": {"code": 422, "message": "Insertion failure: 1 document(s) contain(s) error(s)"},
            "_issues": {
                "bestseller_rank": "min value is 1",
                "category": "unallowed value 'x': known categories are books, toys_games",
            },
        },
    ),
}
VARYING = ("_id", "_created", "_updated", "_etag", "_links")


class OldModel:
    """A model from before marketplaces (its markets: us only), estimating as the recorded one did."""

    version = 3
    categories = ("books", "toys_games")
    markets = {"us": ("books", "toys_games")}

    def estimate(self, rank, category, marketplace="us"):
        sales = 1_000_000 // rank
        return Estimate(sales, sales // 2, sales * 2, rank > 50_000)

    def estimate_many(self, ranks, categories, marketplaces=None):
        return [self.estimate(rank, category) for rank, category in zip(ranks, categories, strict=True)]


@pytest.fixture
def store_kind() -> str:
    return "mongomock"


@pytest.fixture
def old_model_client(mongo_db, monkeypatch, settings) -> APIClient:
    settings.DEFAULT_CATEGORY = "books"
    monkeypatch.setattr("estimations.services.get_estimator", OldModel)
    return APIClient()


def without_varying(answer: dict) -> dict:
    return {name: value for name, value in answer.items() if name not in VARYING}


@pytest.mark.parametrize("name", BEFORE)
def test_an_old_clients_answer_is_mains_with_marketplace_us(old_model_client, name):
    body, status, before = BEFORE[name]

    response = old_model_client.post("/estimations", body, format="json")

    assert response.status_code == status
    expected = {**before, "marketplace": "us"} if status == 201 else before
    assert without_varying(response.json()) == expected


def test_a_bulk_insert_answers_as_before_with_marketplace_us(old_model_client):
    response = old_model_client.post(
        "/estimations", [{"bestseller_rank": 5, "category": "toys_games"}, {"bestseller_rank": 7}], format="json"
    )

    items = [without_varying(item) for item in response.json()["_items"]]
    assert response.status_code == 201 and [item.pop("marketplace") for item in items] == ["us", "us"]
    assert items == [
        {
            "bestseller_rank": 5,
            "category": "toys_games",
            "estimated_sales": 200000,
            "estimated_sales_low": 100000,
            "estimated_sales_high": 400000,
            "extrapolated": False,
            "model_version": 3,
            "_status": "OK",
        },
        {
            "bestseller_rank": 7,
            "category": "books",
            "estimated_sales": 142857,
            "estimated_sales_low": 71428,
            "estimated_sales_high": 285714,
            "extrapolated": False,
            "model_version": 3,
            "_status": "OK",
        },
    ]
