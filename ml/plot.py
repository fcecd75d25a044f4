"""The model's curves drawn as a standalone SVG: estimated monthly sales against BSR, log-log, each
category with its 80% band. No plotting library is needed and the file opens in any browser."""

from __future__ import annotations

import math
from html import escape

import numpy as np

from .fast import FastModel

WIDTH, HEIGHT = 900, 560
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 40, 60
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def curves_svg(model: FastModel, *, max_rank: int = 1_000_000, title: str = "") -> str:
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
