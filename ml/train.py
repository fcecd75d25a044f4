"""Training: a seeded holdout split, the Pipeline fitted on the rest, and what the holdout says of it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import sklearn

from ml import card
from ml.data import DataError, Dataset
from ml.markets import markets_of, shown, split_segment
from ml.pipeline import MIN_ROWS_PER_CATEGORY, build_pipeline, model_input

HOLDOUT_FRACTION = 0.2
# The seeds of the holdout split that POST /models and train_model take (a 32-bit unsigned number).
MAX_SEED = 2**32 - 1
ISSUE_SEED = f"must be a whole number from 0 to {MAX_SEED:,}"
INTERVAL = (0.10, 0.90)  # the 80% interval stored with every estimate
STATISTIC = "median"  # an estimate is the median of next month's units


@dataclass
class TrainedModel:
    pipeline: Any
    metadata: dict[str, Any]

    def artifact(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self.pipeline, buffer, compress=3)
        return buffer.getvalue()


def metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """RMSE of log1p(sales); median absolute % error (months with sales > 0); share within 2x.

    "Within 2x" compares (estimate + 1) with (actual + 1), so a zero-sale month counts as met by an
    estimate of 0 or 1.
    """
    if len(actual) == 0:
        return {"rows": 0, "rmse_log1p": None, "median_ape": None, "within_2x": None}
    predicted = np.maximum(predicted, 0.0)
    errors = np.log1p(predicted) - np.log1p(actual)
    sold = actual > 0
    ratio = (predicted + 1.0) / (actual + 1.0)
    return {
        "rows": int(len(actual)),
        "rmse_log1p": float(np.sqrt(np.mean(errors**2))),
        "median_ape": float(np.median(np.abs(predicted[sold] - actual[sold]) / actual[sold])) if sold.any() else None,
        "within_2x": float(np.mean((ratio >= 0.5) & (ratio <= 2.0))),
    }


def _check_rows_per_segment(dataset: Dataset, names: np.ndarray, fit_rows: np.ndarray) -> None:
    """Each segment's curve needs MIN_ROWS_PER_CATEGORY rows to fit, after the holdout is set aside."""
    segments, in_file = np.unique(names, return_counts=True)
    fitted = dict(zip(*np.unique(names[fit_rows], return_counts=True), strict=True))
    short = [
        f"'{shown(name)}' has {count:,} valid row{'s' if count != 1 else ''} ({int(fitted.get(name, 0)):,} left to "
        f"fit after the {HOLDOUT_FRACTION:.0%} holdout)"
        for name, count in zip(segments, in_file, strict=True)
        if fitted.get(name, 0) < MIN_ROWS_PER_CATEGORY
    ]
    if short:
        raise DataError(
            f"{dataset.source}: too few rows to fit a curve for {len(short)} categor"
            f"{'y' if len(short) == 1 else 'ies'}; each needs at least {MIN_ROWS_PER_CATEGORY} left to fit: "
            + "; ".join(short[:10])
            + ". Add rows for them, or leave them out of the file."
        )


def _badge_check(dataset: Dataset, rows: np.ndarray, median: np.ndarray) -> dict[str, Any] | None:
    """Held-out range rows ("bought in past month" badges): how many, and the share whose median estimate lies
    in the row's range (None without any)."""
    if not len(rows):
        return None
    inside = (median >= dataset.sales_min[rows]) & (median <= dataset.sales_max[rows])
    return {"holdout_rows": int(len(rows)), "median_in_range": round(float(inside.mean()), 4)}


def train(dataset: Dataset, *, seed: int = 0) -> TrainedModel:
    rng = np.random.default_rng(seed)
    order = rng.permutation(dataset.rows)
    cut = int(round(dataset.rows * (1 - HOLDOUT_FRACTION)))
    fit_rows, holdout_rows = order[:cut], order[cut:]
    X = model_input(dataset.categories, dataset.ranks, dataset.marketplaces)
    names = X[:, 0].astype(str)
    _check_rows_per_segment(dataset, names, fit_rows)

    pipeline = build_pipeline()
    pipeline.fit(X[fit_rows], dataset.target(fit_rows))  # range rows (badges) by their censored likelihood
    features, model = pipeline.named_steps["features"], pipeline.named_steps["curve"]

    segments = [str(name) for name in features.categories_]
    low, predicted, high, _ = model.predict_quantiles(features.transform(X[holdout_rows]))
    ranged = dataset.censored[holdout_rows]
    badges = _badge_check(dataset, holdout_rows[ranged], predicted[ranged])
    exact = ~ranged  # the holdout's metrics and coverage are of the months whose units are known
    held, low, predicted, high = holdout_rows[exact], low[exact], predicted[exact], high[exact]
    held_names = names[held]
    held_ranks = dataset.ranks[held]
    actual = dataset.sales[held]

    per_category: dict[str, dict[str, Any]] = {}
    rank_range: dict[str, list[int]] = {}
    cards: dict[str, dict[str, Any]] = {}
    fit_names = names[fit_rows]
    for code, name in enumerate(segments):
        rows = held_names == name
        per_category[name] = metrics(actual[rows], predicted[rows]) if rows.any() else {"rows": 0}
        trained = dataset.ranks[fit_rows][fit_names == name]
        rank_range[name] = [int(trained.min()), int(trained.max())]
        marketplace, category = split_segment(name)
        cards[name] = {
            "marketplace": marketplace,
            "category": category,
            "training_rows": int(len(trained)),
            "holdout_rows": int(rows.sum()),
            "slope_by_decade": card.slopes_by_decade(
                lambda ranks, code=code: model.log_rate(np.column_stack([np.full(len(ranks), code), np.log(ranks)]))
            ),
            "coverage": card.coverage(actual[rows], low[rows], high[rows], held_ranks[rows]),
            "median_error": per_category[name].get("median_ape"),
            "sigma": round(float(model.sigma_[code]), 4),
        }

    model_card = {
        "statistic": STATISTIC,
        "interval": list(INTERVAL),
        "bands": {name: list(bounds) for name, bounds in card.BANDS.items()},
        "coverage": card.coverage(actual, low, high, held_ranks),
        "per_category": cards,
        "badges": badges,
    }
    metadata = {
        "created": datetime.now(UTC),
        "sklearn_version": sklearn.__version__,
        "training_data": {
            "source": dataset.source,
            "sha256": dataset.sha256,
            "rows": dataset.rows,
            "bad_rows_skipped": dataset.bad_count,
            "fit_rows": int(len(fit_rows)),
            "holdout_rows": int(len(holdout_rows)),
            "range_rows": int(dataset.censored.sum()),
            "seed": seed,
        },
        "categories": segments,  # "marketplace/category" (ml.markets.segment), one curve each
        "markets": markets_of(segments),
        "metrics": {"overall": metrics(actual, predicted), "per_category": per_category},
        "interval": list(INTERVAL),
        "rank_range": rank_range,
        "model_card": model_card,
    }
    return TrainedModel(pipeline=pipeline, metadata=metadata)
