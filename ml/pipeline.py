"""The sales model as a scikit-learn Pipeline with a log1p target.

More: docs/architecture.md, "ml/pipeline.py".
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

KNOT_RANKS = (10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
MIN_ROWS_PER_CATEGORY = 20


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


def build_pipeline() -> TransformedTargetRegressor:
    return TransformedTargetRegressor(
        regressor=Pipeline([("features", CategoryLogRank()), ("curve", ConcaveLogLogRegressor())]),
        func=np.log1p,
        inverse_func=np.expm1,
        check_inverse=False,
    )


def model_input(categories, ranks) -> np.ndarray:
    """The Pipeline's X: an object array of [category, rank] rows."""
    X = np.empty((len(ranks), 2), dtype=object)
    X[:, 0] = categories
    X[:, 1] = ranks
    return X
