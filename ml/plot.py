"""The model's curves drawn as standalone SVG: estimated monthly sales against BSR, log-log, as small
multiples (one panel per segment, marketplace x category, grouped by marketplace; shared axes, each with its
own 80% band). No plotting library is needed; the file opens in any browser. Notes: docs/architecture.md."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any, Protocol

import numpy as np

from ml.history import DAYS_PER_MONTH
from ml.markets import DEFAULT_MARKETPLACE, segment, split_segment


class Drawable(Protocol):
    """What the chart needs of a model: ml.predictor's Predictor, or any served model like it."""

    version: int
    categories: tuple[str, ...]

    def estimate_arrays(
        self, ranks: np.ndarray, categories: Sequence[str], marketplaces: Sequence[str] | None = None
    ) -> tuple[np.ndarray, ...]: ...


COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
# One panel, in its own viewBox units; the page lays panels out in a CSS grid, the file in COLUMNS.
PANEL_WIDTH, PANEL_HEIGHT = 300, 230
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 30, 36
COLUMNS, HEADER, FOOTER, MARKET_HEADER = 4, 48, 24, 26
SAMPLES = 241  # ranks drawn per curve, evenly spaced in log rank (float ranks: no rounding to whole ranks)
Y_FLOOR = 1.0  # 1 unit a month at the bottom; less is clipped at the axis


def compact_number(value: float) -> str:
    """1, 10, 100, 1k, 10k, 100k, 1M: tick labels and decade headers."""
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _through_steps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A whole-number series (counts) as a line through the middle of each flat step, in log x; a series
    that changes at every sample comes back as it was. Both ends are kept."""
    change = np.flatnonzero(np.diff(y) != 0) + 1
    starts, ends = np.concatenate([[0], change]), np.concatenate([change - 1, [len(y) - 1]])
    log_x = np.log(x)
    middle = np.exp((log_x[starts] + log_x[ends]) / 2)
    xs = np.concatenate([[x[0]], middle, [x[-1]]])
    ys = np.concatenate([[y[0]], y[starts], [y[-1]]]).astype(np.float64)
    keep = np.concatenate([[True], np.diff(xs) > 0])
    return xs[keep], ys[keep]


def _median_line(model: Any, ranks: np.ndarray, where: tuple[list[str], list[str]], sales: np.ndarray) -> tuple:
    """The model's continuous median (its daily rate, a month of it) where it offers one, else its estimates
    through their steps. ``where``: the rows' categories and marketplaces."""
    if hasattr(model, "daily_arrays"):
        daily = np.asarray(model.daily_arrays(ranks, *where), dtype=np.float64)
        if np.all(np.isfinite(daily)):
            return ranks, daily * DAYS_PER_MONTH
    return _through_steps(ranks, sales)


def segments_of(model: Drawable) -> dict[str, tuple[str, ...]]:
    """Marketplace -> its categories, us first: the model's markets (one trained before them: all us)."""
    markets = getattr(model, "markets", None)
    markets = markets if isinstance(markets, dict) else {DEFAULT_MARKETPLACE: tuple(model.categories)}
    order = sorted(markets, key=lambda code: (code != DEFAULT_MARKETPLACE, code))
    return {code: tuple(markets[code]) for code in order}


class _Series:
    def __init__(self, model: Drawable, marketplace: str, category: str, ranks: np.ndarray, colour: int = 0):
        where = ([category] * len(ranks), [marketplace] * len(ranks))
        sales, low, high, extrapolated = model.estimate_arrays(ranks, *where)
        self.marketplace, self.category, self.colour = marketplace, category, colour
        self.name = segment(marketplace, category)
        self.label = f"{marketplace} / {category}"
        self.line = _median_line(model, ranks, where, sales)
        self.low, self.high = _through_steps(ranks, low), _through_steps(ranks, high)
        self.top = float(np.max(high))
        trained = ranks[~np.asarray(extrapolated, dtype=bool)]
        self.trained = (float(trained[0]), float(trained[-1])) if len(trained) else None


