"""Serving a fitted Pipeline without its per-call overhead: its curves and quantile tables, read out once.

An estimate is then a log, a multiply-add and three table searches; a bulk estimate the same, vectorised.
Tests hold both equal to the Pipeline's. A rank outside the range its category was trained on is flagged,
and its 80% interval widens (ml.pipeline.EXTRAPOLATION_WIDENING).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from ml import curve
from ml.pipeline import EXTRAPOLATION_WIDENING


class Estimate(NamedTuple):
    sales: int
    low: int
    high: int
    extrapolated: bool = False


class Estimator(Protocol):
    """What the API needs from a sales model; ``Predictor`` is the implementation, tests pass fakes."""

    version: int
    categories: tuple[str, ...]

    def estimate(self, rank: int, category: str) -> Estimate: ...

    def estimate_many(self, ranks: Sequence[int], categories: Sequence[str]) -> list[Estimate]: ...


class ServedModel(Estimator, Protocol):
    """A model a registry version serves: this module's Predictor, or ml.legacy's for older versions."""

    def estimate_arrays(self, ranks: np.ndarray, categories: Sequence[str]) -> tuple[np.ndarray, ...]: ...


class Predictor:
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
        self._log_range = model.log_range_.copy()
        self._flat_knots = self._knots.ravel()
        self._flat_rise = self._rise.ravel()
        # Plain Python values for the one-estimate path: a Python float op is cheaper than a numpy scalar's.
        self._rows = [
            (knots, rise, float(sigma), float(first), float(last), code * len(curve.QUANTILES))
            for code, (knots, rise, sigma, (first, last)) in enumerate(
                zip(self._knots.tolist(), self._rise.tolist(), self._sigma, self._log_range, strict=True)
            )
        ]
        table = self._table
        self._grid = (float(table.start), float(table.end), float(table.per_cell), int(table.cells))
        self._below = array("q", table.below.tolist())
        self._next = array("d", table.next.tolist())

    @classmethod
    def from_metadata(cls, pipeline: Any, *, version: int, metadata: dict[str, Any]) -> Predictor:
        """From a registry version (verified); everything it serves is in the artifact itself."""
        return cls(pipeline, version=version)

    def estimate(self, rank: int, category: str) -> Estimate:
        knots, rise, sigma, first, last, table = self._rows[self._code[category]]
        x = math.log(rank)
        t = x * curve.PER_KNOT
        seg = min(int(t), self._segments - 1)
        u = knots[seg] + rise[seg] * (t - seg)
        beyond = (first - x if x < first else 0.0) + (x - last if x > last else 0.0)
        widen = EXTRAPOLATION_WIDENING * beyond
        return Estimate(
            self._count(u, table + 1, sigma),
            self._count(u - widen, table, sigma),
            self._count(u + widen, table + 2, sigma),
            beyond > 0.0,
        )

    def _count(self, log_rate: float, table: int, sigma: float) -> int:
        """curve.QuantileTable.counts for one value, in Python floats (the same operations)."""
        start, end, per_cell, cells = self._grid
        cell = min(int((min(max(log_rate, start), end) - start) * per_cell), cells - 1)
        where = table * cells + cell
        count = self._below[where] + (log_rate >= self._next[where])
        if count < curve.TABLE_COUNTS:
            return count
        z = curve.Z[curve.QUANTILES[table % len(curve.QUANTILES)][0]]
        spread = math.sqrt(sigma * sigma + math.exp(-log_rate))
        return max(curve.TABLE_COUNTS, round(math.exp(min(log_rate + z * spread, curve.MAX_LOG_UNITS))))

    def estimate_many(self, ranks: Sequence[int], categories: Sequence[str]) -> list[Estimate]:
        sales, low, high, extrapolated = self.estimate_arrays(np.asarray(ranks, dtype=np.float64), categories)
        rows = zip(sales.tolist(), low.tolist(), high.tolist(), extrapolated.tolist(), strict=True)
        return [Estimate(*row) for row in rows]

    def codes(self, categories: Sequence[str]) -> np.ndarray:
        lookup = self._code
        return np.fromiter((lookup[name] for name in categories), dtype=np.int64, count=len(categories))

    def log_rate(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """ln of the median sales rate at each rank (continuous: what the quantiles are read from)."""
        seg, frac = curve.locate(np.log(ranks), self._segments)
        return self._flat_knots[codes * (self._segments + 1) + seg] + self._flat_rise[codes * self._segments + seg] * frac

    def beyond_training(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """How far each rank lies outside its category's trained range, in ln(rank); 0 inside."""
        x = np.log(ranks)
        ranges = self._log_range[codes]
        return np.maximum(ranges[:, 0] - x, 0.0) + np.maximum(x - ranges[:, 1], 0.0)

    def estimate_arrays(self, ranks: np.ndarray, categories: Sequence[str]) -> tuple[np.ndarray, ...]:
        """(sales, low, high, extrapolated) for each row."""
        return self.estimate_codes(ranks, self.codes(categories))

    def estimate_codes(self, ranks: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, ...]:
        """(sales, low, high, extrapolated) for ranks and category codes (``codes``)."""
        u = self.log_rate(ranks, codes)
        beyond = self.beyond_training(ranks, codes)
        widen = EXTRAPOLATION_WIDENING * beyond
        table = codes * len(curve.QUANTILES)
        low = self._table.counts(u - widen, table)
        sales = self._table.counts(u + 0.0, table + 1)
        high = self._table.counts(u + widen, table + 2)
        return sales, low, high, beyond > 0.0


