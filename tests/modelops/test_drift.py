"""Drift alarms (modelops/drift.py): actuals from a shifted curve raise them on /metrics, in
/models/{v}/accuracy and on /inspect/; honest noise, too few actuals and a version without a card do not."""

from __future__ import annotations

import json
import math
import random
import re
import urllib.request
from html import unescape
from http import HTTPStatus
from statistics import NormalDist

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ml import markets, serving
from ml.train import TrainedModel
from modelops import drift, drift_metrics, segments
from modelops.accuracy import Recorded
from modelops.drift_metrics import COLLECTOR
from tests.helpers import legacy_trained_model, post_json
from tests.live import LiveServer, counts_by_worker, request, trained_database

SHIFTED, HONEST = "books", "electronics"
RANKS = [round(100 * 200 ** (i / 39)) for i in range(40)]  # 40 ranks, log-spaced from 100 to 20,000
Z_80 = NormalDist().inv_cdf(0.9)  # the 80% interval's ends are the 10% and 90% quantiles


# --- a version with a model card, and actuals recorded as clients record them ------------------------


def model_card(metadata: dict) -> dict:
    """A card of the contract's shape (card-schema), its holdout median_error the trained model's own."""
    per_category = {
        name: {
            "training_rows": 400,
            "holdout_rows": figures["rows"],
            "slope_by_decade": [{"from_rank": 10**p, "to_rank": 10 ** (p + 1), "slope": 0.8} for p in range(6)],
            "coverage": {"overall": 0.80, "head": 0.79, "middle": 0.80, "tail": 0.81},
            "median_error": figures["median_ape"],
            "sigma": 0.45,
        }
        for name, figures in metadata["metrics"]["per_category"].items()
    }
    return {
        "statistic": "median",
        "interval": [0.1, 0.9],
        "bands": {"head": [1, 299], "middle": [300, 30000], "tail": [30001, None]},
        "coverage": {"overall": 0.80, "head": 0.79, "middle": 0.80, "tail": 0.81},
        "per_category": per_category,
    }


def save_with_card(trained: TrainedModel) -> dict:
    """Store ``trained`` through the registry as a new version with a model card, and activate it."""
    registry = serving.model_registry()
    carded = TrainedModel(trained.pipeline, {**trained.metadata, "model_card": model_card(trained.metadata)})
    version = registry.save(carded)["version"]
    registry.activate(version)
    serving.reset()  # served now, as a worker serves it once it sees the activation
    return registry.get(version)


def estimate(api, category: str, ranks: list[int] = RANKS) -> list[dict]:
    response = post_json(api, [{"bestseller_rank": rank, "category": category} for rank in ranks])
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()["_items"]


def record(api, created: list[dict], actuals: list[int]) -> None:
    for item, actual in zip(created, actuals, strict=True):
        response = api.patch(
            f"/estimations/{item['_id']}",
            data=json.dumps({"actual_sales": actual, "actual_period": "2026-11"}),
            content_type="application/json",
            HTTP_IF_MATCH=item["_etag"],
        )
        assert response.status_code == HTTPStatus.OK, response.content


def shifted(created: list[dict], factor: float = 2.5) -> list[int]:
    """Actuals from a curve ``factor`` times the model's."""
    return [round(factor * item["estimated_sales"]) for item in created]


def honest(created: list[dict], seed: int = 20) -> list[int]:
    """Actuals drawn as the estimate says: log-normal around it, the stored interval its 10% and 90%
    quantiles. The draws are evenly spread quantiles, shuffled: 80% fall inside, not about 80%."""
    quantiles = [(i + 0.5) / len(created) for i in range(len(created))]
    random.Random(seed).shuffle(quantiles)
    actuals = []
    for item, quantile in zip(created, quantiles, strict=True):
        median, low, high = item["estimated_sales"], item["estimated_sales_low"], item["estimated_sales_high"]
        z = NormalDist().inv_cdf(quantile)
        spread = math.log(median / low) if z < 0 else math.log(high / median)
        actuals.append(round(median * math.exp(z * spread / Z_80)))
    return actuals


def gauges(api) -> dict[tuple, float]:
    """The drift samples of a /metrics scrape, read as Prometheus parses them: {(name, labels...): value}."""
    response = api.get("/metrics")
    assert response.status_code == HTTPStatus.OK
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name.startswith("model_drift_"):
                where = sample.labels
                segment = markets.segment(where["marketplace"], where["category"]) if "category" in where else None
                labels = (where.get("version"), segment, where.get("reason"))
                found[(sample.name, *(label for label in labels if label is not None))] = sample.value
    return found


