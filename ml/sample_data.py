"""A documented generator of synthetic BSR/sales data, since no real sales data can be shipped.

More: docs/architecture.md, "ml/sample_data.py".
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD_RANK = 100
TAIL_RANK = 100_000
HEAD_SLOPE = 0.5
TAIL_EXTRA_SLOPE = 0.25
MAX_RANK = 1_000_000
CSV_HEADER = ("category", "bestseller_rank", "monthly_sales", "marketplace")
# Units at a rank, relative to amazon.com's: each marketplace's net sales over the US's in Amazon's 2023
# annual report (10-K, net sales by geography: US $395.6B, Germany $37.6B, UK $33.6B). One curve shape
# with a scale per market, as Garg & Telang (MIS Quarterly 2013) found. An assumption: docs/model.md.
SCALES: dict[str, float] = {"us": 1.0, "uk": 33.6 / 395.6, "de": 37.6 / 395.6}
# The marketplace of row i is MARKET_TURNS[i % 4]: half the rows in us, a quarter each in uk and de.
MARKET_TURNS = ("us", "uk", "us", "de")


@dataclass(frozen=True)
class CategoryCurve:
    a: float  # ln(monthly sales) intercept, mid-range
    b: float  # mid-range slope (ranks 100-100,000)
    sigma: float  # log-normal noise


CURVES: dict[str, CategoryCurve] = {
    "books": CategoryCurve(12.32, 0.87, 0.45),
    "home_kitchen": CategoryCurve(12.56, 0.85, 0.40),
    "toys_games": CategoryCurve(12.49, 0.85, 0.45),
    "electronics": CategoryCurve(12.76, 0.88, 0.40),
    "beauty": CategoryCurve(12.49, 0.85, 0.40),
    "sports_outdoors": CategoryCurve(12.35, 0.85, 0.40),
    "clothing": CategoryCurve(12.18, 0.85, 0.55),
    "pet_supplies": CategoryCurve(12.56, 0.88, 0.40),
}


def log_sales(rank: np.ndarray, curve: CategoryCurve) -> np.ndarray:
    """Expected ln(monthly sales) on the piecewise power law."""
    ln_rank = np.log(rank)
    ln_head, ln_tail = math.log(HEAD_RANK), math.log(TAIL_RANK)
    mid = curve.a - curve.b * ln_rank
    head = curve.a - curve.b * ln_head - HEAD_SLOPE * (ln_rank - ln_head)
    tail = curve.a - curve.b * ln_tail - (curve.b + TAIL_EXTRA_SLOPE) * (ln_rank - ln_tail)
    return np.where(rank < HEAD_RANK, head, np.where(rank > TAIL_RANK, tail, mid))


def generate(rows: int, seed: int) -> Iterator[tuple[str, int, int, str]]:
    """Rows of (category, rank, monthly sales, marketplace): marketplaces and categories in turn, ranks
    log-uniform in 1..MAX_RANK."""
    rng = np.random.default_rng(seed)
    names = sorted(CURVES)
    turns = len(MARKET_TURNS)
    chunk = 50_000
    for start in range(0, rows, chunk):
        size = min(chunk, rows - start)
        index = np.arange(start, start + size)
        markets = [MARKET_TURNS[i % turns] for i in index.tolist()]
        categories = [names[(i // turns) % len(names)] for i in index.tolist()]
        ranks = np.floor(np.exp(rng.uniform(0, math.log(MAX_RANK + 1), size))).astype(np.int64)
        ranks = np.clip(ranks, 1, MAX_RANK)
        scale = np.log(np.array([SCALES[market] for market in markets]))
        noise = np.array([CURVES[name].sigma for name in categories]) * rng.normal(0.0, 1.0, size)
        mean = np.empty(size)
        for name in names:
            mask = np.fromiter((c == name for c in categories), bool, size)
            mean[mask] = log_sales(ranks[mask], CURVES[name])
        sales = rng.poisson(np.exp(mean + scale + noise))
        yield from zip(categories, ranks.tolist(), sales.tolist(), markets, strict=True)


def write_csv(path: Path, rows: int, seed: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        count = 0
        for row in generate(rows, seed):
            writer.writerow(row)
            count += 1
    return count
