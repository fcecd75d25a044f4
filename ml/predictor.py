"""Serving a fitted Pipeline without its per-call overhead: its curves and quantile tables, read out once.

An estimate is then a log, a multiply-add and three table searches; a bulk estimate the same, vectorised.
Tests hold both equal to the Pipeline's. A rank outside the range its category was trained on is flagged,
and its 80% interval widens (ml.pipeline.EXTRAPOLATION_WIDENING).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from ml import curve, history
from ml.curve import MAX_LOG_UNITS, MAX_UNITS, PER_KNOT, TABLE_COUNTS
from ml.history import DAYS_PER_MONTH
from ml.markets import DEFAULT_MARKETPLACE, split_segment
from ml.pipeline import EXTRAPOLATION_WIDENING

Z_HIGH = curve.Z["high"]


class Estimate(NamedTuple):
    sales: int
    low: int
    high: int
    extrapolated: bool = False
    daily: float | None = None  # units a day: the curve's (median) rate, time-weighted over a rank history


_estimate = tuple.__new__  # Estimate's own __new__ takes keywords, and costs a third of an estimate


class Estimator(Protocol):
    """What the API needs from a sales model; ``Predictor`` is the implementation, tests pass fakes."""

    version: int
    categories: tuple[str, ...]  # every marketplace's, sorted
    markets: dict[str, tuple[str, ...]]  # marketplace -> its categories, sorted

    def estimate(self, rank: int, category: str, marketplace: str = DEFAULT_MARKETPLACE) -> Estimate: ...

    def estimate_many(
        self, ranks: Sequence[int], categories: Sequence[str], marketplaces: Sequence[str] | None = None
    ) -> list[Estimate]: ...

    def estimate_history(
        self,
        seconds: Sequence[float],
        ranks: Sequence[int],
        category: str,
        marketplace: str = DEFAULT_MARKETPLACE,
    ) -> Estimate: ...


class ServedModel(Estimator, Protocol):
    """A model a registry version serves: this module's Predictor, or ml.legacy's for older versions."""

    def estimate_arrays(
        self, ranks: np.ndarray, categories: Sequence[str], marketplaces: Sequence[str] | None = None
    ) -> tuple[np.ndarray, ...]: ...


class CategoryRows:
    """What both serving models share: (marketplace, category) codes, and many estimates at once."""

    _code: dict[tuple[str, str], int]
    segments: tuple[tuple[str, str], ...]

    def _index(self, segments: Iterable[tuple[str, str]]) -> None:
        """Code each (marketplace, category) in the order the fitted model has them."""
        self.segments = tuple(segments)
        self._code = {pair: code for code, pair in enumerate(self.segments)}
        markets: dict[str, list[str]] = defaultdict(list)
        for marketplace, category in self.segments:
            markets[marketplace].append(category)
        self.markets = {name: tuple(sorted(names)) for name, names in sorted(markets.items())}
        self.categories: tuple[str, ...] = tuple(sorted({category for _, category in self.segments}))

    def estimate_arrays(
        self, ranks: np.ndarray, categories: Sequence[str], marketplaces: Sequence[str] | None = None
    ) -> tuple[np.ndarray, ...]:
        """(sales, low, high, extrapolated) for each row."""
        return self.estimate_codes(ranks, self.codes(categories, marketplaces))

    def estimate_codes(self, ranks: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def daily_codes(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Units a day at each rank: the curve's rate."""
        raise NotImplementedError

    def daily_arrays(
        self, ranks: np.ndarray, categories: Sequence[str], marketplaces: Sequence[str] | None = None
    ) -> np.ndarray:
        return self.daily_codes(ranks, self.codes(categories, marketplaces))

    def estimate_many(
        self, ranks: Sequence[int], categories: Sequence[str], marketplaces: Sequence[str] | None = None
    ) -> list[Estimate]:
        values = np.asarray(ranks, dtype=np.float64)
        codes = self.codes(categories, marketplaces)
        sales, low, high, extrapolated = self.estimate_codes(values, codes)
        daily = self.daily_codes(values, codes)
        rows = zip(sales.tolist(), low.tolist(), high.tolist(), extrapolated.tolist(), daily.tolist(), strict=True)
        return [Estimate(*row) for row in rows]

    def codes(self, categories: Sequence[str], marketplaces: Sequence[str] | None = None) -> np.ndarray:
        """The segment code of each row (no ``marketplaces``: all DEFAULT_MARKETPLACE); KeyError if unknown."""
        lookup = self._code
        if marketplaces is None:
            pairs: Iterable[tuple[str, str]] = ((DEFAULT_MARKETPLACE, name) for name in categories)
        else:
            pairs = zip(marketplaces, categories, strict=True)
        return np.fromiter((lookup[pair] for pair in pairs), dtype=np.int64, count=len(categories))

    def code(self, category: str, marketplace: str = DEFAULT_MARKETPLACE) -> int:
        return self._code[marketplace, category]

    def _history_rows(self, ranks: Sequence[int], category: str, marketplace: str) -> tuple[np.ndarray, np.ndarray]:
        """A rank history's ranks as floats, and its segment's code for each (KeyError if unknown)."""
        values = np.asarray(ranks, dtype=np.float64)
        return values, np.full(len(values), self._code[marketplace, category], dtype=np.int64)


