"""The API with issue 21's inputs, on the sample model (marketplaces us, uk, de): marketplace, rank_history
and price through JSON, form and CSV; filters and sorts on the new fields; PATCH semantics; every answer
checked against the published schema (SchemaCheckingClient); and the marketplace backfill on each store."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from bson import ObjectId

from estimations import store_indexes
from estimations.documents import compute_etag
from ml import serving
from ml.data import read_training_csv
from ml.serving import get_estimator
from ml.train import train
from tests.helpers import SAMPLE_CSV, URL, assert_error_envelope, post_json, send

NOW = datetime.now(UTC).replace(microsecond=0)
FORM = "application/x-www-form-urlencoded"


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def created(response) -> dict:
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()


def listed(api, **params) -> list[dict]:
    response = api.get(URL, params)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()["_items"]


class TestMarketplace:
    def test_the_default_and_a_named_one_are_stored_and_estimated_in_it(self, api):
        us = created(post_json(api, {"bestseller_rank": 500, "category": "books"}))
        uk = created(post_json(api, {"bestseller_rank": 500, "category": "books", "marketplace": "uk"}))

        assert (us["marketplace"], uk["marketplace"]) == ("us", "uk")
        assert uk["estimated_sales"] == get_estimator().estimate(500, "books", "uk").sales
        assert uk["estimated_sales"] != us["estimated_sales"]  # the uk curve is another scale

    def test_an_unknown_marketplace_lists_the_models(self, api):
        body = assert_error_envelope(post_json(api, {"bestseller_rank": 5, "marketplace": "xx"}), 422)

        known = ", ".join(sorted(get_estimator().markets))
        assert body["_issues"] == {"marketplace": f"unallowed value 'xx': known marketplaces are {known}"}
        assert {"de", "uk", "us"} <= set(get_estimator().markets)

    @pytest.mark.parametrize("store_kind", ["mongomock"])  # a model of its own to train: once is enough
    def test_a_category_the_marketplace_lacks_lists_its_categories(self, api, tmp_path):
        header, *rows = SAMPLE_CSV.read_text().splitlines()
        kept = [row for row in rows[::5] if row.startswith(("books,", "toys_games,"))]  # small: quick to train
        kept = [row for row in kept if not (row.startswith("toys_games,") and row.endswith(",uk"))]
        (tmp_path / "no_uk_toys.csv").write_text("\n".join([header, *kept]) + "\n")
        model = train(read_training_csv(tmp_path / "no_uk_toys.csv", progress=False))
        registry = serving.model_registry()
        registry.activate(registry.save(model)["version"])
        serving.reset()

        body = assert_error_envelope(
            post_json(api, {"bestseller_rank": 5, "marketplace": "uk", "category": "toys_games"}), 422
        )
        uk = get_estimator().markets["uk"]
        assert "toys_games" not in uk and "toys_games" in get_estimator().markets["us"]
        assert body["_issues"] == {
            "category": f"unallowed value 'toys_games' in marketplace 'uk': its categories are {', '.join(uk)}"
        }
        assert created(post_json(api, {"bestseller_rank": 5, "marketplace": "us", "category": "toys_games"}))

    def test_filtered_and_sorted_like_the_category(self, api):
        for marketplace in ("de", "us", "uk", "de"):
            created(post_json(api, {"bestseller_rank": 100, "category": "books", "marketplace": marketplace}))

        assert [item["marketplace"] for item in listed(api, where='{"marketplace": "de"}')] == ["de", "de"]
        assert [item["marketplace"] for item in listed(api, sort="-marketplace")] == ["us", "uk", "de", "de"]


class TestRankHistory:
    def test_a_history_is_estimated_with_its_daily_rate_and_gaps(self, api):
        history = [{"at": at(120), "rank": 300}, {"at": at(119), "rank": 5000}, {"at": at(2), "rank": 800}]

        body = created(post_json(api, {"rank_history": history, "category": "books"}))

        assert body["bestseller_rank"] == 800 and body["rank_history"] == history
        assert body["rank_history_gaps"] == [{"from": history[1]["at"], "to": history[2]["at"]}]
        seconds = [datetime.fromisoformat(sample["at"]).timestamp() for sample in history]
        expected = get_estimator().estimate_history(seconds, [300, 5000, 800], "books", "us")
        assert body["estimated_sales"] == expected.sales and body["estimated_daily_sales"] > 0
        assert body["estimated_sales"] != get_estimator().estimate(800, "books").sales

    def test_a_bad_history_is_422_naming_the_problem(self, api):
        unsorted = [{"at": at(1), "rank": 300}, {"at": at(2), "rank": 500}]

        body = assert_error_envelope(post_json(api, {"rank_history": unsorted}), 422)
        assert "[1].at" in body["_issues"]["rank_history"] and "oldest first" in body["_issues"]["rank_history"]

    def test_a_patch_of_the_history_estimates_again(self, api):
        document = created(post_json(api, {"bestseller_rank": 800, "category": "books"}))

        response = send(
            api, "patch", document, {"rank_history": [{"at": at(3), "rank": 40}, {"at": at(1), "rank": 90}]}
        )
        assert response.status_code == HTTPStatus.OK, response.content
        assert response.json()["bestseller_rank"] == 90
        assert response.json()["estimated_sales"] != document["estimated_sales"]

    def test_a_bulk_insert_takes_histories(self, api):
        items = [
            {"bestseller_rank": 100},
            {"rank_history": [{"at": at(5), "rank": 100}, {"at": at(1), "rank": 10_000}], "marketplace": "de"},
        ]

        stored = created(post_json(api, items))["_items"]
        assert [item["bestseller_rank"] for item in stored] == [100, 10_000]
        assert "rank_history" in stored[1] and "rank_history" not in stored[0]


class TestPrice:
    def test_a_price_gives_revenue_in_the_marketplaces_currency(self, api):
        body = created(
            post_json(api, {"bestseller_rank": 700, "category": "books", "marketplace": "de", "price": 12.5})
        )

        assert body["currency"] == "EUR" and body["price"] == 12.5
        assert body["estimated_revenue"] == round(body["estimated_sales"] * 12.5, 2)
        assert body["estimated_revenue_low"] <= body["estimated_revenue"] <= body["estimated_revenue_high"]

    def test_a_price_change_keeps_the_estimate_and_null_removes_it(self, api):
        document = created(post_json(api, {"bestseller_rank": 700, "category": "books", "price": 10}))

        changed = send(api, "patch", document, {"price": 20.25}).json()
        assert changed["estimated_sales"] == document["estimated_sales"]
        assert changed["estimated_revenue"] == round(document["estimated_sales"] * 20.25, 2)
        removed = send(api, "patch", changed, {"price": None}).json()
        assert "price" not in removed and "estimated_revenue" not in removed and "currency" not in removed

    def test_filtered_with_decimals_and_sorted(self, api):
        for price in (9.99, 10.01, 25):
            created(post_json(api, {"bestseller_rank": 700, "category": "books", "price": price}))
        created(post_json(api, {"bestseller_rank": 700, "category": "books"}))

        assert [item["price"] for item in listed(api, where='{"price": {"$gt": 9.995, "$lt": 25}}')] == [10.01]
        assert [item.get("price") for item in listed(api, sort="-price")] == [25, 10.01, 9.99, None]
        revenues = [item["estimated_revenue"] for item in listed(api, sort="-estimated_revenue")[:3]]
        assert revenues == sorted(revenues, reverse=True)

    def test_a_bad_price_is_422(self, api):
        body = assert_error_envelope(post_json(api, {"bestseller_rank": 5, "price": 19.999}), 422)

        assert "at most 2 decimals" in body["_issues"]["price"]


class TestForms:
    def test_the_browsable_form_asks_for_marketplace_and_price(self, api):
        page = api.get(URL, HTTP_ACCEPT="text/html").content.decode()

        assert 'name="marketplace"' in page and '<option value="uk"' in page and 'name="price"' in page
        assert 'name="rank_history"' not in page  # JSON only

    def test_a_form_post_sends_the_price_as_text_and_may_leave_it_empty(self, api):
        priced = created(api.post(URL, "bestseller_rank=700&marketplace=uk&price=19.99", content_type=FORM))
        plain = created(api.post(URL, "bestseller_rank=700&marketplace=uk&price=", content_type=FORM))

        assert (priced["price"], priced["currency"]) == (19.99, "GBP") and "price" not in plain


class TestCsv:
    def test_rank_history_and_price_go_out_and_back_in(self, api, mongo_db):
        history = [{"at": at(48), "rank": 300}, {"at": at(1), "rank": 900}]
        created(post_json(api, {"rank_history": history, "marketplace": "uk", "price": 7.5, "category": "books"}))

        export = api.get(URL, {"format": "csv"})
        text = b"".join(export.streaming_content).decode()
        row = next(csv.DictReader(io.StringIO(text)))
        assert json.loads(row["rank_history"]) == history and row["price"] == "7.5" and row["marketplace"] == "uk"
        assert row["currency"] == "GBP" and float(row["estimated_revenue"]) > 0

        again = created(api.post(URL, text.encode(), content_type="text/csv"))["_items"][0]
        assert (again["rank_history"], again["price"], again["marketplace"]) == (history, 7.5, "uk")


def test_old_estimations_are_backfilled_to_us_and_then_found_by_it(api, mongo_db):
    old = created(post_json(api, {"bestseller_rank": 70, "category": "books"}))
    document = mongo_db["estimations"].find_one({"_id": ObjectId(old["_id"])})
    del document["marketplace"]
    mongo_db["estimations"].replace_one({"_id": document["_id"]}, {**document, "_etag": compute_etag(document)})
    assert listed(api, where='{"marketplace": "us"}') == []

    assert store_indexes.backfill_marketplace(mongo_db["estimations"]) == 1

    [found] = listed(api, where='{"marketplace": "us"}')
    assert found["_etag"] == compute_etag(mongo_db["estimations"].find_one({"_id": document["_id"]}))
    assert store_indexes.backfill_marketplace(mongo_db["estimations"]) == 0
