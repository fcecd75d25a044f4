"""GET /models/{version}/accuracy: live figures from recorded actuals, equal to hand-computed values."""

from __future__ import annotations

import json
import math
from http import HTTPStatus

import pytest

from ml import serving
from tests.helpers import assert_error_envelope, post_json


def record(api, created: dict, actual: int) -> dict:
    response = api.patch(
        f"/estimations/{created['_id']}",
        data=json.dumps({"actual_sales": actual, "actual_period": "2026-10"}),
        content_type="application/json",
        HTTP_IF_MATCH=created["_etag"],
    )
    assert response.status_code == HTTPStatus.OK, response.json()
    return response.json()


@pytest.fixture
def recorded(api, active_model):
    """Three books estimations with actuals of 1x, 2x and 4x their estimate; one electronics with 0 sold;
    and estimations the figures must leave out (no actuals, or another version's)."""
    books = [post_json(api, {"bestseller_rank": rank, "category": "books"}).json() for rank in (100, 2000, 30_000)]
    factors = (1, 2, 4)
    for created, factor in zip(books, factors, strict=True):
        record(api, created, created["estimated_sales"] * factor)
    electronics = post_json(api, {"bestseller_rank": 50, "category": "electronics"}).json()
    record(api, electronics, 0)
    post_json(api, {"bestseller_rank": 7, "category": "books"})  # no actuals: not counted
    return {
        "books": [(c["estimated_sales"], c["estimated_sales"] * f) for c, f in zip(books, factors, strict=True)],
        "electronics": [(electronics["estimated_sales"], 0)],
    }


def by_hand(pairs: list[tuple[int, int]]) -> dict:
    """The definitions, written out: RMSE of log1p, median APE where sales > 0, share with ratio in [1/2, 2]."""
    squared = [(math.log1p(e) - math.log1p(a)) ** 2 for e, a in pairs]
    apes = sorted(abs(e - a) / a for e, a in pairs if a > 0)
    middle = len(apes) // 2
    median = None if not apes else apes[middle] if len(apes) % 2 else (apes[middle - 1] + apes[middle]) / 2
    within = [0.5 <= (e + 1) / (a + 1) <= 2 for e, a in pairs]
    return {
        "rows": len(pairs),
        "rmse_log1p": math.sqrt(sum(squared) / len(pairs)),
        "median_ape": median,
        "within_2x": sum(within) / len(pairs),
    }


def assert_metrics(shown: dict, expected: dict) -> None:
    assert shown["rows"] == expected["rows"]
    for name in ("rmse_log1p", "median_ape", "within_2x"):
        if expected[name] is None:
            assert shown[name] is None, name
        else:
            assert shown[name] == pytest.approx(expected[name], rel=1e-12), name


class TestAccuracy:
    def test_figures_equal_hand_computed_values(self, api, recorded, active_model):
        body = api.get(f"/models/{active_model['version']}/accuracy").json()

        assert_metrics(body["live"]["per_category"]["books"], by_hand(recorded["books"]))
        assert_metrics(body["live"]["per_category"]["electronics"], by_hand(recorded["electronics"]))
        assert_metrics(body["live"]["overall"], by_hand(recorded["books"] + recorded["electronics"]))
        assert_metrics(body["live"]["per_marketplace"]["us"], by_hand(recorded["books"] + recorded["electronics"]))
        # And the hand values themselves: 1x, 2x and 4x give APEs 0, 0.5, 0.75 and two of three within 2x.
        assert by_hand(recorded["books"])["median_ape"] == 0.5
        assert by_hand(recorded["books"])["within_2x"] == pytest.approx(2 / 3)

    def test_categories_without_actuals_show_zero_rows(self, api, recorded, active_model):
        body = api.get(f"/models/{active_model['version']}/accuracy").json()

        assert body["live"]["per_category"]["toys_games"] == {
            "rows": 0,
            "rmse_log1p": None,
            "median_ape": None,
            "within_2x": None,
        }

    def test_beside_the_holdout_figures_of_the_version(self, api, recorded, active_model):
        body = api.get(f"/models/{active_model['version']}/accuracy").json()

        assert body["holdout"] == json.loads(json.dumps(active_model["metrics"]))
        assert body["active"] is True and body["version"] == active_model["version"]

    def test_each_version_counts_only_its_own_estimates(self, api, recorded, active_model, trained_model):
        registry = serving.model_registry()
        newer = registry.save(trained_model)["version"]
        registry.activate(newer)
        serving.reset()
        created = post_json(api, {"bestseller_rank": 500, "category": "books"}).json()
        record(api, created, created["estimated_sales"])

        newer_body = api.get(f"/models/{newer}/accuracy").json()
        older_body = api.get(f"/models/{active_model['version']}/accuracy").json()

        assert newer_body["live"]["overall"]["rows"] == 1 and newer_body["live"]["overall"]["rmse_log1p"] == 0
        assert older_body["live"]["overall"]["rows"] == 4 and older_body["active"] is False

    def test_per_marketplace_and_segment_with_the_sample_models_three(self, api, mongo_db, recorded, active_model):
        template = mongo_db["estimations"].find_one({"category": "books", "actual_sales": {"$exists": True}})
        for actual in (10, 40):  # as the API stores a uk estimation with actuals (put in directly here)
            document = {**template, "marketplace": "uk", "estimated_sales": 20, "actual_sales": actual}
            mongo_db["estimations"].insert_one({key: value for key, value in document.items() if key != "_id"})

        live = api.get(f"/models/{active_model['version']}/accuracy").json()["live"]

        assert list(live["per_marketplace"]) == ["us", "de", "uk"]
        assert_metrics(live["per_marketplace"]["uk"], by_hand([(20, 10), (20, 40)]))
        assert_metrics(live["per_category"]["uk/books"], by_hand([(20, 10), (20, 40)]))
        assert live["per_category"]["de/books"]["rows"] == 0 and live["per_marketplace"]["de"]["rows"] == 0
        assert_metrics(live["per_category"]["books"], by_hand(recorded["books"]))  # us's: unchanged
        assert live["overall"]["rows"] == 6

    def test_unknown_version_is_404(self, api, active_model):
        assert_error_envelope(api.get("/models/42/accuracy"), 404)