class Predictor(CategoryRows):
    """The Estimator the API calls, read out of a fitted Pipeline (ml.pipeline.build_pipeline)."""

    def __init__(self, pipeline: Any, *, version: int):
        features = pipeline.named_steps["features"]
        model = pipeline.named_steps["curve"]
        self.version = version
        self._index(split_segment(str(name)) for name in features.categories_)
        self._spans = int(model.segments_)
        self._knots = model.knots_.copy()
        self._rise = self._knots[:, 1:] - self._knots[:, :-1]
        self._table = model.table_
        self._sigma = model.sigma_.copy()
        self._first, self._last = model.log_range_[:, 0].copy(), model.log_range_[:, 1].copy()
        self._flat_knots = self._knots.ravel()
        self._flat_rise = self._rise.ravel()
        # Plain Python values for the one-estimate path: a Python float op is cheaper than a numpy scalar's.
        table = self._table
        self._rows = [
            (knots, rise, first, last, sigma2, code * len(curve.QUANTILES) * table.cells)
            for code, (knots, rise, first, last, sigma2) in enumerate(
                zip(
                    self._knots.tolist(),
                    self._rise.tolist(),
                    self._first.tolist(),
                    self._last.tolist(),
                    table.sigma2_of_code.tolist(),
                    strict=True,
                )
            )
        ]
        self._grid = (float(table.start), float(table.per_cell), table.cells - 1, int(table.cells))
        self._below = table.below.tolist()
        self._next = table.next.tolist()

    @classmethod
    def from_metadata(cls, pipeline: Any, *, version: int, metadata: dict[str, Any]) -> Predictor:
        """From a registry version (verified); everything it serves is in the artifact itself."""
        return cls(pipeline, version=version)

    def estimate(self, rank: int, category: str, marketplace: str = DEFAULT_MARKETPLACE) -> Estimate:
        """One estimate: curve.QuantileTable.quantiles on Python floats."""
        knots, rise, first, last, sigma2, base = self._rows[self._code[marketplace, category]]
        x = math.log(rank)
        t = x * PER_KNOT
        seg = int(t)
        if seg >= self._spans:
            seg = self._spans - 1
        u = knots[seg] + rise[seg] * (t - seg)
        start, per_cell, top, cells = self._grid
        rate = math.exp(min(max(u, -MAX_LOG_UNITS), MAX_LOG_UNITS))
        daily = rate / DAYS_PER_MONTH
        if first <= x <= last:  # inside the trained ranks: the three quantiles share one grid cell
            below, after = self._below, self._next
            where = base + int(min(max((u - start) * per_cell, 0), top))
            low = below[where] + (u >= after[where])
            median = below[where + cells] + (u >= after[where + cells])
            high = below[where + 2 * cells] + (u >= after[where + 2 * cells])
            if high < TABLE_COUNTS:
                return _estimate(Estimate, (median, low, high, False, daily))
            outer = math.exp(0.0 + Z_HIGH * math.sqrt(sigma2 + 1.0 / rate))
            if median >= TABLE_COUNTS:
                median = round(min(max(rate, TABLE_COUNTS), MAX_UNITS))
            if low >= TABLE_COUNTS:
                low = round(min(max(rate / outer, TABLE_COUNTS), MAX_UNITS))
            high = round(min(max(rate * outer, TABLE_COUNTS), MAX_UNITS))
            return _estimate(Estimate, (median, low, high, False, daily))
        beyond = (first - x if x < first else 0.0) + (x - last if x > last else 0.0)
        widen = EXTRAPOLATION_WIDENING * beyond
        outer = math.exp(widen + Z_HIGH * math.sqrt(sigma2 + 1.0 / rate))
        low, median, high = (
            self._count(value, base + index * cells, far)
            for index, (value, far) in enumerate(((u - widen, rate / outer), (u, rate), (u + widen, rate * outer)))
        )
        return _estimate(Estimate, (median, low, high, True, daily))

    def estimate_history(
        self,
        seconds: Sequence[float],
        ranks: Sequence[int],
        category: str,
        marketplace: str = DEFAULT_MARKETPLACE,
    ) -> Estimate:
        """The month at a rank history's mean rate (ml.history): its samples' rates weighted by time, and the
        quantiles of a month at that rate. Outside the trained ranks, the interval widens by the time-weighted
        distance."""
        values, codes = self._history_rows(ranks, category, marketplace)
        weights = history.time_weights(seconds)
        x = np.log(values)
        rate = float(weights @ np.exp(self._log_rate(x, codes)))
        beyond = self._beyond(x, codes)
        widen = np.array([EXTRAPOLATION_WIDENING * float(weights @ beyond)])
        low, sales, high = self._table.quantiles(np.array([math.log(max(rate, 1e-300))]), widen, codes[:1])
        return Estimate(int(sales[0]), int(low[0]), int(high[0]), bool(beyond.any()), rate / DAYS_PER_MONTH)

    def _count(self, value: float, table_start: int, far: float) -> int:
        start, per_cell, top, _ = self._grid
        where = table_start + int(min(max((value - start) * per_cell, 0), top))
        count = self._below[where] + (value >= self._next[where])
        if count < TABLE_COUNTS:
            return count
        return round(min(max(far, TABLE_COUNTS), MAX_UNITS))

    def log_rate(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """ln of the median sales rate at each rank (continuous: what the quantiles are read from)."""
        return self._log_rate(np.log(ranks), codes)

    def _log_rate(self, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
        seg, frac = curve.locate(x, self._spans)
        return self._flat_knots[codes * (self._spans + 1) + seg] + self._flat_rise[codes * self._spans + seg] * frac

    def beyond_training(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """How far each rank lies outside its category's trained range, in ln(rank); 0 inside."""
        return self._beyond(np.log(ranks), codes)

    def _beyond(self, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.maximum(self._first[codes] - x, 0.0) + np.maximum(x - self._last[codes], 0.0)

    def estimate_codes(self, ranks: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, ...]:
        """(sales, low, high, extrapolated) for ranks and category codes (``codes``)."""
        x = np.log(ranks)
        u = self._log_rate(x, codes)
        beyond = self._beyond(x, codes)
        widen = EXTRAPOLATION_WIDENING * beyond
        low, sales, high = self._table.quantiles(u, widen, codes)
        return sales, low, high, beyond > 0.0

    def daily_codes(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.exp(np.clip(self.log_rate(ranks, codes), -MAX_LOG_UNITS, MAX_LOG_UNITS)) / DAYS_PER_MONTH
