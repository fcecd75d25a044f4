"""The model's curves drawn as a standalone SVG: estimated monthly sales against BSR, log-log, each
category with its 80% band. No plotting library is needed and the file opens in any browser."""

from __future__ import annotations

import math
from html import escape

import numpy as np

from ml.predictor import ServedModel

WIDTH, HEIGHT = 900, 560
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 40, 60
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def curves_svg(model: ServedModel, *, max_rank: int = 1_000_000, title: str = "") -> str:
    ranks = np.unique(np.geomspace(1, max_rank, 160).astype(np.int64))
    series = {}
    for category in model.categories:
        sales, low, high, _ = model.estimate_arrays(ranks.astype(np.float64), [category] * len(ranks))
        series[category] = (sales, low, high)
    top = max(float(high.max()) for _, _, high in series.values())
    y_max = 10 ** math.ceil(math.log10(max(top, 10)))
    x_max = 10 ** math.ceil(math.log10(max_rank))

    def x(rank: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * math.log10(rank) / math.log10(x_max)

    def y(sales: float) -> float:
        # 1 unit/month at the bottom; zero sales are drawn on the axis.
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * math.log10(max(sales, 1)) / math.log10(y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="24" font-size="15">{escape(title or f"Model version {model.version}")}: '
        "estimated monthly sales by Best Seller Rank (80% band)</text>",
    ]
    for power in range(int(math.log10(x_max)) + 1):
        px = x(10**power)
        parts.append(f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#eee"/>')
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{10**power:,}</text>')
    for power in range(int(math.log10(y_max)) + 1):
        py = y(10**power)
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{10**power:,}</text>')
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 16}" text-anchor="middle">Best Seller Rank</text>'
        f'<text transform="translate(16 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">'
        "units per month</text>"
    )
    for index, (category, (sales, low, high)) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        upper = [f"{x(r):.1f},{y(h):.1f}" for r, h in zip(ranks, high, strict=True)]
        lower = [f"{x(r):.1f},{y(v):.1f}" for r, v in zip(ranks[::-1], low[::-1], strict=True)]
        line = [f"{x(r):.1f},{y(s):.1f}" for r, s in zip(ranks, sales, strict=True)]
        name = escape(category)
        parts.append(f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{colour}" fill-opacity="0.08"/>')
        parts.append(
            f'<polyline class="curve" data-category="{name}" points="{" ".join(line)}" fill="none" '
            f'stroke="{colour}" stroke-width="2"><title>{name}</title></polyline>'
        )
        legend_y = TOP + 18 * index
        parts.append(
            f'<line x1="{WIDTH - RIGHT + 16}" y1="{legend_y}" x2="{WIDTH - RIGHT + 40}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="3"/><text x="{WIDTH - RIGHT + 46}" y="{legend_y + 4}">{name}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


ACCURACY_WIDTH, BAR, GAP = 720, 11, 10
HOLDOUT_COLOUR, LIVE_COLOUR = "#9aa5b1", "#1f77b4"


def accuracy_svg(version: int, live: dict, holdout: dict) -> str:
    """Share of estimates within 2x of the truth, per category: the holdout's (grey) beside the live
    figure from recorded actuals (blue, with its count). A category without actuals shows no blue bar."""
    names = ["overall", *sorted(live["per_category"])]
    label_width, plot_left = 150, 160
    plot_width = ACCURACY_WIDTH - plot_left - 110
    row_height = 2 * BAR + GAP
    height = 50 + row_height * len(names) + 30

    def figures(source: dict, name: str) -> dict:
        return source["overall"] if name == "overall" else source["per_category"].get(name, {})

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
        parts.append(f'<text x="{label_width}" y="{top + BAR + 4}" text-anchor="end">{escape(name)}</text>')
        for offset, source, colour, kind in ((0, holdout, HOLDOUT_COLOUR, "holdout"), (BAR, live, LIVE_COLOUR, "live")):
            shown = figures(source, name)
            share = shown.get("within_2x")
            if share is None:
                continue
            width = plot_width * share
            parts.append(
                f'<rect class="bar {kind}" data-category="{escape(name)}" x="{plot_left}" y="{top + offset}" '
                f'width="{width:.1f}" height="{BAR - 1}" fill="{colour}"><title>{kind}: {share:.1%} of '
                f"{shown.get('rows', 0):,}</title></rect>"
            )
            parts.append(
                f'<text x="{plot_left + width + 4:.1f}" y="{top + offset + BAR - 2}" font-size="10">'
                f"{share:.0%} (n={shown.get('rows', 0):,})</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)
