"""Serving a model trained before issue 20 (a concave log1p curve with holdout-residual intervals).

Versions in a registry trained with it still load and serve as they did; new ones use ml/predictor.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from ml import history
from ml.history import DAYS_PER_MONTH
from ml.markets import DEFAULT_MARKETPLACE
from ml.pipeline import CategoryLogRank, ConcaveLogLogRegressor
from ml.predictor import CategoryRows, Estimate

# How fast the 80% interval widens outside the trained ranks, on top of the holdout residuals: log1p(sales)
# per unit of ln(rank) beyond the range.
EXTRAPOLATION_WIDENING = 0.5


def build_legacy_pipeline() -> TransformedTargetRegressor:
    """The Pipeline versions before issue 20 were trained as: what comparisons measure the new one against."""
    return TransformedTargetRegressor(
        regressor=Pipeline([("features", CategoryLogRank()), ("curve", ConcaveLogLogRegressor())]),
        func=np.log1p,
        inverse_func=np.expm1,
        check_inverse=False,
    )


class LegacyPredictor(CategoryRows):
    """An Estimator for a pre-issue-20 Pipeline: its curves as segments (intercept, slope)."""

    def __init__(
        self,
        pipeline: Any,
        *,
        version: int,
        residual_quantiles: dict[str, list[float]],
        rank_range: dict[str, list[int]],
    ):
        features = pipeline.regressor_.named_steps["features"]
        curve = pipeline.regressor_.named_steps["curve"]
        self.version = version
        names = [str(name) for name in features.categories_]
        self._index((DEFAULT_MARKETPLACE, name) for name in names)  # it knew one marketplace
        self._knots = curve.log_knots_.copy()
        # Segment i covers ln(rank) in [t_{i-1}, t_i): value = intercept[i] + slope[i] * x.
        c, b, d = curve.coef_[:, 0], curve.coef_[:, 1], curve.coef_[:, 2:]
        passed = np.concatenate([np.zeros((len(c), 1)), np.cumsum(d, axis=1)], axis=1)
        weighted = np.concatenate([np.zeros((len(c), 1)), np.cumsum(d * curve.log_knots_, axis=1)], axis=1)
        self._slopes = -(b[:, None] + passed)
        self._intercepts = c[:, None] + weighted
        self._quantiles = np.array([residual_quantiles[name] for name in names], dtype=np.float64)
        # Per category: ln of the lowest and highest rank seen in training.
        self._log_ranges = np.log(np.array([rank_range[name] for name in names], dtype=np.float64))

    @classmethod
    def from_metadata(cls, pipeline: Any, *, version: int, metadata: dict[str, Any]) -> LegacyPredictor:
        """From a registry version's (verified) metadata."""
        return cls(
            pipeline,
            version=version,
            residual_quantiles=metadata["residual_quantiles"],
            rank_range=metadata["rank_range"],
        )

    def estimate(self, rank: int, category: str, marketplace: str = DEFAULT_MARKETPLACE) -> Estimate:
        code = self._code[marketplace, category]
        x = math.log(rank)
        segment = int(np.searchsorted(self._knots, x, side="right"))
        value = float(self._intercepts[code, segment] + self._slopes[code, segment] * x)
        first, last = self._log_ranges[code].tolist()
        beyond = first - x if x < first else x - last if x > last else 0.0
        return self._estimate(code, value, beyond)

    def _estimate(self, code: int, value: float, beyond: float) -> Estimate:
        low, high = self._quantiles[code].tolist()
        daily = max(math.expm1(min(value, 700.0)), 0.0) / DAYS_PER_MONTH
        if beyond > 0.0:
            widen = EXTRAPOLATION_WIDENING * beyond
            return Estimate(_sales(value), _sales(value + low - widen), _sales(value + high + widen), True, daily)
        return Estimate(_sales(value), _sales(value + low), _sales(value + high), False, daily)

    def estimate_history(
        self,
        seconds: Sequence[float],
        ranks: Sequence[int],
        category: str,
        marketplace: str = DEFAULT_MARKETPLACE,
    ) -> Estimate:
        """A month at the history's time-weighted mean rate, as ml.predictor.Predictor.estimate_history."""
        values, codes = self._history_rows(ranks, category, marketplace)
        weights = history.time_weights(seconds)
        rate = float(weights @ np.maximum(np.expm1(np.minimum(self.predict_log1p(values, codes), 700.0)), 0.0))
        beyond = self.beyond_training(values, codes)
        estimate = self._estimate(int(codes[0]), math.log1p(rate), float(weights @ beyond))
        return estimate._replace(extrapolated=bool(beyond.any()))

    def predict_log1p(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        x = np.log(ranks)
        segment = np.searchsorted(self._knots, x, side="right")
        return self._intercepts[codes, segment] + self._slopes[codes, segment] * x

    def beyond_training(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """How far each rank lies outside its category's trained range, in ln(rank); 0 inside."""
        x = np.log(ranks)
        ranges = self._log_ranges[codes]
        return np.maximum(ranges[:, 0] - x, 0.0) + np.maximum(x - ranges[:, 1], 0.0)

    def daily_codes(self, ranks: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.maximum(np.expm1(np.minimum(self.predict_log1p(ranks, codes), 700.0)), 0.0) / DAYS_PER_MONTH

    def estimate_codes(self, ranks: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, ...]:
        """(sales, low, high, extrapolated) for each row."""
        value = self.predict_log1p(ranks, codes)
        beyond = self.beyond_training(ranks, codes)
        widen = EXTRAPOLATION_WIDENING * beyond
        low, high = self._quantiles[codes, 0] - widen, self._quantiles[codes, 1] + widen
        sales = tuple(_sales_array(v) for v in (value, value + low, value + high))
        return (*sales, beyond > 0.0)


def _sales(log1p_value: float) -> int:
    return max(0, round(math.expm1(log1p_value))) if log1p_value < 700 else 2**62


def _sales_array(log1p_values: np.ndarray) -> np.ndarray:
    return np.rint(np.maximum(np.expm1(np.minimum(log1p_values, 700.0)), 0.0)).astype(np.int64)
