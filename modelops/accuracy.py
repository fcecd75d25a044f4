"""Live accuracy: how good a model version really is, from the estimations clients recorded actuals on.

More: docs/architecture.md, "modelops/accuracy.py".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from estimations.selectors import estimations_with_actuals
from ml.markets import segment
from ml.train import metrics
from modelops import segments

PROJECTION = {
    "_id": 0,
    "marketplace": 1,
    "category": 1,
    "estimated_sales": 1,
    "estimated_sales_low": 1,
    "estimated_sales_high": 1,
    "actual_sales": 1,
}


@dataclass(frozen=True)
class Recorded:
    """One segment's estimations with actuals, as arrays (an absent interval bound is NaN)."""

    estimated: np.ndarray
    low: np.ndarray
    high: np.ndarray
    actual: np.ndarray


def recorded_actuals(version: int) -> dict[str, Recorded]:
    """Per segment ("uk/books", "books" in us; no marketplace stored: us), ``version``'s stored estimates (with their
    intervals) and the actuals recorded on them."""
    columns: dict[str, list[list[float]]] = defaultdict(lambda: [[], [], [], []])
    for document in estimations_with_actuals(version=version, projection=PROJECTION):
        row = columns[segment(*segments.of_document(document))]
        row[0].append(document["estimated_sales"])
        row[1].append(_bound(document.get("estimated_sales_low")))
        row[2].append(_bound(document.get("estimated_sales_high")))
        row[3].append(document["actual_sales"])
    return {name: Recorded(*(np.asarray(column, dtype=np.float64) for column in row)) for name, row in columns.items()}


def _bound(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")


def _joined(parts: list[Recorded]) -> Recorded:
    return Recorded(*(np.concatenate([getattr(part, name) for part in parts] or [np.empty(0)]) for name in _COLUMNS))


_COLUMNS = ("estimated", "low", "high", "actual")


def live_accuracy(
    *, version: int, segment_names: list[str], recorded: dict[str, Recorded] | None = None
) -> dict[str, Any]:
    """Overall, per-marketplace and per-segment ("per_category", keyed "uk/books", "books" in us) metrics of
    ``version``'s stored estimates against recorded actuals (``recorded``: already read by recorded_actuals)."""
    recorded = recorded_actuals(version) if recorded is None else recorded
    empty = Recorded(*(np.empty(0) for _ in _COLUMNS))
    names = sorted(set(segment_names) | set(recorded))
    per_segment = {name: recorded.get(name, empty) for name in names}
    markets = {
        code: _joined([per_segment[name] for name in members])
        for code, members in segments.by_marketplace(names).items()
    }
    every = _joined(list(per_segment.values()))
    return {
        "overall": metrics(every.actual, every.estimated),
        "per_marketplace": {code: metrics(rows.actual, rows.estimated) for code, rows in markets.items()},
        "per_category": {name: metrics(rows.actual, rows.estimated) for name, rows in per_segment.items()},
    }


def holdout_metrics(metadata: dict[str, Any]) -> dict[str, Any]:
    """A version's stored holdout metrics with "per_category" keyed by segment name (not a mapping: {})."""
    stored = metadata.get("metrics") or {}
    return {**stored, "per_category": segments.keyed(stored.get("per_category"))}
