"""Shadow replay: a candidate model version re-estimates stored estimations beside the active one.

More: docs/architecture.md, "modelops/replay.py".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import numpy as np
from tqdm import tqdm

from estimations.fields import ESTIMATE_INPUTS
from ml.markets import segment, split_segment
from ml.predictor import ServedModel
from ml.train import metrics
from modelops import segments

BATCH = 10_000
# What an estimate is made from (the field table's inputs, its marketplace and rank history), and the
# units really sold where recorded.
FIELDS = {
    "_id": 0,
    **dict.fromkeys(ESTIMATE_INPUTS, 1),
    "marketplace": 1,
    "rank_history": 1,
    "actual_sales": 1,
}


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
    """What one segment (or marketplace, or all) accumulates: the log1p differences, and actuals with both
    estimates."""

    def __init__(self) -> None:
        self.changes: list[np.ndarray] = []
        self.actual: list[np.ndarray] = []
        self.candidate: list[np.ndarray] = []
        self.active: list[np.ndarray] = []

    def add(self, change: np.ndarray, actual: np.ndarray, new: np.ndarray, old: np.ndarray) -> None:
        measured = ~np.isnan(actual)
        self.changes.append(change)
        self.actual.append(actual[measured])
        self.candidate.append(new[measured])
        self.active.append(old[measured])

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


def history_of(document: dict[str, Any]) -> tuple[list[float], list[int]] | None:
    """A stored rank_history as (POSIX seconds, ranks); None when the document has none (or an empty one).
    Its times may be stored as dates or as ISO 8601 text; a sample not of that shape raises ValueError."""
    history = document.get("rank_history")
    if not history:
        return None
    seconds, ranks = [], []
    for sample in history:
        at = sample["at"]
        at = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
        seconds.append(at.timestamp())
        ranks.append(int(sample["rank"]))
    return seconds, ranks


class _Rows:
    """One batch's replayable rows: their segment, and rank (plain) or rank history."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.ranks: list[int] = []
        self.histories: list[tuple[list[float], list[int]] | None] = []
        self.actual: list[float] = []

    def estimates(self, model: ServedModel) -> np.ndarray:
        """``model``'s estimated sales for each row: from its rank history where it has one, else its rank."""
        sales = np.empty(len(self.keys), dtype=np.float64)
        plain = [index for index, history in enumerate(self.histories) if history is None]
        if plain:
            ranks = np.array([self.ranks[index] for index in plain], dtype=np.float64)
            marketplaces, categories = zip(*(self.keys[index] for index in plain), strict=True)
            sales[plain] = model.estimate_arrays(ranks, list(categories), list(marketplaces))[0]
        for index, history in enumerate(self.histories):
            if history is not None:
                marketplace, category = self.keys[index]
                sales[index] = model.estimate_history(history[0], history[1], category, marketplace).sales
        return sales


def _skip_message(name: str, entry: dict[str, Any], versions: dict[str, int]) -> str:
    rows = f"{entry['rows']:,} estimation{'s' if entry['rows'] != 1 else ''} in {name}"
    if entry["lacking"]:
        lacking = " and ".join(f"the {role} (version {versions[role]})" for role in entry["lacking"])
        has = "have" if len(entry["lacking"]) > 1 else "has"
        return f"{rows}: {lacking} {has} no curve for it, so they were not replayed"
    return f"{rows}: a stored rank_history could not be read, so they were not replayed"


def replay(
    documents: Iterable[dict[str, Any]],
    *,
    candidate: ServedModel,
    active: ServedModel,
    total: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Re-estimate ``documents`` (marketplace, category, rank or rank history, optional actual_sales) with
    both models; the report, per marketplace and per segment. Rows a model has no curve for are counted."""
    in_candidate, in_active = segments.of_model(candidate), segments.of_model(active)
    per_segment: dict[str, _Category] = defaultdict(_Category)
    per_marketplace: dict[str, _Category] = defaultdict(_Category)
    overall = _Category()
    skipped: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=total, unit="rows", desc="replaying", disable=not progress, mininterval=0.5)
    for batch in _batches(documents):
        bar.update(len(batch))
        rows = _Rows()
        for document in batch:
            key = segments.of_document(document)
            lacking = [role for role, known in (("candidate", in_candidate), ("active", in_active)) if key not in known]
            history, unreadable = None, False
            if not lacking:
                try:
                    history = history_of(document)
                except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
                    unreadable = True
            if lacking or unreadable:
                entry = skipped.setdefault(segment(*key), {"rows": 0, "lacking": lacking})
                entry["rows"] += 1
                continue
            rows.keys.append(key)
            rows.ranks.append(document["bestseller_rank"])
            rows.histories.append(history)
            rows.actual.append(document.get("actual_sales", np.nan))
        if not rows.keys:
            continue
        new, old = rows.estimates(candidate), rows.estimates(active)
        actual = np.array(rows.actual, dtype=np.float64)
        change = np.log1p(new) - np.log1p(old)
        names = np.array([segment(*key) for key in rows.keys])
        for name in np.unique(names):
            of = names == name
            marketplace = split_segment(str(name))[0]
            for target in (per_segment[str(name)], per_marketplace[marketplace], overall):
                target.add(change[of], actual[of], new[of], old[of])
    bar.close()
    summary = overall.report()
    versions = {"candidate": candidate.version, "active": active.version}
    return {
        "rows": summary["rows"],
        "skipped_rows": sum(entry["rows"] for entry in skipped.values()),
        "skipped": {
            name: {**skipped[name], "message": _skip_message(name, skipped[name], versions)} for name in sorted(skipped)
        },
        "overall": summary,
        "per_marketplace": {code: per_marketplace[code].report() for code in sorted(per_marketplace)},
        "per_category": {name: per_segment[name].report() for name in sorted(per_segment)},
    }