class _Axes:
    """Shared by every panel: log10 rank from 1 to x_max across, log10 units from Y_FLOOR to y_max up."""

    def __init__(self, x_max: float, y_max: float):
        self.x_max, self.y_max = x_max, y_max
        self.width, self.height = PANEL_WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM

    def x(self, rank: float) -> float:
        return LEFT + self.width * math.log10(rank) / math.log10(self.x_max)

    def y(self, units: float) -> float:
        share = (math.log10(max(units, Y_FLOOR / 100)) - math.log10(Y_FLOOR)) / math.log10(self.y_max / Y_FLOOR)
        return TOP + self.height * (1 - share)

    def points(self, xs: Iterable[float], ys: Iterable[float]) -> list[str]:
        return [f"{self.x(r):.1f},{self.y(v):.1f}" for r, v in zip(xs, ys, strict=True)]


def _panel(axes: _Axes, series: _Series, others: list[_Series], index: int, placement: str = "") -> str:
    """One segment's panel, a complete <svg> (placement: x, y, width and height inside a bigger one);
    ``others``: the same marketplace's other categories, drawn grey behind it."""
    name, colour, clip = escape(series.label), COLOURS[series.colour % len(COLOURS)], f"curves-clip-{index}"
    bottom, right = TOP + axes.height, LEFT + axes.width
    data = (
        f'data-segment="{escape(series.name)}" data-marketplace="{escape(series.marketplace)}" '
        f'data-category="{escape(series.category)}"'
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="panel" {data} {placement}'
        f'viewBox="0 0 {PANEL_WIDTH} {PANEL_HEIGHT}" font-family="sans-serif" font-size="11" role="img" '
        f'aria-label="{name}: estimated monthly sales by Best Seller Rank, with its 80% interval">',
        f'<title>{name}</title><rect class="panel-frame" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" fill="white"/>',
        f'<defs><clipPath id="{clip}"><rect x="{LEFT}" y="{TOP}" width="{axes.width}" height="{axes.height}"/>'
        "</clipPath></defs>",
    ]
    if series.trained:
        first, last = axes.x(series.trained[0]), axes.x(series.trained[1])
        for start, end in ((LEFT, first), (last, right)):
            if end - start > 0.5:
                parts.append(
                    f'<rect class="untrained" x="{start:.1f}" y="{TOP}" width="{end - start:.1f}" '
                    f'height="{axes.height}" fill="#f1f1f4"><title>ranks outside the training data</title></rect>'
                )
    for power in range(round(math.log10(axes.x_max)) + 1):
        px = axes.x(10**power)
        parts.append(
            f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{bottom}" stroke="#e4e4e4"/>'
            f'<text class="x-tick" x="{px:.1f}" y="{bottom + 14}" text-anchor="middle">'
            f"{compact_number(10**power)}</text>"
        )
    for power in range(round(math.log10(axes.y_max / Y_FLOOR)) + 1):
        py = axes.y(Y_FLOOR * 10**power)
        parts.append(
            f'<line x1="{LEFT}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#e4e4e4"/>'
            f'<text class="y-tick" x="{LEFT - 4}" y="{py + 4:.1f}" text-anchor="end">'
            f"{compact_number(Y_FLOOR * 10**power)}</text>"
        )
    parts.append(f'<g clip-path="url(#{clip})">')
    for other in others:
        parts.append(
            f'<polyline class="context" points="{" ".join(axes.points(*other.line))}" fill="none" '
            'stroke="#c8c8c8" stroke-width="1"/>'
        )
    band = axes.points(*series.high) + axes.points(series.low[0][::-1], series.low[1][::-1])
    parts.append(
        f'<polygon class="band" {data} points="{" ".join(band)}" fill="{colour}" '
        'fill-opacity="0.22" stroke="none"><title>80% interval</title></polygon>'
        f'<polyline class="curve" {data} points="{" ".join(axes.points(*series.line))}" '
        f'fill="none" stroke="{colour}" stroke-width="2.2"><title>{name}: median estimate</title></polyline></g>'
    )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{axes.width}" height="{axes.height}" fill="none" stroke="#999"/>'
        f'<rect x="{LEFT}" y="{TOP - 20}" width="10" height="10" fill="{colour}"/>'
        f'<text class="panel-title" x="{LEFT + 15}" y="{TOP - 10}" font-size="14" font-weight="bold" fill="#222">'
        f"{name}</text>"
        f'<text class="axis-title" x="{LEFT + axes.width / 2}" y="{PANEL_HEIGHT - 6}" text-anchor="middle">'
        "Best Seller Rank</text>"
        f'<text class="axis-title" transform="translate(11 {TOP + axes.height / 2}) rotate(-90)" '
        'text-anchor="middle">units / month</text></svg>'
    )
    return "".join(parts)