def drift_lines(html: str) -> list[str]:
    return [
        unescape(re.sub(r"<[^>]+>", "", line)) for line in re.findall(r'<li class="drift-alarm".*?</li>', html, re.S)
    ]


@pytest.fixture
def carded(api, trained_model) -> dict:
    return save_with_card(trained_model)


@pytest.fixture
def drifted(api, carded) -> dict:
    """40 books actuals at 2.5x the estimates, 40 electronics actuals with honest noise."""
    books, electronics = estimate(api, SHIFTED), estimate(api, HONEST)
    record(api, books, shifted(books))
    record(api, electronics, honest(electronics))
    return carded


@pytest.fixture
def admin(client, keys):
    response = client.post("/inspect/login", {"key": keys["admin"]})
    assert response.status_code == HTTPStatus.FOUND
    return client


# --- the three places -------------------------------------------------------------------------------


class TestAShiftedCurve:
    def test_flags_the_shifted_category_in_the_accuracy_resource(self, api, drifted):
        body = api.get(f"/models/{drifted['version']}/accuracy").json()  # the schema is checked too

        figures = body["drift"]["per_category"]
        assert body["drift"]["alarm"] is True and body["drift"]["drifted"] == [SHIFTED]
        assert figures[SHIFTED]["alarm"] is True and figures[SHIFTED]["actuals"] == 40
        # 2.5x the estimate is outside every stored interval, and its error is 1.5/2.5 = 60%
        assert figures[SHIFTED]["reasons"] == ["coverage", "median_error"]
        assert figures[SHIFTED]["live_coverage"] == 0.0
        assert figures[SHIFTED]["live_median_error"] == pytest.approx(0.6, abs=0.01)
        holdout = segments.keyed(drifted["model_card"]["per_category"])[SHIFTED]["median_error"]
        assert figures[SHIFTED]["median_error_limit"] == pytest.approx(1.5 * holdout)
        # the honest category: 80% inside, an error like the holdout's, no alarm
        assert figures[HONEST]["alarm"] is False and figures[HONEST]["reasons"] == []
        assert 0.75 <= figures[HONEST]["live_coverage"] <= 0.85
        assert figures[HONEST]["live_median_error"] < figures[HONEST]["median_error_limit"]
        assert figures["toys_games"]["actuals"] == 0 and figures["toys_games"]["needed"] == 30
        assert "under 0.70" in body["drift"]["rule"] and "1.5x" in body["drift"]["rule"]

    def test_raises_the_gauge_for_the_shifted_category_only(self, api, drifted):
        found = gauges(api)

        version = str(drifted["version"])
        assert found[("model_drift_alarm", version, SHIFTED, "coverage")] == 1
        assert found[("model_drift_alarm", version, SHIFTED, "median_error")] == 1
        raised = {key for key, value in found.items() if key[0] == "model_drift_alarm" and value}
        assert raised == {("model_drift_alarm", version, SHIFTED, reason) for reason in ("coverage", "median_error")}
        assert found[("model_drift_alarm", version, HONEST, "coverage")] == 0
        assert found[("model_drift_actuals", version, SHIFTED)] == 40
        assert found[("model_drift_live_coverage", version, SHIFTED)] == 0
        assert 0.75 <= found[("model_drift_live_coverage", version, HONEST)] <= 0.85
        assert found[("model_drift_check_success",)] == 1
        assert not any(key[1:2] == ("1",) for key in found)  # version 1 has no card: no series at all

    def test_puts_a_line_naming_it_on_the_inspection_page(self, admin, drifted):
        lines = drift_lines(admin.get("/inspect/").content.decode())

        holdout = segments.keyed(drifted["model_card"]["per_category"])[SHIFTED]["median_error"]
        assert len(lines) == 1, lines
        line = lines[0]
        assert f"version {drifted['version']}, us / {SHIFTED}" in line and "on 40 actuals" in line
        assert "live interval coverage 0% is under 70% (holdout 80%)" in line
        assert f"live median error 60% is over 1.5x the holdout's {holdout:.0%}" in line


