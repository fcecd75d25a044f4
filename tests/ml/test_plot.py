"""The curves chart (ml/plot.py): one panel per marketplace x category on shared axes, grouped by
marketplace, names escaped, smooth lines; a model of before marketplaces draws as us."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from ml.markets import segment
from ml.plot import (
    COLOURS,
    HEADER,
    MARKET_HEADER,
    PANEL_HEIGHT,
    PANEL_WIDTH,
    SAMPLES,
    accuracy_svg,
    compact_number,
    curve_panels,
    curves_svg,
    segments_of,
)
from ml.predictor import Predictor
from tests.modelops.fakes import CATEGORIES, three_markets

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & co'


class WholeUnits:
    """A model whose estimates are whole numbers (so its tail is a staircase) and which offers no curve."""

    version = 7

    def __init__(self, categories: tuple[str, ...], trained_up_to: float = 500_000):
        self.categories = categories
        self.trained_up_to = trained_up_to

    def estimate_arrays(self, ranks, categories, marketplaces=None):
        scale = np.array([2.0 + self.categories.index(name) for name in categories])
        sales = np.rint(scale * 50_000 * np.asarray(ranks) ** -0.8)
        return sales, np.rint(sales * 0.6), np.rint(sales * 1.6 + 1), np.asarray(ranks) > self.trained_up_to


def points(element) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in element.get("points").split()]


def panels(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(f"{SVG}svg[@class='panel']")


def test_one_panel_per_category_each_titled_with_its_band_and_line():
    svg = ET.fromstring(curves_svg(WholeUnits(("books", "toys", "beauty"))))

    found = panels(svg)
    assert [p.get("data-category") for p in found] == ["books", "toys", "beauty"]
    assert {p.get("data-marketplace") for p in found} == {"us"}  # a model of before marketplaces: all us
    for panel in found:
        name = panel.get("data-category")
        assert panel.get("data-segment") == name  # in us: named by its category
        assert panel.find(f"{SVG}text[@class='panel-title']").text == f"us / {name}"
        assert len(panel.findall(f".//{SVG}polyline[@class='curve']")) == 1
        assert len(panel.findall(f".//{SVG}polygon[@class='band']")) == 1
        assert len(panel.findall(f".//{SVG}polyline[@class='context']")) == 2  # the other categories, in grey


def test_panels_tile_without_overlapping_in_columns():
    svg = ET.fromstring(curves_svg(WholeUnits(tuple(f"c{i}" for i in range(8))), columns=4))

    boxes = [tuple(float(p.get(k)) for k in ("x", "y", "width", "height")) for p in panels(svg)]
    assert {(x, y) for x, y, _, _ in boxes} == {
        (c * PANEL_WIDTH, HEADER + MARKET_HEADER + r * PANEL_HEIGHT) for r in (0, 1) for c in range(4)
    }
    assert float(svg.get("width")) == 4 * PANEL_WIDTH and "max-width:100%" in svg.get("style")
    assert svg.get("viewBox") == f"0 0 {svg.get('width')} {svg.get('height')}"


def test_names_are_escaped_in_titles_and_attributes():
    text = curves_svg(WholeUnits((HOSTILE, "books")), title="<v2>")

    assert "<script>" not in text and "<v2>" not in text
    svg = ET.fromstring(text)  # still well-formed XML
    assert panels(svg)[0].get("data-category") == HOSTILE
    assert panels(svg)[0].find(f"{SVG}text[@class='panel-title']").text == f"us / {HOSTILE}"
    assert svg.find(f"{SVG}text").text.startswith("<v2>: ")


def test_axes_are_shared_decades_of_rank_and_units():
    svg = ET.fromstring(curves_svg(WholeUnits(("a", "b"))))

    ticks = [
        (
            [t.text for t in p.iter(f"{SVG}text") if t.get("class") == "x-tick"],
            [t.text for t in p.iter(f"{SVG}text") if t.get("class") == "y-tick"],
        )
        for p in panels(svg)
    ]
    assert ticks[0] == ticks[1]  # the same axes in every panel
    assert ticks[0][0] == ["1", "10", "100", "1k", "10k", "100k", "1M"]
    # b's rank-1 high is 3 * 50,000 * 1.6 + 1 = 240,001: the shared y axis reaches the next decade, 1M
    assert ticks[0][1] == ["1", "10", "100", "1k", "10k", "100k", "1M"]


def test_a_whole_number_tail_is_drawn_smooth_not_as_a_staircase():
    svg = ET.fromstring(curves_svg(WholeUnits(("a",))))

    line = points(svg.find(f".//{SVG}polyline[@class='curve']"))
    inside = [(x, y) for x, y in line if y < 30 + (PANEL_HEIGHT - 30 - 36)]  # above the bottom axis
    assert len(inside) > 20
    # no flat treads: every drawn point is lower than the one before it (but at the very ends, where the
    # line runs from the middle of the last step to the edge of the plot)
    between = inside[:-1]
    assert all(b[1] > a[1] for a, b in zip(between, between[1:], strict=False)), inside


def test_ranks_outside_the_training_data_are_tinted():
    svg = ET.fromstring(curves_svg(WholeUnits(("a",), trained_up_to=100_000)))

    (tint,) = svg.findall(f".//{SVG}rect[@class='untrained']")
    start, end = float(tint.get("x")), float(tint.get("x")) + float(tint.get("width"))
    assert end == pytest.approx(PANEL_WIDTH - 12, abs=0.2)  # to the right edge of the plot
    assert start == pytest.approx(46 + (PANEL_WIDTH - 58) * 5 / 6, abs=2)  # from rank ~100k


def test_the_real_model_draws_its_continuous_curve(trained_model):
    model = Predictor.from_metadata(trained_model.pipeline, version=1, metadata=trained_model.metadata)

    drawn = [panel for group in curve_panels(model).values() for panel in group]
    found = [ET.fromstring(panel) for panel in drawn]

    trained = [segment(mp, c) for mp, names in segments_of(model).items() for c in names]  # us first
    assert [p.get("data-segment") for p in found] == trained
    for panel in found:
        line = points(panel.find(f".//{SVG}polyline[@class='curve']"))
        assert len(line) == SAMPLES  # the continuous curve, sampled, not collapsed through steps
        assert all(b[1] >= a[1] for a, b in zip(line, line[1:], strict=False))  # falls with rank
    ids = [re.search(r'clipPath id="([^"]+)"', panel).group(1) for panel in drawn]
    assert len(set(ids)) == len(ids)  # the page inlines them all: ids must not collide


@pytest.mark.parametrize(("value", "shown"), [(1, "1"), (10, "10"), (1000, "1k"), (100_000, "100k"), (1e6, "1M")])
def test_compact_numbers(value, shown):
    assert compact_number(value) == shown


def test_three_marketplaces_draw_in_groups_each_category_in_its_own_colour():
    model = three_markets()
    svg = ET.fromstring(curves_svg(model))

    headings = [t for t in svg.findall(f"{SVG}text") if t.get("class") == "marketplace"]
    assert [t.text for t in headings] == ["Marketplace us", "Marketplace de", "Marketplace uk"]
    found = panels(svg)
    assert [p.get("data-segment") for p in found] == [segment(mp, c) for mp in ("us", "de", "uk") for c in CATEGORIES]
    boxes = [tuple(float(p.get(k)) for k in ("x", "y", "width", "height")) for p in found]
    assert len(set(boxes)) == 24 and max(x + w for x, _, w, _ in boxes) <= 4 * PANEL_WIDTH
    tops = sorted({y for _, y, _, _ in boxes})
    heading_y = [float(t.get("y")) for t in headings]
    assert all(any(top - MARKET_HEADER == pytest.approx(y - 18) for top in tops) for y in heading_y)  # above its own
    assert float(svg.get("height")) >= tops[-1] + PANEL_HEIGHT
    colour = {p.get("data-segment"): p.find(f".//{SVG}polyline[@class='curve']").get("stroke") for p in found}
    for index, category in enumerate(CATEGORIES):
        assert {colour[segment(mp, category)] for mp in ("us", "de", "uk")} == {COLOURS[index]}
    for panel in found:  # grey behind it: its marketplace's other seven categories, not all 23
        assert len(panel.findall(f".//{SVG}polyline[@class='context']")) == 7


def test_the_line_is_the_models_daily_rate_a_month_of_it_in_its_marketplace():
    model = three_markets()
    (uk_books,) = [ET.fromstring(p) for p in curve_panels(model)["uk"] if 'data-category="books"' in p]

    line = points(uk_books.find(f".//{SVG}polyline[@class='curve']"))
    assert len(line) == SAMPLES  # the continuous rate, not whole-unit steps
    (us_books,) = [ET.fromstring(p) for p in curve_panels(model)["us"] if 'data-category="books"' in p]
    assert points(us_books.find(f".//{SVG}polyline[@class='curve']"))[0][1] < line[0][1]  # uk sells less: lower


def test_the_accuracy_chart_has_rows_per_marketplace_and_segment():
    live = {
        "overall": {"rows": 3, "within_2x": 1.0},
        "per_marketplace": {"us": {"rows": 2, "within_2x": 1.0}, "uk": {"rows": 1, "within_2x": 0.5}},
        "per_category": {"uk/books": {"rows": 1, "within_2x": 0.5}, "books": {"rows": 2, "within_2x": 1.0}},
    }
    holdout = {"overall": {"rows": 9, "within_2x": 0.8}, "per_category": {"books": {"rows": 9, "within_2x": 0.8}}}

    svg = ET.fromstring(accuracy_svg(3, live, holdout))

    labels = [t.text for t in svg.findall(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert labels == ["overall", "us", "us / books", "uk", "uk / books"]
    bars = {(r.get("class"), r.get("data-segment") or r.get("data-marketplace")) for r in svg.findall(f"{SVG}rect")}
    assert {("bar live", "uk"), ("bar live", "uk/books"), ("bar holdout", "books")} <= bars
    assert ("bar holdout", "uk/books") not in bars  # no holdout figures for it: no grey bar
