"""Drift alarms: a version's live interval coverage and median error, from recorded actuals, against
the holdout figures of its model card. The rule and its margins are the constants below.

More: docs/operations.md, "Drift alarms"; docs/architecture.md, "modelops/drift.py".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.card_serializers import readable_card
from modelops import segments
from modelops.accuracy import Recorded, recorded_actuals

MIN_ACTUALS = 30  # fewer recorded actuals in a segment (marketplace x category): no alarm, whatever the figures
MIN_LIVE_COVERAGE = 0.70  # live share of actuals within the stored 80% interval below this: alarm
MAX_ERROR_FACTOR = 1.5  # live median error above this many times the holdout's: alarm
COVERAGE, MEDIAN_ERROR = "coverage", "median_error"
REASONS = (COVERAGE, MEDIAN_ERROR)
RULE = (
    f"Per segment (marketplace x category), with at least {MIN_ACTUALS} recorded actuals: an alarm when the live "
    f"interval coverage (share of actuals within [estimated_sales_low, estimated_sales_high]) is under "
    f"{MIN_LIVE_COVERAGE:.2f}, or the live median error (median |estimated_sales - actual| / actual, "
    f"actuals > 0) is over {MAX_ERROR_FACTOR}x the holdout median_error of the version's model card. "
    "Versions without a model card have no holdout figures and raise no alarm."
)
NO_CARD = "no holdout figures (the version was trained without a model card): no alarm"


def version_drift(metadata: dict[str, Any], recorded: dict[str, Recorded] | None = None) -> dict[str, Any]:
    """The drift figures of a version (its registry ``metadata``), per segment ("per_category", keyed
    by segment name, "books" in us, "uk/books" elsewhere) and overall: ``alarm`` is true when any segment's is.
    ``recorded``: the version's actuals, if already read."""
    recorded = recorded_actuals(metadata["version"]) if recorded is None else recorded
    card = readable_card(metadata.get("model_card"))  # an unreadable card counts as none: no alarm, no 500
    card_segments = segments.keyed((card or {}).get("per_category"))
    names = sorted(set(segments.of_version(metadata)) | set(recorded) | set(card_segments))
    per_category = {
        name: category_drift(metadata["version"], name, recorded.get(name), _entry(card_segments.get(name)))
        for name in names
    }
    drifted = [name for name, figures in per_category.items() if figures["alarm"]]
    return {
        "alarm": bool(drifted),
        "drifted": drifted,
        "holdout_figures": card is not None,
        "note": None if card is not None else NO_CARD,
        "rule": RULE,
        "per_category": per_category,
    }


def _entry(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def category_drift(version: int, name: str, recorded: Recorded | None, holdout: dict[str, Any] | None) -> dict:
    """One segment's live figures beside its holdout ones, the alarm, its reasons and a line saying so.
    ``name``: the segment's ("uk/books", "books" in us); ``holdout``: its entry in the model card, None without one."""
    actuals = 0 if recorded is None else len(recorded.actual)
    coverage = error = None
    if recorded is not None:
        bounded = ~(np.isnan(recorded.low) | np.isnan(recorded.high))
        if bounded.any():
            inside = (recorded.actual >= recorded.low) & (recorded.actual <= recorded.high)
            coverage = float(inside[bounded].mean())
        sold = recorded.actual > 0
        if sold.any():
            ratios = np.abs(recorded.estimated[sold] - recorded.actual[sold]) / recorded.actual[sold]
            error = float(np.median(ratios))
    holdout_error = _number((holdout or {}).get("median_error"))
    shares = (holdout or {}).get("coverage")
    holdout_coverage = _number(shares.get("overall")) if isinstance(shares, dict) else None
    limit = None if holdout_error is None else MAX_ERROR_FACTOR * holdout_error
    reasons: list[str] = []
    if holdout is not None and actuals >= MIN_ACTUALS:
        if coverage is not None and coverage < MIN_LIVE_COVERAGE:
            reasons.append(COVERAGE)
        if error is not None and limit is not None and error > limit:
            reasons.append(MEDIAN_ERROR)
    figures: dict[str, Any] = {
        "actuals": actuals,
        "needed": max(0, MIN_ACTUALS - actuals),
        "live_coverage": coverage,
        "holdout_coverage": holdout_coverage,
        "coverage_floor": MIN_LIVE_COVERAGE,
        "live_median_error": error,
        "holdout_median_error": holdout_error,
        "median_error_limit": limit,
        "alarm": bool(reasons),
        "reasons": reasons,
    }
    figures["message"] = _message(version, name, figures, has_card=holdout is not None)
    return figures


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _message(version: int, name: str, figures: dict[str, Any], *, has_card: bool) -> str:
    """What a person reads: which figure drifted, live against holdout, on how many actuals."""
    where = f"version {version}, {segments.label(name)}"
    if not has_card:
        return f"{where}: no holdout figures for this marketplace and category, no alarm"
    if figures["needed"]:
        return (
            f"{where}: {figures['actuals']} actual{'s' if figures['actuals'] != 1 else ''} recorded, "
            f"{figures['needed']} more needed before an alarm can be raised"
        )
    parts = []
    if COVERAGE in figures["reasons"]:
        holdout = figures["holdout_coverage"]
        parts.append(
            f"live interval coverage {figures['live_coverage']:.0%} is under {MIN_LIVE_COVERAGE:.0%}"
            + (f" (holdout {holdout:.0%})" if holdout is not None else "")
        )
    if MEDIAN_ERROR in figures["reasons"]:
        parts.append(
            f"live median error {figures['live_median_error']:.0%} is over {MAX_ERROR_FACTOR}x the holdout's "
            f"{figures['holdout_median_error']:.0%} (limit {figures['median_error_limit']:.0%})"
        )
    if not parts:
        return f"{where}: no drift on {figures['actuals']} actuals"
    return f"{where}: {'; '.join(parts)}, on {figures['actuals']} actuals"