def _layout(model: Drawable, max_rank: int) -> tuple[_Axes, dict[str, list[_Series]]]:
    """The shared axes, and each marketplace's series; a category has the same colour in every one."""
    ranks = np.geomspace(1, max_rank, SAMPLES)
    markets = segments_of(model)
    colours = {name: index for index, name in enumerate(sorted({c for names in markets.values() for c in names}))}
    groups = {
        code: [_Series(model, code, category, ranks, colours[category]) for category in names]
        for code, names in markets.items()
    }
    top = max([s.top for series in groups.values() for s in series] + [10 * Y_FLOOR])
    return _Axes(10 ** math.ceil(math.log10(max_rank)), 10 ** math.ceil(math.log10(top))), groups


def curve_panels(model: Drawable, *, max_rank: int = 1_000_000) -> dict[str, list[str]]:
    """Per marketplace, one complete <svg> per category, all on the same axes: the page lays them out."""
    axes, groups = _layout(model, max_rank)
    shown: dict[str, list[str]] = {}
    index = 0
    for code, series in groups.items():
        shown[code] = []
        for one in series:
            shown[code].append(_panel(axes, one, [o for o in series if o is not one], index))
            index += 1
    return shown


LEGEND = (
    "Shared axes (log-log). Line: the median estimate; shaded: its 80% interval; grey: the marketplace's "
    "other categories; tinted background: ranks outside the training data."
)


def curves_svg(model: Drawable, *, max_rank: int = 1_000_000, title: str = "", columns: int = COLUMNS) -> str:
    """Every segment's panel in one standalone SVG: per marketplace a heading, then its panels COLUMNS across;
    it scales down to its container."""
    axes, groups = _layout(model, max_rank)
    columns = max(1, min(columns, max(len(series) for series in groups.values())))
    heights = [MARKET_HEADER + math.ceil(len(series) / columns) * PANEL_HEIGHT for series in groups.values()]
    width, height = columns * PANEL_WIDTH, HEADER + sum(heights) + FOOTER
    heading = escape(title or f"Model version {model.version}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curves" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="12" y="22" font-size="16">{heading}: estimated monthly sales by Best Seller Rank</text>',
        f'<text x="12" y="40" fill="#555">{escape(LEGEND)}</text>',
    ]
    top, index = HEADER, 0
    for (code, series), block in zip(groups.items(), heights, strict=True):
        parts.append(
            f'<text class="marketplace" data-marketplace="{escape(code)}" x="12" y="{top + 18}" font-size="15" '
            f'font-weight="bold">Marketplace {escape(code)}</text>'
        )
        for position, one in enumerate(series):
            row, column = divmod(position, columns)
            placement = (
                f'x="{column * PANEL_WIDTH}" y="{top + MARKET_HEADER + row * PANEL_HEIGHT}" '
                f'width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" '
            )
            parts.append(_panel(axes, one, [o for o in series if o is not one], index, placement))
            index += 1
        top += block
    parts.append("</svg>")
    return "\n".join(parts)


