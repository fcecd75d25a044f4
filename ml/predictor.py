"""Serving a fitted Pipeline without its per-call overhead: its curves and quantile tables, read out once.

An estimate is then a log, a multiply-add and three table searches; a bulk estimate the same, vectorised.
Tests hold both equal to the Pipeline's. A rank outside the range its category was trained on is flagged,
and its 80% interval widens (ml.pipeline.EXTRAPOLATION_WIDENING).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from ml import curve
from ml.curve import MAX_LOG_UNITS, MAX_UNITS, PER_KNOT, TABLE_COUNTS
from ml.pipeline import EXTRAPOLATION_WIDENING

Z_HIGH = curve.Z["high"]


class Estimate(NamedTuple):
    sales: int
    low: int
    high: int
    extrapolated: bool = False


_estimate = tuple.__new__  # Estimate's own __new__ takes keywords, and costs a third of an estimate


class Estimator(Protocol):
    """What the API needs from a sales model; ``Predictor`` is the implementation, tests pass fakes."""

    version: int
    categories: tuple[str, ...]

    def estimate(self, rank: int, category: str) -> Estimate: ...

    def estimate_many(self, ranks: Sequence[int], categories: Sequence[str]) -> list[Estimate]: ...


class ServedModel(Estimator, Protocol):
    """A model a registry version serves: this module's Predictor, or ml.legacy's for older versions."""

    def estimate_arrays(self, ranks: np.ndarray, categories: Sequence[str]) -> tuple[np.ndarray, ...]: ...


class CategoryRows:
    """What both serving models share: category codes, and many estimates from ``estimate_arrays``."""

    _code: dict[str, int]

    def estimate_arrays(self, ranks: np.ndarray, categories: Sequence[str]) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def estimate_many(self, ranks: Sequence[int], categories: Sequence[str]) -> list[Estimate]:
        sales, low, high, extrapolated = self.estimate_arrays(np.asarray(ranks, dtype=np.float64), categories)
        rows = zip(sales.tolist(), low.tolist(), high.tolist(), extrapolated.tolist(), strict=True)
        return [Estimate(*row) for row in rows]

    def codes(self, categories: Sequence[str]) -> np.ndarray:
        lookup = self._code
        return np.fromiter((lookup[name] for name in categories), dtype=np.int64, count=len(categories))


class Predictor(CategoryRows):
    """The Estimator the API calls, read out of a fitted Pipeline (ml.pipeline.build_pipeline)."""

    def __init__(self, pipeline: Any, *, version: int):
        features = pipeline.named_steps["features"]
        model = pipeline.named_steps["curve"]
        self.version = version
        self.categories: tuple[str, ...] = tuple(str(name) for name in features.categories_)
        self._code = {name: code for code, name in enumerate(self.categories)}
        self._segments = int(model.segments_)
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

    def estimate(self, rank: int, category: str) -> Estimate:
        """One estimate: curve.QuantileTable.quantiles on Python floats."""
        knots, rise, first, last, sigma2, base = self._rows[self._code[category]]
        x = math.log(rank)
        t = x * PER_KNOT
        seg = int(t)
        if seg >= self._segments:
            seg = self._segments - 1
        u = knots[seg] + rise[seg] * (t - seg)
        start, per_cell, top, cells = self._grid
        if first <= x <= last:  # inside the trained ranks: the three quantiles share one grid cell
            below, after = self._below, self._next
            where = base + int(min(max((u - start) * per_cell, 0), top))
            low = below[where] + (u >= after[where])
            median = below[where + cells] + (u >= after[where + cells])
            high = below[where + 2 * cells] + (u >= after[where + 2 * cells])
            if high < TABLE_COUNTS:
                return _estimate(Estimate, (median, low, high, False))
            rate = math.exp(min(max(u, -MAX_LOG_UNITS), MAX_LOG_UNITS))
            outer = math.exp(0.0 + Z_HIGH * math.sqrt(sigma2 + 1.0 / rate))
            if median >= TABLE_COUNTS:
                median = round(min(max(rate, TABLE_COUNTS), MAX_UNITS))
            if low >= TABLE_COUNTS:
                low = round(min(max(rate / outer, TABLE_COUNTS), MAX_UNITS))
            return _estimate(Estimate, (median, low, round(min(max(rate * outer, TABLE_COUNTS), MAX_UNITS)), False))
        beyond = (first - x if x < first else 0.0) + (x - last if x > last else 0.0)
        widen = EXTRAPOLATION_WIDENING * beyond
        rate = math.exp(min(max(u, -MAX_LOG_UNITS), MAX_LOG_UNITS))
        outer = math.exp(widen + Z_HIGH * math.sqrt(sigma2 + 1.0 / rate))
        low, median, high = (
            self._count(value, base + index * cells, far)
            for index, (value, far) in enumerate(((u - widen, rate / outer), (u, rate), (u + widen, rate * outer)))
        )
        return _estimate(Estimate, (median, low, high, True))

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
        seg, frac = curve.locate(x, self._segments)
        return (
            self._flat_knots[codes * (self._segments + 1) + seg] + self._flat_rise[codes * self._segments + seg] * frac
        )

    def beyond_training(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """How far each rank lies outside its category's trained range, in ln(rank); 0 inside."""
        return self._beyond(np.log(ranks), codes)

    def _beyond(self, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.maximum(self._first[codes] - x, 0.0) + np.maximum(x - self._last[codes], 0.0)

    def estimate_arrays(self, ranks: np.ndarray, categories: Sequence[str]) -> tuple[np.ndarray, ...]:
        """(sales, low, high, extrapolated) for each row."""
        return self.estimate_codes(ranks, self.codes(categories))

    def estimate_codes(self, ranks: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, ...]:
        """(sales, low, high, extrapolated) for ranks and category codes (``codes``)."""
        x = np.log(ranks)
        u = self._log_rate(x, codes)
        beyond = self._beyond(x, codes)
        widen = EXTRAPOLATION_WIDENING * beyond
        low, sales, high = self._table.quantiles(u, widen, codes)
        return sales, low, high, beyond > 0.0
