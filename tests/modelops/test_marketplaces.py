"""Model operations per marketplace (issue 21): replay with each estimation's marketplace and rank history,
live accuracy and drift per marketplace x category, bounded gauges; old cards and documents count as us.
Served models here are fakes of the contract (tests/modelops/fakes.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import generate_latest

from ml.markets import segment, split_segment
from ml.train import metrics
from modelops import drift, drift_metrics, segments
from modelops.accuracy import Recorded, holdout_metrics, live_accuracy, recorded_actuals
from modelops.replay import replay
from tests.model_card import model_card
from tests.modelops.fakes import CATEGORIES, MarketModel, three_markets

START = datetime(2026, 10, 1, tzinfo=UTC)


def history(*ranks: int, step: timedelta = timedelta(days=1), text: bool = False) -> list[dict]:
    samples = [{"at": START + index * step, "rank": rank} for index, rank in enumerate(ranks)]
    return [{**s, "at": s["at"].isoformat().replace("+00:00", "Z")} for s in samples] if text else samples


def trapezoid_mean(model: MarketModel, ranks, category: str, marketplace: str) -> int:
    rates = model.rate(np.array(ranks), [category] * len(ranks), [marketplace] * len(ranks))
    return round(sum((a + b) / 2 for a, b in zip(rates, rates[1:], strict=False)) / (len(ranks) - 1))


class TestReplay:
    @pytest.fixture
    def models(self) -> tuple[MarketModel, MarketModel]:
        active = three_markets(version=1)
        markets = {code: CATEGORIES for code in ("us", "uk")} | {"de": [c for c in CATEGORIES if c != "clothing"]}
        return MarketModel(2, markets, factor=2.0), active  # the candidate: twice as much, and no de/clothing

    def test_each_document_is_replayed_in_its_marketplace_old_ones_in_us(self, models):
        candidate, active = models
        documents = [
            {"category": "books", "bestseller_rank": 100, "actual_sales": 900},  # stored before marketplaces
            {"marketplace": "us", "category": "books", "bestseller_rank": 1000},
            {"marketplace": "uk", "category": "books", "bestseller_rank": 100, "actual_sales": 150},
            {"marketplace": "de", "category": "toys", "bestseller_rank": 40},
        ]

        report = replay(documents, candidate=candidate, active=active)

        assert report["rows"] == 4 and report["skipped_rows"] == 0 and report["skipped"] == {}
        assert list(report["per_category"]) == ["books", "de/toys", "uk/books"]  # us's named by bare category
        assert list(report["per_marketplace"]) == ["de", "uk", "us"]
        assert report["per_marketplace"]["us"]["rows"] == report["per_category"]["books"]["rows"] == 2
        uk = report["per_category"]["uk/books"]
        new, old = candidate.estimate(100, "books", "uk").sales, active.estimate(100, "books", "uk").sales
        assert uk["median_ratio"] == pytest.approx((new + 1) / (old + 1))
        assert old == round(0.25 * 3 * 50_000 * 100**-0.8)  # the uk scale, not us's
        assert uk["candidate"]["rmse_log1p"] == pytest.approx(abs(math.log1p(new) - math.log1p(150)))
        assert report["per_marketplace"]["us"]["with_actuals"] == 1 and report["overall"]["with_actuals"] == 2

    def test_a_document_with_a_rank_history_is_estimated_from_it(self, models):
        candidate, active = models
        documents = [
            {"marketplace": "de", "category": "toys", "bestseller_rank": 50, "rank_history": history(100, 1000, 50)},
            {"marketplace": "us", "category": "books", "bestseller_rank": 9, "rank_history": history(9, 90, text=True)},
        ]

        report = replay(documents, candidate=candidate, active=active)

        assert candidate.history_calls == active.history_calls == 2
        de = report["per_category"]["de/toys"]
        new, old = (trapezoid_mean(model, [100, 1000, 50], "toys", "de") for model in (candidate, active))
        assert de["median_ratio"] == pytest.approx((new + 1) / (old + 1))
        snapshot = (candidate.estimate(50, "toys", "de").sales + 1) / (active.estimate(50, "toys", "de").sales + 1)
        assert de["median_ratio"] != pytest.approx(snapshot)  # not the last rank's estimate
        us = report["per_category"]["books"]
        new, old = (trapezoid_mean(model, [9, 90], "books", "us") for model in (candidate, active))
        assert us["median_ratio"] == pytest.approx((new + 1) / (old + 1))  # ISO 8601 text times read too

    def test_a_segment_a_model_lacks_is_counted_and_said_not_a_failure(self, models):
        candidate, active = models
        documents = [
            {"marketplace": "de", "category": "clothing", "bestseller_rank": 10},
            {"marketplace": "de", "category": "clothing", "bestseller_rank": 20},
            {"marketplace": "jp", "category": "books", "bestseller_rank": 10},
            {"marketplace": "uk", "category": "books", "bestseller_rank": 10, "rank_history": [{"at": "soon"}]},
            {"marketplace": "uk", "category": "books", "bestseller_rank": 10},
        ]

        report = replay(documents, candidate=candidate, active=active)

        assert report["rows"] == 1 and report["skipped_rows"] == 4
        skipped = report["skipped"]
        assert list(skipped) == ["de/clothing", "jp/books", "uk/books"]
        assert (skipped["de/clothing"]["rows"], skipped["de/clothing"]["lacking"]) == (2, ["candidate"])
        assert skipped["de/clothing"]["message"] == (
            "2 estimations in de/clothing: the candidate (version 2) has no curve for it, so they were not replayed"
        )
        assert skipped["jp/books"]["lacking"] == ["candidate", "active"]
        assert "the candidate (version 2) and the active (version 1)" in skipped["jp/books"]["message"]
        assert skipped["uk/books"] == {
            "rows": 1,
            "lacking": [],
            "message": "1 estimation in uk/books: a stored rank_history could not be read, so they were not replayed",
        }

    def test_an_old_model_replays_old_documents_as_us(self):
        old = MarketModel(1, {"us": CATEGORIES})
        old.markets = None  # a model of before marketplaces: categories only, all us
        documents = [
            {"category": "books", "bestseller_rank": 10},
            {"marketplace": "uk", "category": "books", "bestseller_rank": 1},
        ]

        report = replay(documents, candidate=three_markets(version=2), active=old)

        assert list(report["per_category"]) == ["books"] and report["skipped"]["uk/books"]["lacking"] == ["active"]


def card_for(names: list[str]) -> dict:
    """A model card keyed by segment, each entry naming its marketplace and category (the contract's)."""
    card = model_card(names)
    for name, entry in card["per_category"].items():
        entry["marketplace"], entry["category"] = split_segment(name)
    return card


def recorded(estimated, actual, low=None, high=None) -> Recorded:
    estimated, actual = np.asarray(estimated, dtype=float), np.asarray(actual, dtype=float)
    low = estimated * 0.6 if low is None else np.asarray(low, dtype=float)
    high = estimated * 1.6 if high is None else np.asarray(high, dtype=float)
    return Recorded(estimated, low, high, actual)


class TestLiveAccuracy:
    def test_per_marketplace_pools_its_categories_and_per_category_is_by_segment(self):
        shown = {
            "books": recorded([10, 20], [10, 40]),
            "uk/books": recorded([5], [20]),
            "uk/toys": recorded([8, 8, 8], [8, 4, 16]),
        }
        trained = ["books", "de/books", "uk/books", "uk/toys"]

        live = live_accuracy(version=3, segment_names=trained, recorded=shown)

        assert list(live["per_category"]) == trained
        assert live["per_category"]["de/books"]["rows"] == 0  # trained for, nothing recorded yet
        assert live["per_marketplace"]["uk"] == metrics(np.array([20.0, 8, 4, 16]), np.array([5.0, 8, 8, 8]))
        assert live["per_marketplace"]["us"] == metrics(np.array([10.0, 40]), np.array([10.0, 20]))
        assert live["per_marketplace"]["de"]["rows"] == 0
        assert live["overall"]["rows"] == 6
        assert list(live["per_marketplace"]) == ["us", "de", "uk"]

    def test_holdout_figures_are_keyed_by_segment_an_unreadable_breakdown_is_none(self):
        per_category = {"books": {"rows": 1}, "uk/toys": {"rows": 1}}  # us's named by bare category

        assert holdout_metrics({"metrics": {"per_category": per_category}})["per_category"] == per_category
        assert holdout_metrics({"metrics": {"overall": {"rows": 0}, "per_category": 7}})["per_category"] == {}

    def test_recorded_actuals_are_read_per_segment_old_documents_as_us(self, mongo_db):
        base = {"model_version": 4, "bestseller_rank": 10, "estimated_sales": 10, "actual_period": "2026-10"}
        mongo_db["estimations"].insert_many(
            [
                {**base, "category": "books", "actual_sales": 12},
                {**base, "category": "books", "marketplace": "us", "actual_sales": 8},
                {**base, "category": "books", "marketplace": "uk", "actual_sales": 3},
                {**base, "category": "books", "marketplace": "uk"},  # no actual: not read
            ]
        )

        found = recorded_actuals(4)

        assert sorted(found) == ["books", "uk/books"]
        assert sorted(found["books"].actual.tolist()) == [8.0, 12.0] and found["uk/books"].actual.tolist() == [3.0]


DRIFTED = recorded([100] * 30, [300] * 30)  # every actual 3x the estimate, outside its interval
HONEST = recorded([100] * 30, [100] * 30)


class TestDrift:
    def test_alarms_are_per_marketplace_and_category(self):
        names = ["books", "de/books", "uk/books"]
        metadata = {"version": 5, "categories": ["books"], "model_card": card_for(names)}

        figures = drift.version_drift(metadata, {"uk/books": DRIFTED, "books": HONEST})

        assert figures["drifted"] == ["uk/books"] and list(figures["per_category"]) == names
        assert figures["per_category"]["uk/books"]["message"].startswith("version 5, uk / books: live interval")
        assert not figures["per_category"]["books"]["alarm"]

    def test_an_old_card_of_bare_categories_holds_the_us_figures(self):
        metadata = {"version": 1, "categories": ["books", "toys"], "model_card": model_card(["books", "toys"])}

        figures = drift.version_drift(metadata, {"books": DRIFTED})

        assert list(figures["per_category"]) == ["books", "toys"]
        assert figures["drifted"] == ["books"]
        assert figures["per_category"]["books"]["holdout_median_error"] == 0.2
        assert figures["per_category"]["books"]["message"].startswith("version 1, us / books: live interval")

    def test_the_gauges_carry_the_marketplace_and_only_the_versions_segments(self, monkeypatch):
        names = [segment(code, category) for code in ("us", "uk", "de") for category in CATEGORIES]
        metadata = {"version": 6, "categories": list(CATEGORIES), "model_card": card_for(names)}
        stored = {"uk/books": DRIFTED, "jp/books": DRIFTED, "zz/none": HONEST}  # the last two: not its curves
        monkeypatch.setattr(drift_metrics, "_versions_in_scope", lambda: [metadata])
        monkeypatch.setattr(drift_metrics, "version_drift", lambda meta: drift.version_drift(meta, stored))
        registry = CollectorRegistry()
        registry.register(drift_metrics.DriftCollector(cache_seconds=0))

        text = generate_latest(registry).decode()

        alarms = [line for line in text.splitlines() if line.startswith("model_drift_alarm{")]
        assert len(alarms) == 24 * 2  # each of its 24 segments, each reason: no more, whatever is stored
        assert 'model_drift_alarm{category="books",marketplace="uk",reason="coverage",version="6"} 1.0' in text
        assert 'model_drift_alarm{category="books",marketplace="us",reason="coverage",version="6"} 0.0' in text
        assert 'marketplace="jp"' not in text and 'marketplace="zz"' not in text
        actuals = [line for line in text.splitlines() if line.startswith("model_drift_actuals{")]
        assert len(actuals) == 24


class TestSegments:
    def test_a_version_s_segments_come_from_its_markets_card_or_categories(self):
        assert segments.of_version({"markets": {"uk": ["toys"], "us": ["books"]}}) == ["books", "uk/toys"]
        assert segments.of_version({"categories": ["books"], "model_card": card_for(["de/toys"])}) == [
            "books",
            "de/toys",
        ]
        assert segments.of_version({"categories": ["toys", "books"]}) == ["books", "toys"]

    def test_grouped_us_first_then_by_code(self):
        grouped = segments.by_marketplace(["uk/toys", "de/books", "toys", "books", "uk/beauty"])

        assert grouped == {"us": ["books", "toys"], "de": ["de/books"], "uk": ["uk/beauty", "uk/toys"]}
        assert [segments.label(name) for name in ("books", "uk/toys")] == ["us / books", "uk / toys"]