ACCURACY_WIDTH, BAR, GAP = 720, 11, 10
HOLDOUT_COLOUR, LIVE_COLOUR = "#9aa5b1", "#1f77b4"


def accuracy_svg(version: int, live: dict, holdout: dict) -> str:
    """Share of estimates within 2x of the truth, overall, per marketplace and per segment (the keys of
    ``per_category``: "uk/books", "books" in us): the holdout's (grey) beside the live figure from
    recorded actuals (blue, with its count). A row without actuals shows no blue bar."""
    markets: dict[str, list[str]] = {}
    for name in sorted(live["per_category"], key=lambda name: (split_segment(name)[0] != DEFAULT_MARKETPLACE, name)):
        markets.setdefault(split_segment(name)[0], []).append(name)
    names = ["overall", *(name for code, members in markets.items() for name in (f"marketplace:{code}", *members))]
    label_width, plot_left = 150, 160
    plot_width = ACCURACY_WIDTH - plot_left - 110
    row_height = 2 * BAR + GAP
    height = 50 + row_height * len(names) + 30

    def figures(source: dict, name: str) -> dict:
        if name == "overall":
            return source["overall"]
        if name.startswith("marketplace:"):
            return (source.get("per_marketplace") or {}).get(name.partition(":")[2], {})
        return source["per_category"].get(name, {})

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{ACCURACY_WIDTH}" height="{height}" '
        f'viewBox="0 0 {ACCURACY_WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{ACCURACY_WIDTH}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="15">Model version {version}: share of estimates within 2x</text>',
        f'<rect x="{plot_left}" y="30" width="10" height="10" fill="{HOLDOUT_COLOUR}"/>'
        f'<text x="{plot_left + 14}" y="39">holdout (training)</text>'
        f'<rect x="{plot_left + 140}" y="30" width="10" height="10" fill="{LIVE_COLOUR}"/>'
        f'<text x="{plot_left + 154}" y="39">live (recorded actuals)</text>',
    ]
    for tick in range(0, 101, 25):
        px = plot_left + plot_width * tick / 100
        parts.append(f'<line x1="{px:.1f}" y1="48" x2="{px:.1f}" y2="{height - 26}" stroke="#eee"/>')
        parts.append(f'<text x="{px:.1f}" y="{height - 10}" text-anchor="middle">{tick}%</text>')
    for index, name in enumerate(names):
        top = 50 + index * row_height
        market = name.startswith("marketplace:")
        shown_name = name.partition(":")[2] if market else " / ".join(split_segment(name)) if index else name
        weight = ' font-weight="bold"' if market or name == "overall" else ""
        parts.append(
            f'<text x="{label_width}" y="{top + BAR + 4}" text-anchor="end"{weight}>{escape(shown_name)}</text>'
        )
        row = 'data-row="overall"' if not index else f'data-marketplace="{escape(shown_name)}"'
        row = f'data-segment="{escape(name)}"' if index and not market else row
        for offset, source, colour, kind in ((0, holdout, HOLDOUT_COLOUR, "holdout"), (BAR, live, LIVE_COLOUR, "live")):
            shown = figures(source, name)
            share = shown.get("within_2x")
            if share is None:
                continue
            width = plot_width * share
            parts.append(
                f'<rect class="bar {kind}" {row} x="{plot_left}" y="{top + offset}" '
                f'width="{width:.1f}" height="{BAR - 1}" fill="{colour}"><title>{kind}: {share:.1%} of '
                f"{shown.get('rows', 0):,}</title></rect>"
            )
            parts.append(
                f'<text x="{plot_left + width + 4:.1f}" y="{top + offset + BAR - 2}" font-size="10">'
                f"{share:.0%} (n={shown.get('rows', 0):,})</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)