class TestNoAlarm:
    def test_under_30_actuals_nothing_fires_and_the_30th_does(self, api, admin, carded):
        books = estimate(api, SHIFTED, RANKS[:30])
        record(api, books[:29], shifted(books[:29]))
        version = carded["version"]

        body = api.get(f"/models/{version}/accuracy").json()
        assert body["drift"]["alarm"] is False and body["drift"]["per_category"][SHIFTED]["needed"] == 1
        assert "1 more needed" in body["drift"]["per_category"][SHIFTED]["message"]
        assert not any(value for key, value in gauges(api).items() if key[0] == "model_drift_alarm")
        assert drift_lines(admin.get("/inspect/").content.decode()) == []

        record(api, books[29:], shifted(books[29:]))
        COLLECTOR.forget()  # the gauges are kept a minute

        assert api.get(f"/models/{version}/accuracy").json()["drift"]["drifted"] == [SHIFTED]
        assert gauges(api)[("model_drift_alarm", str(version), SHIFTED, "coverage")] == 1
        assert len(drift_lines(admin.get("/inspect/").content.decode())) == 1

    def test_a_version_without_a_card_has_no_holdout_figures_and_no_alarm(self, api, admin):
        registry = serving.model_registry()
        old = registry.save(legacy_trained_model())["version"]  # trained before model cards
        registry.activate(old)
        serving.reset()
        books = estimate(api, SHIFTED)
        record(api, books, [3 * item["estimated_sales_high"] + 1 for item in books])  # all above the interval

        body = api.get(f"/models/{old}/accuracy").json()

        assert body["drift"]["alarm"] is False and body["drift"]["holdout_figures"] is False
        assert body["drift"]["per_category"][SHIFTED]["live_coverage"] == 0.0  # measured, but no alarm
        assert "no holdout figures" in body["drift"]["note"]
        assert [key for key in gauges(api) if key[0] == "model_drift_alarm"] == []
        html = admin.get("/inspect/").content.decode()
        assert drift_lines(html) == [] and "Drift: no holdout figures" in html

    def test_no_request_computes_the_gauges_and_a_scrape_reads_them_once_a_minute(self, api, carded, monkeypatch):
        reads = []
        real = drift_metrics.drift_families

        def counted():
            reads.append(1)
            return real()

        monkeypatch.setattr(drift_metrics, "drift_families", counted)
        books = estimate(api, SHIFTED)
        record(api, books[:10], shifted(books[:10]))
        assert reads == []  # the estimates and the actuals recorded read no drift figures

        assert gauges(api)[("model_drift_actuals", str(carded["version"]), SHIFTED)] == 10
        record(api, books[10:], shifted(books[10:]))
        assert gauges(api)[("model_drift_actuals", str(carded["version"]), SHIFTED)] == 10  # kept
        assert reads == [1]
        COLLECTOR.forget()
        assert gauges(api)[("model_drift_actuals", str(carded["version"]), SHIFTED)] == 40
        assert reads == [1, 1]

    def test_a_failed_read_costs_the_scrape_only_the_drift_figures(self, api, carded, monkeypatch, caplog):
        from pymongo.errors import ServerSelectionTimeoutError

        def down():
            raise ServerSelectionTimeoutError("no primary")

        monkeypatch.setattr(drift_metrics, "drift_families", down)

        response = api.get("/metrics")

        text = response.content.decode()
        assert response.status_code == HTTPStatus.OK and "http_requests_total" in text
        assert gauges(api) == {("model_drift_check_success",): 0}
        assert "drift figures could not be read" in caplog.text


@pytest.mark.integration
def test_on_the_production_server_every_worker_scrapes_the_same_alarm(wire_server, tmp_path, trained_model):
    """gunicorn with two workers sharing PROMETHEUS_MULTIPROC_DIR: the gauge is read from the database at
    each scrape, so it says 1 whichever worker answers (not 2, nor a dead worker's value)."""
    metrics = tmp_path / "metrics"
    with trained_database(wire_server, "test_drift_live", "drift-live-signing-key-not-a-secret") as database:
        version = save_with_card(trained_model)["version"]
        env = {"MONGO_URI": wire_server.uri, "MONGO_DB_NAME": database, "WEB_CONCURRENCY": "2"}
        env.update(MODEL_SIGNING_KEY="drift-live-signing-key-not-a-secret", PROMETHEUS_MULTIPROC_DIR=str(metrics))
        server = LiveServer(env, tmp_path / "server.log")
        server.start()
        try:
            # Given 40 books actuals at 2.5x the estimates, recorded over HTTP as a client records them
            items = [{"bestseller_rank": rank, "category": SHIFTED} for rank in RANKS]
            status, body, _ = request("POST", server.url + "/estimations", items)
            assert status == HTTPStatus.CREATED, body
            for item, actual in zip(body["_items"], shifted(body["_items"]), strict=True):
                answer = request(
                    "PATCH",
                    f"{server.url}/estimations/{item['_id']}",
                    {"actual_sales": actual, "actual_period": "2026-11"},
                    {"If-Match": item["_etag"]},
                )
                assert answer[0] == HTTPStatus.OK, answer[1]
            # When Prometheus scrapes 20 times, each on a new connection (spread over both workers)
            scrapes = []
            for _ in range(20):
                with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
                    scrapes.append(response.read().decode())
        finally:
            server.stop()

    # Then every scrape raised the alarm once, for books, whichever worker answered it
    alarm = f'model_drift_alarm{{category="books",marketplace="us",reason="coverage",version="{version}"}}'
    assert all(f"{alarm} 1.0" in text for text in scrapes), [
        line for line in scrapes[0].splitlines() if "drift" in line
    ]
    assert all('category="electronics",marketplace="us",reason="coverage"' in text for text in scrapes)
    assert not any(
        re.search(r'model_drift_alarm\{category="(?!books)[^"]+",marketplace="\w+",reason="\w+",version="\d+"\} 1', t)
        for t in scrapes
    )
    answered = counts_by_worker(metrics, '"http_requests_total"', '"metrics"')
    assert len(answered) == 2 and sum(answered.values()) == 20, answered  # both workers answered scrapes


