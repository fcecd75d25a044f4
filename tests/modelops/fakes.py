"""A served model of the issue-21 contract (markets, marketplaces, rank histories), for unit tests of model
operations until and besides the real one: its figures follow from a formula the tests can restate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.predictor import Estimate
from modelops import segments

SCALES = {"us": 1.0, "uk": 0.25, "de": 0.3, "jp": 0.2}  # a marketplace's sales, a share of us's at a rank
CATEGORIES = ("beauty", "books", "clothing", "electronics", "home_kitchen", "pet_supplies", "sports_outdoors", "toys")
DAYS = 365.25 / 12


class MarketModel:
    """Monthly rate = factor * SCALES[marketplace] * (i + 2) * 50,000 * rank^-0.8 (i: the category's index
    in CATEGORIES); the interval is [0.6, 1.6] x the estimate; ranks over 500,000 are extrapolated."""

    def __init__(self, version: int, markets: dict[str, Sequence[str]], factor: float = 1.0):
        self.version, self.factor = version, factor
        self.markets: dict[str, tuple[str, ...]] | None = {code: tuple(sorted(v)) for code, v in markets.items()}
        self.categories = tuple(sorted({name for names in markets.values() for name in names}))
        self.history_calls = 0

    def rate(self, ranks: np.ndarray, categories: Sequence[str], marketplaces: Sequence[str]) -> np.ndarray:
        markets = self.markets or {"us": self.categories}  # None: a model of before marketplaces
        for marketplace, category in zip(marketplaces, categories, strict=True):
            if category not in markets.get(marketplace, ()):
                raise KeyError((marketplace, category))
        scale = np.array([SCALES[m] * (CATEGORIES.index(c) + 2) for m, c in zip(marketplaces, categories, strict=True)])
        return self.factor * scale * 50_000 * np.asarray(ranks, dtype=np.float64) ** -0.8

    def estimate_arrays(self, ranks, categories, marketplaces=None) -> tuple[np.ndarray, ...]:
        marketplaces = marketplaces if marketplaces is not None else ["us"] * len(categories)
        sales = np.rint(self.rate(ranks, categories, marketplaces))
        return sales, np.rint(sales * 0.6), np.rint(sales * 1.6 + 1), np.asarray(ranks) > 500_000

    def daily_arrays(self, ranks, categories, marketplaces=None) -> np.ndarray:
        marketplaces = marketplaces if marketplaces is not None else ["us"] * len(categories)
        return self.rate(ranks, categories, marketplaces) / DAYS

    def estimate(self, rank: int, category: str, marketplace: str = "us") -> Estimate:
        sales, low, high, extrapolated = self.estimate_arrays(np.array([rank]), [category], [marketplace])
        return Estimate(int(sales[0]), int(low[0]), int(high[0]), bool(extrapolated[0]))

    def estimate_history(self, seconds, ranks, category: str, marketplace: str = "us") -> Estimate:
        """The time-weighted (trapezoid) mean of the rate at the history's ranks; one sample: its rate."""
        self.history_calls += 1
        rates = self.rate(np.asarray(ranks), [category] * len(ranks), [marketplace] * len(ranks))
        mean = float(rates[0]) if len(rates) == 1 else float(np.trapezoid(rates, seconds) / (seconds[-1] - seconds[0]))
        sales = round(mean)
        return Estimate(sales, round(sales * 0.6), round(sales * 1.6 + 1), max(ranks) > 500_000)


def three_markets(version: int = 1, factor: float = 1.0) -> MarketModel:
    """us, uk and de with all eight categories."""
    return MarketModel(version, {code: CATEGORIES for code in ("us", "uk", "de")}, factor)


def ordered(names: list[str]) -> list[str]:
    """Segment names as /inspect/ shows them: grouped by marketplace, us first."""
    return [name for members in segments.by_marketplace(names).values() for name in members]
