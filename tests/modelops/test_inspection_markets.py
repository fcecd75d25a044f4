"""/inspect/ with three marketplaces x eight categories: the card, holdout, curves, live accuracy and
replays grouped by marketplace, segments named "marketplace / category"; filters by marketplace. The
served model is a fake of the contract (tests/modelops/fakes.py) beside a registry version saying the same."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from http import HTTPStatus

import pytest
from bson import ObjectId

from ml.markets import segment, split_segment
from ml.train import TrainedModel
from modelops import inspection
from tests.model_card import model_card
from tests.modelops.fakes import CATEGORIES, three_markets

MARKETS = ("us", "de", "uk")  # as the page orders them: us first, then by code
SEGMENTS = [segment(mp, category) for mp in MARKETS for category in CATEGORIES]


@pytest.fixture
def page(client, keys, mongo_db, trained_model, monkeypatch):
    """Signed in; version 1 trained for 24 segments (card and holdout keyed by segment) and served."""
    from ml.serving import model_registry

    card = model_card(SEGMENTS)
    for name, entry in card["per_category"].items():
        entry["marketplace"], entry["category"] = split_segment(name)
    held = {name: {"rows": 40, "rmse_log1p": 0.4, "median_ape": 0.3, "within_2x": 0.75} for name in SEGMENTS}
    metrics = {
        "overall": {"rows": 960, "rmse_log1p": 0.4, "median_ape": 0.3, "within_2x": 0.75},
        "per_marketplace": {
            mp: {"rows": 320, "rmse_log1p": 0.4, "median_ape": 0.3, "within_2x": 0.7} for mp in MARKETS
        },
        "per_category": held,
    }
    metadata = {**trained_model.metadata, "model_card": card, "metrics": metrics}
    registry = model_registry()
    registry.ensure_indexes()
    registry.activate(registry.save(TrainedModel(trained_model.pipeline, metadata))["version"])
    monkeypatch.setattr(inspection, "get_estimator", lambda: three_markets(version=1))
    assert client.post("/inspect/login", {"key": keys["admin"]}).status_code == HTTPStatus.FOUND
    return client


def store(mongo_db, rank: int, category: str, marketplace: str | None, **more) -> None:
    document = {
        "_id": ObjectId(),
        "_created": datetime(2026, 11, 1, tzinfo=UTC),
        "_updated": datetime(2026, 11, 1, tzinfo=UTC),
        "bestseller_rank": rank,
        "category": category,
        "estimated_sales": 100,
        "estimated_sales_low": 60,
        "estimated_sales_high": 160,
        "model_version": 1,
        **({"marketplace": marketplace} if marketplace else {}),
        **more,
    }
    mongo_db["estimations"].insert_one(document)


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html.replace("<wbr>", ""))).split())


def section(html: str, name: str) -> str:
    return re.search(rf'<section id="{name}">(.*?)</section>', html, re.S).group(1)


def test_the_card_and_holdout_are_grouped_by_marketplace(page):
    html = page.get("/inspect/").content.decode()

    coverage = re.search(r'<table id="card-coverage">(.*?)</table>', html, re.S).group(1)
    groups = re.findall(r'<tr class="card-group" data-marketplace="(\w+)">', coverage)
    assert groups == list(MARKETS)
    assert re.findall(r'<tr class="card-row" data-segment="([^"]+)"', coverage) == SEGMENTS
    row = re.search(r'<tr class="card-row" data-segment="uk/sports_outdoors".*?</tr>', coverage, re.S).group(0)
    assert text(row).startswith("uk / sports_outdoors 1,")
    # a group's rows follow its heading: uk's after "uk", none of them after another marketplace's heading
    assert coverage.index('data-marketplace="uk">') < coverage.index('data-segment="uk/beauty"')
    assert coverage.index('data-segment="de/toys"') < coverage.index('data-marketplace="uk">')
    holdout = re.search(r'<table id="holdout-metrics">(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'<tr class="holdout-group" data-marketplace="(\w+)">', holdout) == list(MARKETS)
    assert len(re.findall(r'<tr class="segment" data-segment=', holdout)) == 24
    assert text(re.search(r'data-marketplace="de">(.*?)</tr>', holdout, re.S).group(1)) == "de 320 0.400 30% 70%"


def test_the_curves_are_one_panel_per_segment_under_its_marketplace(page):
    chart = section(page.get("/inspect/").content.decode(), "chart")

    headings = re.findall(r'<h3 class="marketplace" data-marketplace="(\w+)">Marketplace \w+</h3>', chart)
    assert headings == list(MARKETS)
    for marketplace in MARKETS:
        grid = re.search(rf'<div class="panels" data-marketplace="{marketplace}">(.*?)</div>', chart, re.S).group(1)
        shown = re.findall(r'<svg [^>]*class="panel" data-segment="([^"]+)"', grid)
        assert shown == [segment(marketplace, category) for category in CATEGORIES]
        titles = re.findall(r'<text class="panel-title"[^>]*>([^<]+)</text>', grid)
        assert titles == [f"{marketplace} / {category}" for category in CATEGORIES]


def test_live_accuracy_per_marketplace_and_segment_old_documents_as_us(page, mongo_db):
    store(mongo_db, 10, "books", None, actual_sales=100, actual_period="2026-10")  # before marketplaces: us
    store(mongo_db, 10, "books", "uk", actual_sales=400, actual_period="2026-10")
    store(mongo_db, 10, "books", "uk", actual_sales=100, actual_period="2026-10")

    accuracy = section(page.get("/inspect/").content.decode(), "accuracy")

    table = re.search(r'<table class="accuracy-table" data-version="1">(.*?)</table>', accuracy, re.S).group(1)
    marketplace_rows = re.findall(r'<tr class="marketplace" data-marketplace="(\w+)">', table)
    assert marketplace_rows == list(MARKETS)
    uk = text(re.search(r'<tr class="marketplace" data-marketplace="uk">(.*?)</tr>', table, re.S).group(1))
    assert uk.startswith("uk 2 ") and uk.endswith("70%")  # live rows, then the holdout's per-marketplace figure
    books = text(re.search(r'<tr class="segment" data-segment="uk/books">(.*?)</tr>', table, re.S).group(1))
    assert books.startswith("uk / books 2 ") and books.endswith("0.400 75%")
    us = text(re.search(r'<tr class="segment" data-segment="books">(.*?)</tr>', table, re.S).group(1))
    assert us.startswith("us / books 1 ")
    assert 'class="bar live" data-segment="uk/books"' in accuracy and 'data-marketplace="de"' in accuracy


def test_a_replay_is_shown_by_marketplace_with_what_it_skipped(page, mongo_db):
    figures = {"rows": 2, "median_ratio": 2.0, "mean_abs_log1p_change": 0.7, "share_over_2x": 0.5, "with_actuals": 0}
    figures |= {"candidate": None, "active": None, "closer": None}
    mongo_db["replays"].insert_one(
        {
            "created": datetime(2026, 11, 2, tzinfo=UTC),
            "version": 2,
            "against_version": 1,
            "actor": {"name": "ops", "via": "cli"},
            "sample": None,
            "rows": 4,
            "skipped_rows": 3,
            "skipped": {"jp/books": {"rows": 3, "lacking": ["candidate"], "message": "3 estimations in jp/books: x"}},
            "overall": {**figures, "rows": 4},
            "per_marketplace": {"uk": figures, "us": figures},
            "per_category": {"uk/books": figures, "toys": figures},
        }
    )
    mongo_db["replays"].insert_one(  # a report of before marketplaces: bare categories, no per_marketplace
        {
            "created": datetime(2026, 10, 2, tzinfo=UTC),
            "version": 1,
            "against_version": 1,
            "actor": {"name": "ops", "via": "cli"},
            "sample": None,
            "rows": 2,
            "skipped_rows": 1,
            "overall": figures,
            "per_category": {"books": figures},
        }
    )

    replays = section(page.get("/inspect/").content.decode(), "replays")

    new, old = re.findall(r'<table class="replay-table">(.*?)</table>', replays, re.S)
    assert re.findall(r'data-(?:marketplace|segment)="([^"]+)"', new) == ["us", "toys", "uk", "uk/books"]
    assert "Skipped: 3 estimations in jp/books: x." in replays
    assert re.findall(r'data-(?:marketplace|segment)="([^"]+)"', old) == ["us", "books"]
    assert "Skipped: 1 estimations in a category one of the models lacks." in replays


@pytest.mark.parametrize(
    ("query", "ranks"),
    [
        ("marketplace=uk", [30, 20]),
        ("marketplace=us", [40, 10]),
        ("marketplace=us&category=books", [10]),
        ("", [40, 30, 20, 10]),
    ],
)
def test_recent_estimations_filter_by_marketplace_old_ones_in_us(page, mongo_db, query, ranks):
    store(mongo_db, 10, "books", None)
    store(mongo_db, 20, "books", "uk")
    store(mongo_db, 30, "toys", "uk")
    store(mongo_db, 40, "toys", "us")

    html = page.get(f"/inspect/?{query}").content.decode()

    shown = re.findall(r'<tr class="estimation">(.*?)</tr>', html, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in shown]
    assert [int(text(row[5])) for row in cells] == ranks
    assert all(row[3] in ("us", "uk") for row in cells)  # the marketplace column: us for the old one


def test_an_unknown_marketplace_filter_is_ignored_and_said(page, mongo_db):
    store(mongo_db, 10, "books", "uk")

    html = page.get("/inspect/?marketplace=zz").content.decode()

    assert "Ignored: unknown marketplace &#x27;zz&#x27;." in html
    assert len(re.findall(r'<tr class="estimation">', html)) == 1