# --- the rule itself ---------------------------------------------------------------------------------


def figures(estimated, actual, low=None, high=None, median_error=0.2) -> dict:
    estimated = np.asarray(estimated, dtype=np.float64)
    recorded = Recorded(
        estimated,
        np.asarray(low if low is not None else estimated * 0.5, dtype=np.float64),
        np.asarray(high if high is not None else estimated * 2, dtype=np.float64),
        np.asarray(actual, dtype=np.float64),
    )
    return drift.category_drift(3, "books", recorded, {"median_error": median_error, "coverage": {"overall": 0.8}})


class TestRule:
    def test_median_error_over_one_and_a_half_times_the_holdouts_alone(self):
        # every actual inside [0.5x, 2x], but 1.4x the estimate: error 0.4/1.4 = 0.286 > 1.5 x 0.18 = 0.27
        shown = figures([100] * 30, [140] * 30, median_error=0.18)
        assert shown["reasons"] == ["median_error"] and shown["live_coverage"] == 1.0
        # at 1.5 x 0.2 = 0.3 it is within the margin
        assert figures([100] * 30, [140] * 30, median_error=0.2)["alarm"] is False

    def test_coverage_under_seventy_percent_alone(self):
        # 9 of 30 just outside the interval (coverage 0.70 is not under 0.70); 10 of 30 is
        low, high = [95] * 30, [105] * 30
        at_the_floor = figures([100] * 30, [100] * 21 + [106] * 9, low=low, high=high)
        under = figures([100] * 30, [100] * 20 + [106] * 10, low=low, high=high)
        assert at_the_floor["live_coverage"] == pytest.approx(0.7) and at_the_floor["alarm"] is False
        assert under["reasons"] == ["coverage"]

    def test_29_actuals_raise_nothing_and_say_how_many_more(self):
        shown = figures([100] * 29, [1000] * 29)
        assert shown["alarm"] is False and shown["needed"] == 1 and shown["live_coverage"] == 0.0
        assert figures([100] * 30, [1000] * 30)["alarm"] is True

    def test_a_zero_sold_counts_for_coverage_not_for_the_error(self):
        shown = figures([100] * 30, [0] + [100] * 29, low=[1] * 30)
        assert shown["live_coverage"] == pytest.approx(29 / 30) and shown["live_median_error"] == 0.0

    def test_without_a_card_no_alarm(self):
        recorded = Recorded(*(np.full(40, value, dtype=np.float64) for value in (100, 50, 200, 1000)))
        shown = drift.category_drift(1, "books", recorded, None)
        assert shown["alarm"] is False and "no holdout figures" in shown["message"]


@pytest.mark.parametrize(
    "card",
    [3, {"per_category": 3}, {"per_category": {"books": 5}}, {"per_category": {"books": {"coverage": 7}}}],
    ids=["a-number", "categories-a-number", "a-category-a-number", "coverage-a-number"],
)
def test_an_unreadable_stored_card_raises_no_alarm_and_no_error_anywhere(api, admin, trained_model, card):
    registry = serving.model_registry()
    version = registry.save(TrainedModel(trained_model.pipeline, {**trained_model.metadata, "model_card": card}))[
        "version"
    ]
    registry.activate(version)
    serving.reset()
    books = estimate(api, SHIFTED)
    record(api, books, shifted(books))

    accuracy = api.get(f"/models/{version}/accuracy")

    assert accuracy.status_code == HTTPStatus.OK and accuracy.json()["drift"]["alarm"] is False
    assert api.get(f"/models/{version}").status_code == HTTPStatus.OK
    assert api.get("/metrics").status_code == HTTPStatus.OK
    assert admin.get("/inspect/").status_code == HTTPStatus.OK
