"""Validation of issue 21's inputs: marketplace (against the model's markets), rank_history (each problem
named) and price (positive, 2 decimals, JSON number or form/CSV text)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from estimations import rank_history, validation
from ml.history import MAX_HISTORY_DAYS, MAX_HISTORY_POINTS

MARKETS = {"us": ("books", "toys_games"), "uk": ("books",), "de": ("books", "electronics")}
RULES = validation.Rules(categories=("books", "electronics", "toys_games"), default_category="books", markets=MARKETS)
NOW = datetime.now(UTC).replace(microsecond=0)


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


def history(*points: tuple[float, int]) -> list[dict]:
    return [{"at": at(hours), "rank": rank} for hours, rank in points]


def issues(payload: dict, **options) -> dict[str, str]:
    return validation.validate(payload, RULES, **options)[1]


class TestMarketplace:
    def test_omitted_it_is_the_default_and_stored(self):
        clean, problems = validation.validate({"bestseller_rank": 5}, RULES)

        assert problems == {} and clean["marketplace"] == "us"

    def test_an_unknown_one_lists_the_known_ones(self):
        assert issues({"bestseller_rank": 5, "marketplace": "xx"}) == {
            "marketplace": "unallowed value 'xx': known marketplaces are de, uk, us"
        }

    @pytest.mark.parametrize("value", ["US", "", 5, None, "u" * 9])
    def test_codes_are_lower_case_strings(self, value):
        assert "marketplace" in issues({"bestseller_rank": 5, "marketplace": value})

    def test_a_category_the_model_lacks_there_lists_that_marketplaces_categories(self):
        assert issues({"bestseller_rank": 5, "marketplace": "uk", "category": "toys_games"}) == {
            "category": "unallowed value 'toys_games' in marketplace 'uk': its categories are books"
        }

    def test_the_default_category_must_be_in_the_marketplace(self):
        rules = validation.Rules(categories=RULES.categories, default_category="toys_games", markets=MARKETS)

        problem = validation.validate({"bestseller_rank": 5, "marketplace": "de"}, rules)[1]["category"]
        assert "'toys_games' (DEFAULT_CATEGORY)" in problem and problem.endswith("send one of books, electronics")

    def test_a_default_marketplace_the_model_lacks_is_named(self):
        rules = validation.Rules(categories=("books",), default_category="books", markets={"de": ("books",)})

        assert "'us' (DEFAULT_MARKETPLACE)" in validation.validate({"bestseller_rank": 5}, rules)[1]["marketplace"]


class TestRankHistory:
    def test_a_history_gives_the_rank_its_latest_sample(self):
        clean, problems = validation.validate({"rank_history": history((48, 900), (1, 1200))}, RULES)

        assert problems == {} and clean["bestseller_rank"] == 1200
        assert [sample["rank"] for sample in clean["rank_history"]] == [900, 1200]
        assert all(sample["at"].tzinfo is not None for sample in clean["rank_history"])

    def test_a_rank_that_agrees_is_taken_and_one_that_differs_is_refused(self):
        samples = history((2, 900), (1, 1200))

        assert issues({"rank_history": samples, "bestseller_rank": 1200}) == {}
        assert issues({"rank_history": samples, "bestseller_rank": 5}) == {
            "bestseller_rank": "is 5, but rank_history's latest sample has rank 1200: send one of them, or make "
            "them agree"
        }

    def test_neither_rank_nor_history_is_required_field(self):
        assert issues({}) == {"bestseller_rank": validation.ISSUE_REQUIRED}

    def test_offsets_are_read_as_utc_and_milliseconds_kept(self):
        moment = (NOW - timedelta(hours=3)).astimezone(UTC)
        text = (moment + timedelta(microseconds=123_456)).astimezone().isoformat()  # the local offset
        clean, _ = validation.validate({"rank_history": [{"at": text, "rank": 3}]}, RULES)

        assert clean["rank_history"][0]["at"] == moment + timedelta(microseconds=123_000)
        assert rank_history.iso(clean["rank_history"][0]["at"]).endswith(".123Z")

    @pytest.mark.parametrize(
        ("value", "named"),
        [
            ([], "empty list"),
            ("[]", "must be a list"),
            ({"at": "x"}, "must be a list"),
            ([5], "[0]: must be an object"),
            ([{"rank": 5}], "[0]: lacks 'at'"),
            ([{"at": "2026-01-01T00:00:00Z"}], "[0]: lacks 'rank'"),
            ([{"at": "2026-01-01T00:00:00Z", "rank": 5, "price": 3}], "[0]: unknown key(s) 'price'"),
            ([{"at": "yesterday", "rank": 5}], "[0].at: must be an ISO 8601 date-time"),
            ([{"at": 1700000000, "rank": 5}], "[0].at: must be an ISO 8601 date-time"),
            ([{"at": "2026-01-01T00:00:00", "rank": 5}], "has no UTC offset"),
            ([{"at": "2026-01-01", "rank": 5}], "has no UTC offset"),
            ([{"at": "0001-01-01T00:00:00+01:00", "rank": 5}], "[0].at: must be an ISO 8601 date-time"),
            ([{"at": "2026-01-01T00:00:00Z", "rank": 0}], "[0].rank: must be a whole number from 1"),
            ([{"at": "2026-01-01T00:00:00Z", "rank": True}], "[0].rank: must be a whole number"),
            ([{"at": "2026-01-01T00:00:00Z", "rank": 2.5}], "[0].rank: must be a whole number"),
        ],
    )
    def test_each_malformed_history_is_named(self, value, named):
        assert named in issues({"rank_history": value})["rank_history"]

    def test_unsorted_duplicate_and_future_samples_are_named(self):
        unsorted = history((1, 5), (2, 6))
        duplicate = [{"at": at(2), "rank": 5}, {"at": at(2).replace("Z", "+00:00"), "rank": 6}]
        future = history((2, 5), (-0.5, 6))

        assert "[1].at" in issues({"rank_history": unsorted})["rank_history"]
        assert "send the samples oldest first" in issues({"rank_history": unsorted})["rank_history"]
        assert "is the time of sample [0] too" in issues({"rank_history": duplicate})["rank_history"]
        assert "[1].at" in (problem := issues({"rank_history": future})["rank_history"]) and "future" in problem

    def test_a_clock_skew_of_a_few_minutes_is_allowed(self):
        assert issues({"rank_history": history((1, 5), (-4 / 60, 6))}) == {}

    def test_the_limits_are_ml_historys(self):
        span = history((MAX_HISTORY_DAYS * 24 + 1, 5), (0, 6))
        within = history((MAX_HISTORY_DAYS * 24, 5), (0, 6))
        too_many = [{"at": at(MAX_HISTORY_POINTS + 1 - i), "rank": 5} for i in range(MAX_HISTORY_POINTS + 1)]

        assert f"at most {MAX_HISTORY_DAYS} days" in issues({"rank_history": span})["rank_history"]
        assert issues({"rank_history": within}) == {}
        assert f"at most {MAX_HISTORY_POINTS:,}" in issues({"rank_history": too_many})["rank_history"]
        assert issues({"rank_history": too_many[1:]}) == {}

    def test_a_form_or_csv_cell_is_the_json_text(self):
        text = json.dumps(history((2, 7), (1, 8)))

        clean, problems = validation.validate({"rank_history": text}, RULES, from_form=True)
        assert problems == {} and clean["bestseller_rank"] == 8
        assert "must be JSON text" in issues({"rank_history": "[{"}, from_form=True)["rank_history"]

    def test_null_removes_it(self):
        clean, problems = validation.validate({"rank_history": None}, RULES, partial=True)

        assert problems == {} and clean == {"rank_history": None}

    def test_an_answer_shows_the_dates_as_iso_utc(self):
        moment = datetime(2026, 11, 30, 12, tzinfo=UTC)

        assert rank_history.shown([{"at": moment, "rank": 5}]) == [{"at": "2026-11-30T12:00:00Z", "rank": 5}]
        assert rank_history.as_text([{"from": moment, "to": moment}]) == (
            '[{"from":"2026-11-30T12:00:00Z","to":"2026-11-30T12:00:00Z"}]'
        )


class TestPrice:
    @pytest.mark.parametrize("price", [0.01, 19.99, 20, 1_000_000, 999_999.99])
    def test_positive_decimals_with_at_most_two_places_are_taken_as_floats(self, price):
        clean, problems = validation.validate({"bestseller_rank": 5, "price": price}, RULES)

        assert problems == {} and clean["price"] == price and isinstance(clean["price"], float)

    @pytest.mark.parametrize(
        "price",
        [0, -1, 0.001, 19.999, 1_000_000.01, 1e300, 10**400, float("nan"), float("inf"), True, "19.99", [19.99]],
    )
    def test_the_rest_is_refused(self, price):
        assert issues({"bestseller_rank": 5, "price": price}) == {"price": validation.ISSUE_PRICE}

    @pytest.mark.parametrize(("text", "price"), [("19.99", 19.99), ("20", 20.0), ("0.5", 0.5)])
    def test_a_form_sends_decimal_text(self, text, price):
        clean, problems = validation.validate({"bestseller_rank": "5", "price": text}, RULES, from_form=True)

        assert problems == {} and clean["price"] == price

    @pytest.mark.parametrize("text", ["19,99", "1e3", "19.999", "-5", "0", " 5", "5.", "inf", "NaN"])
    def test_other_text_is_refused(self, text):
        assert issues({"bestseller_rank": "5", "price": text}, from_form=True) == {"price": validation.ISSUE_PRICE}

    def test_null_removes_it(self):
        assert validation.validate({"price": None}, RULES, partial=True) == ({"price": None}, {})
