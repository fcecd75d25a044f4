"""Live accuracy: how good a model version really is, from the estimations clients recorded actuals on.

More: docs/architecture.md, "modelops/accuracy.py".
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from estimations.selectors import estimations_with_actuals
from ml.train import metrics


def live_accuracy(*, version: int, categories: list[str]) -> dict[str, Any]:
    """Overall and per-category metrics of ``version``'s stored estimates against recorded actuals."""
    estimated: dict[str, list[int]] = defaultdict(list)
    actual: dict[str, list[int]] = defaultdict(list)
    projection = {"_id": 0, "category": 1, "estimated_sales": 1, "actual_sales": 1}
    for document in estimations_with_actuals(version=version, projection=projection):
        estimated[document["category"]].append(document["estimated_sales"])
        actual[document["category"]].append(document["actual_sales"])

    def measured(truth: list[int], guess: list[int]) -> dict[str, Any]:
        return metrics(np.asarray(truth, dtype=np.float64), np.asarray(guess, dtype=np.float64))

    names = sorted(set(categories) | set(actual))
    return {
        "overall": measured(
            [value for name in names for value in actual[name]], [value for name in names for value in estimated[name]]
        ),
        "per_category": {name: measured(actual[name], estimated[name]) for name in names},
    }
