"""Shadow replay: a candidate model version re-estimates stored estimations beside the active one.

More: docs/architecture.md, "modelops/replay.py".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from estimations.fields import ESTIMATE_INPUTS
from ml.predictor import ServedModel
from ml.train import metrics

BATCH = 10_000
# What an estimate is made from (the field table's inputs), and the units really sold where recorded.
FIELDS = {"_id": 0, **dict.fromkeys(ESTIMATE_INPUTS, 1), "actual_sales": 1}


def _batches(documents: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for document in documents:
        batch.append(document)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _Category:
    """What one category accumulates: the log1p differences, and actuals with both estimates."""

    def __init__(self) -> None:
        self.changes: list[np.ndarray] = []
        self.actual: list[np.ndarray] = []
        self.candidate: list[np.ndarray] = []
        self.active: list[np.ndarray] = []

    def report(self) -> dict[str, Any]:
        changes = np.concatenate(self.changes) if self.changes else np.empty(0)
        actual = np.concatenate(self.actual) if self.actual else np.empty(0)
        with_actuals = len(actual)
        candidate = metrics(actual, np.concatenate(self.candidate)) if with_actuals else None
        active = metrics(actual, np.concatenate(self.active)) if with_actuals else None
        closer = None
        if candidate and active:
            difference = float(candidate["rmse_log1p"] or 0.0) - float(active["rmse_log1p"] or 0.0)
            closer = "tie" if abs(difference) < 1e-12 else "candidate" if difference < 0 else "active"
        return {
            "rows": int(len(changes)),
            # exp(median of log1p(candidate) - log1p(active)): the typical ratio (estimate + 1) between them
            "median_ratio": float(np.exp(np.median(changes))) if len(changes) else None,
            "mean_abs_log1p_change": float(np.mean(np.abs(changes))) if len(changes) else None,
            "share_over_2x": float(np.mean(np.abs(changes) > np.log(2.0))) if len(changes) else None,
            "with_actuals": with_actuals,
            "candidate": candidate,
            "active": active,
            "closer": closer,
        }


def replay(
    documents: Iterable[dict[str, Any]],
    *,
    candidate: ServedModel,
    active: ServedModel,
    total: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Re-estimate ``documents`` (rank, category, optional actual_sales) with both models; the report."""
    known = set(candidate.categories) & set(active.categories)
    per_category: dict[str, _Category] = defaultdict(_Category)
    overall = _Category()
    skipped = 0
    bar = tqdm(total=total, unit="rows", desc="replaying", disable=not progress, mininterval=0.5)
    for batch in _batches(documents):
        bar.update(len(batch))
        rows = [document for document in batch if document.get("category") in known]
        skipped += len(batch) - len(rows)
        if not rows:
            continue
        ranks = np.array([row["bestseller_rank"] for row in rows], dtype=np.float64)
        categories = [row["category"] for row in rows]
        category_array = np.array(categories)
        actual = np.array([row.get("actual_sales", np.nan) for row in rows], dtype=np.float64)
        new = candidate.estimate_arrays(ranks, categories)[0].astype(np.float64)
        old = active.estimate_arrays(ranks, categories)[0].astype(np.float64)
        change = np.log1p(new) - np.log1p(old)
        has_actual = ~np.isnan(actual)
        for name in np.unique(category_array):
            rows_of = category_array == name
            for target in (per_category[str(name)], overall):
                target.changes.append(change[rows_of])
                measured = rows_of & has_actual
                target.actual.append(actual[measured])
                target.candidate.append(new[measured])
                target.active.append(old[measured])
    bar.close()
    summary = overall.report()
    return {
        "rows": summary["rows"],
        "skipped_rows": skipped,
        "overall": summary,
        "per_category": {name: per_category[name].report() for name in sorted(per_category)},
    }
