"""/inspect/: the model card table, the curves as one panel per category, and /inspect/curves.svg."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import unescape
from http import HTTPStatus

import pytest

from ml.markets import split_segment
from ml.serving import model_registry
from modelops import segments
from modelops.model_card import card_tables
from tests.helpers import assert_error_envelope
from tests.model_card import model_card, with_card
from tests.modelops.fakes import ordered


@pytest.fixture
def signed_in(client, keys):
    assert client.post("/inspect/login", {"key": keys["admin"]}).status_code == HTTPStatus.FOUND
    return client


def activate(trained_model, card=None) -> dict:
    registry = model_registry()
    registry.ensure_indexes()
    metadata = registry.save(with_card(trained_model, card))
    registry.activate(metadata["version"])
    return metadata


def table(html: str, table_id: str) -> dict[str, list[str]]:
    """A table's rows by their first cell, each as its cells' text."""
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    found = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = [
            re.sub(r"<[^>]+>", " ", c.replace("<wbr>", "")).split()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        found[" ".join(cells[0])] = [unescape(" ".join(c)) for c in cells[1:]]
    return found


def test_the_card_shows_each_categorys_rows_coverage_and_slopes(signed_in, mongo_db, trained_model):
    metadata = activate(trained_model)
    card = metadata["model_card"]["per_category"]
    html = signed_in.get("/inspect/").content.decode()

    coverage = table(html, "card-coverage")
    assert coverage["marketplace / category"] == ["training rows", "interval coverage", "median error"]
    assert coverage["all"] == ["head 1–299", "middle 300–30k", "tail > 30k"]  # the second header row
    for name, figures in segments.keyed(card).items():
        assert coverage[split_segment(name)[0]] == []  # its marketplace's heading row
        shown = coverage[segments.label(name)]
        assert shown[0] == f"{figures['training_rows']:,}"
        assert f'title="and {figures["holdout_rows"]:,} held out">{figures["training_rows"]:,}<' in html
        expected = [figures["coverage"][band] for band in ("overall", "head", "middle", "tail")]
        assert shown[1:5] == ["–" if share is None else f"{share:.0%}" for share in expected]
        assert shown[5] == f"{figures['median_error']:.0%}"
    assert coverage["all segments"][0] == f"{sum(f['training_rows'] for f in card.values()):,}"
    slopes = table(html, "card-slopes")
    assert slopes["marketplace / category"] == ["1–10", "10–100", "100–1k", "1k–10k", "10k–100k", "100k–1M", "sigma"]
    for name, figures in segments.keyed(card).items():
        assert slopes[segments.label(name)][:6] == [f"{d['slope']:.2f}" for d in figures["slope_by_decade"]]


def test_coverage_outside_70_to_90_percent_is_flagged(signed_in, mongo_db, trained_model):
    card = model_card(trained_model.metadata["markets"]["us"])  # every band inside 70-90% but this one
    card["per_category"]["books"]["coverage"]["head"] = 0.64
    activate(trained_model, card)

    html = signed_in.get("/inspect/").content.decode()

    flagged = re.findall(
        r'<tr class="card-row" data-segment="([^"]+)"[^>]*>(?:(?!</tr>).)*class="coverage off"', html, re.S
    )
    assert flagged == ["books"]
    assert 'title="64.0%: outside 70%–90%"' in html


def test_names_in_the_card_are_escaped(signed_in, mongo_db, trained_model):
    card = model_card([*trained_model.metadata["categories"], "<i>x</i>"])
    activate(trained_model, card)

    html = signed_in.get("/inspect/").content.decode()

    assert "<i>x</i>" not in html and "&lt;i&gt;x&lt;/i&gt;" in html


def test_a_version_without_a_card_says_so(signed_in, active_model, mongo_db):
    # as a version trained before cards: the card taken away
    mongo_db["models"].update_one({"version": active_model["version"]}, {"$unset": {"model_card": ""}})

    html = signed_in.get("/inspect/").content.decode()

    assert "Not recorded: this version was trained before the service kept model cards." in html


@pytest.mark.parametrize("card", [{"per_category": 3}, {"per_category": {"books": {"training_rows": 5}}}, {"x": 1}])
def test_a_card_that_cannot_be_read_is_said_so(card):
    assert "model card could not be read" in card_tables({"version": 3, "model_card": card})["missing"]


def test_the_curves_are_one_panel_per_category(signed_in, active_model):
    html = signed_in.get("/inspect/").content.decode()

    names = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="panel" data-segment="([^"]+)"', html)
    assert names == ordered(segments.of_version(active_model))
    assert len(re.findall(r'class="panel-title"', html)) == len(names)
    assert 'href="/inspect/curves.svg"' in html


def test_the_curves_file(signed_in, active_model):
    response = signed_in.get("/inspect/curves.svg")

    assert response.status_code == HTTPStatus.OK and response["Content-Type"].startswith("image/svg+xml")
    svg = ET.fromstring(response.content)
    panels = svg.findall("{http://www.w3.org/2000/svg}svg[@class='panel']")
    assert [p.get("data-segment") for p in panels] == ordered(segments.of_version(active_model))


def test_the_curves_file_needs_an_admin_and_a_model(client, signed_in, mongo_db):
    assert_error_envelope(signed_in.get("/inspect/curves.svg"), 404)
    signed_in.post("/inspect/logout")
    response = client.get("/inspect/curves.svg")
    assert response.status_code == HTTPStatus.FOUND and response["Location"] == "/inspect/login"
