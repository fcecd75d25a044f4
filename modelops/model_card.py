"""The model card as /inspect/ shows it: one row per segment, grouped by marketplace (training rows,
interval coverage by rank band, median error; and the fitted slope by decade of rank), formatted for reading.
A card of a version trained before marketplaces (keyed by bare category) shows as us."""

from __future__ import annotations

import logging
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from ml.card_serializers import readable_card
from ml.markets import split_segment
from ml.plot import compact_number
from modelops import segments

BAND_NAMES = ("head", "middle", "tail")
COVERAGE_BOUNDS = (0.70, 0.90)  # a band's coverage outside these is flagged: every band is held to them

logger = logging.getLogger(__name__)


def band_label(span: Any) -> str:
    """[1, 299] -> "1–299"; [30001, None] -> "> 30k"."""
    if not (isinstance(span, list | tuple) and len(span) == 2):
        return ""
    first, last = span
    return f"> {compact_number(first - 1)}" if last is None else f"{compact_number(first)}–{compact_number(last)}"


def breakable(name: str) -> SafeString:
    """A category name that may wrap after its underscores (sports_outdoors), on a narrow screen."""
    return mark_safe(escape(name).replace("_", "_<wbr>"))  # noqa: S308 - escaped first


def segment_label(name: str) -> SafeString:
    """ "uk/sports_outdoors" as "uk / sports_outdoors", the marketplace muted, the category breakable."""
    marketplace, category = split_segment(name)
    return mark_safe(f'<span class="mp">{escape(marketplace)} /</span> {breakable(category)}')  # noqa: S308


def _share(value: float | None, flag: bool = True) -> dict[str, Any]:
    if value is None:
        return {"text": "–", "off": False, "title": "no holdout rows in this band"}
    low, high = COVERAGE_BOUNDS
    off = flag and not low <= value <= high
    title = f"{value:.1%}" + (f": outside {low:.0%}–{high:.0%}" if off else "")
    return {"text": f"{value:.0%}", "off": off, "title": title}


def _coverage(figures: dict[str, Any]) -> list[dict[str, Any]]:
    return [_share(figures.get(name)) for name in ("overall", *BAND_NAMES)]


def _row(name: str, figures: dict[str, Any], decades: list[tuple[int, int]]) -> dict[str, Any]:
    slopes = {(d["from_rank"], d["to_rank"]): d["slope"] for d in figures["slope_by_decade"]}
    error = figures.get("median_error")
    marketplace, category = split_segment(name)
    return {
        "name": name,
        "marketplace": marketplace,
        "category": category,
        "label": segment_label(name),
        "training_rows": f"{figures['training_rows']:,}",
        "holdout_rows": f"{figures['holdout_rows']:,}",
        "coverage": _coverage(figures["coverage"]),
        "median_error": "–" if error is None else f"{error:.0%}",
        "sigma": f"{figures['sigma']:.2f}",
        "slopes": [f"{slopes[d]:.2f}" if d in slopes else "–" for d in decades],
    }


def card_tables(metadata: dict[str, Any]) -> dict[str, Any]:
    """What the page's card shows of a version; {"missing": why} without a card (or one it cannot read)."""
    card = metadata.get("model_card")
    if not card:
        return {"missing": "Not recorded: this version was trained before the service kept model cards."}
    if readable_card(card) is None:
        return {"missing": "This version's model card could not be read: it is not of the shape the service writes."}
    try:
        per_category = segments.keyed(card["per_category"])
        groups = segments.by_marketplace(per_category)
        names = [name for members in groups.values() for name in members]
        decades = sorted({(d["from_rank"], d["to_rank"]) for n in names for d in per_category[n]["slope_by_decade"]})
        rows = [_row(name, per_category[name], decades) for name in names]
        overall = {
            "training_rows": f"{sum(per_category[n]['training_rows'] for n in names):,}",
            "holdout_rows": f"{sum(per_category[n]['holdout_rows'] for n in names):,}",
            "coverage": _coverage(card["coverage"]),
        }
        bands = card.get("bands", {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning("unreadable model card", extra={"model_version": metadata.get("version"), "error": repr(exc)})
        return {"missing": "This version's model card could not be read."}
    interval = card.get("interval") or [0.1, 0.9]
    return {
        "statistic": card.get("statistic", "median"),
        "interval": f"{interval[1] - interval[0]:.0%}",
        "bands": [{"name": name, "ranks": band_label(bands.get(name))} for name in BAND_NAMES],
        "decades": [f"{compact_number(low)}–{compact_number(high)}" for low, high in decades],
        "rows": rows,
        "groups": [
            {"marketplace": code, "rows": [row for row in rows if row["marketplace"] == code]} for code in groups
        ],
        "overall": overall,
        "bounds": f"{COVERAGE_BOUNDS[0]:.0%}–{COVERAGE_BOUNDS[1]:.0%}",
    }
