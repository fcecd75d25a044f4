"""Live accuracy: how good a model version really is, from the estimations clients recorded actuals on.

More: docs/architecture.md, "modelops/accuracy.py".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from estimations.selectors import estimations_with_actuals
from ml.train import metrics

PROJECTION = {
    "_id": 0,
    "category": 1,
    "estimated_sales": 1,
    "estimated_sales_low": 1,
    "estimated_sales_high": 1,
    "actual_sales": 1,
}


@dataclass(frozen=True)
class Recorded:
    """One category's estimations with actuals, as arrays (an absent interval bound is NaN)."""

    estimated: np.ndarray
    low: np.ndarray
    high: np.ndarray
    actual: np.ndarray


def recorded_actuals(version: int) -> dict[str, Recorded]:
    """Per category, ``version``'s stored estimates (with their intervals) and the actuals recorded on them."""
    columns: dict[str, list[list[float]]] = defaultdict(lambda: [[], [], [], []])
    for document in estimations_with_actuals(version=version, projection=PROJECTION):
        row = columns[document["category"]]
        row[0].append(document["estimated_sales"])
        row[1].append(_bound(document.get("estimated_sales_low")))
        row[2].append(_bound(document.get("estimated_sales_high")))
        row[3].append(document["actual_sales"])
    return {name: Recorded(*(np.asarray(column, dtype=np.float64) for column in row)) for name, row in columns.items()}


def _bound(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")


def live_accuracy(
    *, version: int, categories: list[str], recorded: dict[str, Recorded] | None = None
) -> dict[str, Any]:
    """Overall and per-category metrics of ``version``'s stored estimates against recorded actuals
    (``recorded``: those already read with ``recorded_actuals``)."""
    recorded = recorded_actuals(version) if recorded is None else recorded
    empty = Recorded(*(np.empty(0) for _ in range(4)))
    names = sorted(set(categories) | set(recorded))
    per_category = {
        name: metrics(recorded.get(name, empty).actual, recorded.get(name, empty).estimated) for name in names
    }
    actual = np.concatenate([recorded.get(name, empty).actual for name in names] or [np.empty(0)])
    estimated = np.concatenate([recorded.get(name, empty).estimated for name in names] or [np.empty(0)])
    return {"overall": metrics(actual, estimated), "per_category": per_category}
