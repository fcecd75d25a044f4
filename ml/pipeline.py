"""The sales model as a scikit-learn Pipeline: [segment, rank] -> quantiles of next month's units.

ConcaveLogLogRegressor is the model before issue 20, kept so that versions trained with it still load.
More: docs/model.md and docs/architecture.md, "ml/pipeline.py".
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ml import curve
from ml.markets import segment

KNOT_RANKS = (10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
MIN_ROWS_PER_CATEGORY = 20
MAX_KNOT_RANK = 1_000_000  # knots run at least this far, whatever the ranks trained on
# How fast the 80% interval widens outside the trained ranks: ln units per unit of ln(rank) beyond the range
# (ten times past the last trained rank: about x3.2 on each side).
EXTRAPOLATION_WIDENING = 0.5


class UnknownCategory(ValueError):
    pass


class CategoryLogRank(TransformerMixin, BaseEstimator):
    """[category, rank] rows -> [category code, ln rank]; learns the categories when fitted."""

    def fit(self, X, y=None):
        self.categories_ = np.unique(np.asarray(X[:, 0], dtype=str))
        return self

    def transform(self, X):
        check_is_fitted(self)
        names = np.asarray(X[:, 0], dtype=str)
        codes = np.searchsorted(self.categories_, names)
        codes = np.clip(codes, 0, len(self.categories_) - 1)
        unknown = self.categories_[codes] != names
        if unknown.any():
            raise UnknownCategory(f"unknown categories: {sorted(set(names[unknown]))[:5]}")
        ranks = np.asarray(X[:, 1], dtype=np.float64)
        return np.column_stack([codes.astype(np.float64), np.log(ranks)])


def hinge_basis(x: np.ndarray, log_knots: np.ndarray) -> np.ndarray:
    """Columns [1, -x, -max(0, x - t_1), ...]: non-negative weights give a concave, falling curve."""
    return np.column_stack([np.ones_like(x), -x, -np.maximum(0.0, x[:, None] - log_knots[None, :])])


class ConcaveLogLogRegressor(RegressorMixin, BaseEstimator):
    """One concave, non-increasing piecewise-linear curve in ln(rank) per category code."""

    def __init__(self, knot_ranks: tuple[int, ...] = KNOT_RANKS):
        self.knot_ranks = knot_ranks

    def fit(self, X, y):
        codes = X[:, 0].astype(np.int64)
        x = X[:, 1]
        y = np.asarray(y, dtype=np.float64)
        self.log_knots_ = np.log(np.asarray(self.knot_ranks, dtype=np.float64))
        n_codes = int(codes.max()) + 1
        self.coef_ = np.zeros((n_codes, 2 + len(self.log_knots_)))
        for code in range(n_codes):
            rows = codes == code
            if rows.sum() < MIN_ROWS_PER_CATEGORY:
                raise ValueError(
                    f"category code {code} has {int(rows.sum())} rows; at least {MIN_ROWS_PER_CATEGORY} are needed"
                )
            self.coef_[code], _ = nnls(hinge_basis(x[rows], self.log_knots_), y[rows])
        return self

    def predict(self, X):
        check_is_fitted(self)
        codes = X[:, 0].astype(np.int64)
        basis = hinge_basis(X[:, 1], self.log_knots_)
        return np.einsum("ij,ij->i", basis, self.coef_[codes])


class MonotoneCountCurve(RegressorMixin, BaseEstimator):
    """Per category code: a non-increasing curve of the median sales rate in log-log (ml/curve.py), its
    log-normal spread, and the tables that turn a rate into quantiles of next month's units."""

    def fit(self, X, y):
        codes = X[:, 0].astype(np.int64)
        x = X[:, 1]
        y = np.asarray(y, dtype=np.float64)
        n_codes = int(codes.max()) + 1
        self.segments_ = curve.segments_for(max(float(x.max()), math.log(MAX_KNOT_RANK)))
        self.knots_ = np.zeros((n_codes, self.segments_ + 1))  # ln median rate at each knot
        self.sigma_ = np.zeros(n_codes)
        self.thresholds_ = np.zeros((n_codes, len(curve.QUANTILES), curve.TABLE_COUNTS))
        self.log_range_ = np.zeros((n_codes, 2))
        for code in range(n_codes):
            rows = codes == code
            if rows.sum() < MIN_ROWS_PER_CATEGORY:
                raise ValueError(
                    f"category code {code} has {int(rows.sum())} rows; at least {MIN_ROWS_PER_CATEGORY} are needed"
                )
            xs, ys = x[rows], y[rows]
            # Poisson first, then the negative binomial its spread implies: it weighs the noisy head less.
            mean_knots = curve.fit_curve(xs, ys, self.segments_, dispersion=0.0)
            dispersion = curve.moment_dispersion(ys, self._at(mean_knots, xs))
            mean_knots = curve.fit_curve(
                xs, ys, self.segments_, dispersion=dispersion, start=curve.knot_parameters(mean_knots)
            )
            sigma = curve.fit_sigma(ys, self._at(mean_knots, xs), seed=code)
            self.knots_[code] = mean_knots - sigma * sigma / 2  # the median rate lies below the mean
            self.sigma_[code] = sigma
            self.thresholds_[code] = curve.quantile_thresholds(sigma)
            self.log_range_[code] = [xs.min(), xs.max()]
        self.table_ = curve.QuantileTable(self.thresholds_, self.sigma_)
        return self

    def _at(self, knots: np.ndarray, x: np.ndarray) -> np.ndarray:
        seg, frac = curve.locate(x, self.segments_)
        return knots[seg] + (knots[seg + 1] - knots[seg]) * frac

    def log_rate(self, X) -> np.ndarray:
        """ln of the median sales rate at each [code, ln rank] row."""
        check_is_fitted(self)
        codes = X[:, 0].astype(np.int64)
        seg, frac = curve.locate(X[:, 1], self.segments_)
        left = self.knots_[codes, seg]
        return left + (self.knots_[codes, seg + 1] - left) * frac

    def predict(self, X):
        """The median of next month's units."""
        return self.predict_quantiles(X)[1]

    def predict_quantiles(self, X) -> tuple[np.ndarray, ...]:
        """(low, median, high, extrapolated): the 80% interval widens outside the trained ranks."""
        codes = X[:, 0].astype(np.int64)
        u = self.log_rate(X)
        x = X[:, 1]
        beyond = np.maximum(self.log_range_[:, 0][codes] - x, 0.0) + np.maximum(x - self.log_range_[:, 1][codes], 0.0)
        widen = EXTRAPOLATION_WIDENING * beyond
        low, median, high = (values.astype(np.float64) for values in self.table_.quantiles(u, widen, codes))
        return low, median, high, beyond > 0.0


def build_pipeline() -> Pipeline:
    return Pipeline([("features", CategoryLogRank()), ("curve", MonotoneCountCurve())])


def model_input(categories, ranks, marketplaces=None) -> np.ndarray:
    """The Pipeline's X: an object array of [segment, rank] rows (ml.markets.segment; no ``marketplaces``:
    all in DEFAULT_MARKETPLACE, whose segments are the bare categories)."""
    X = np.empty((len(ranks), 2), dtype=object)
    if marketplaces is None:
        X[:, 0] = categories
    else:
        X[:, 0] = [segment(market, name) for market, name in zip(marketplaces, categories, strict=True)]
    X[:, 1] = ranks
    return X
