"""The stored document and what the API shows of it.

More: docs/architecture.md, "estimations/documents.py".
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.conf import settings

from core.http import http_date, utc_now
from estimations import rank_history
from estimations.fields import BY_NAME, CONTENT_FIELDS, ESTIMATE_FIELDS
from ml.markets import CURRENCIES, DEFAULT_MARKETPLACE
from ml.predictor import Estimate

RESOURCE = "estimations"
ITEM_TITLE = "estimations"  # the tutorial's item_title
# The ESTIMATION_TTL_DAYS index counts from this date; documents without it never expire.
EXPIRES_FROM = "_expires_from"
# Estimations stored before there were marketplaces are in this one (store.backfill_marketplace).
LEGACY_MARKETPLACE = DEFAULT_MARKETPLACE
# The revenue fields, each from the units field it multiplies by price.
REVENUE_OF = {
    "estimated_revenue": "estimated_sales",
    "estimated_revenue_low": "estimated_sales_low",
    "estimated_revenue_high": "estimated_sales_high",
}
CENT = Decimal("0.01")
LISTS = tuple(field.name for field in BY_NAME.values() if field.kind in ("history", "gaps"))


def compute_etag(document: dict[str, Any]) -> str:
    """A hash of the document's content and its update time (as Eve hashes the stored document)."""
    content = repr([document.get(field) for field in CONTENT_FIELDS]) + document["_updated"].isoformat()
    return hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest()


def stamp(fields: dict[str, Any], *, new: bool = True, now: datetime | None = None) -> dict[str, Any]:
    """The fields with a fresh ``_updated`` (``now``, by default this moment) and ``_etag``, and
    ``_created`` if ``new``."""
    now = now or utc_now()
    document = {**fields, "_updated": now}
    if new:
        document["_created"] = now
    document["_etag"] = compute_etag(document)
    return document


def with_retention(document: dict[str, Any], *, keep_actuals: bool) -> dict[str, Any]:
    """Mark ``document`` to expire with the TTL index, unless it has actuals and those are kept."""
    if keep_actuals and "actual_sales" in document:
        document.pop(EXPIRES_FROM, None)
    else:
        document[EXPIRES_FROM] = document["_created"]
    return document


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """The input fields with a value (None: the field is absent, or removed)."""
    return {name: value for name, value in fields.items() if value is not None}


def _with_estimate(
    fields: dict[str, Any], estimate: Estimate, version: int, gaps: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The input fields given, with the estimate made from them by model ``version`` (and the gaps of
    its rank_history, if any) and the revenue at the price given."""
    content = _given(fields)
    content["estimated_sales"] = estimate.sales
    content["estimated_sales_low"] = estimate.low
    content["estimated_sales_high"] = estimate.high
    # A rank history's answer carries its mean daily rate (to 4 significant digits); a rank's answer stays
    # as it was before rank histories, so clients that send only a rank see only the marketplace added.
    if estimate.daily is not None and "rank_history" in content:
        content["estimated_daily_sales"] = float(f"{float(estimate.daily):.4g}")
    if gaps:
        content["rank_history_gaps"] = gaps
    content["extrapolated"] = bool(estimate.extrapolated)
    content["model_version"] = version
    return with_revenue(content)


def with_revenue(content: dict[str, Any]) -> dict[str, Any]:
    """``content`` with its currency and revenue from its price and units (none without a price)."""
    price = content.get("price")
    if price is None:
        for name in ("currency", *REVENUE_OF):
            content.pop(name, None)
        return content
    content["currency"] = CURRENCIES[content.get("marketplace", LEGACY_MARKETPLACE)]
    cents = Decimal(repr(float(price)))
    for revenue, units in REVENUE_OF.items():
        if units in content:
            content[revenue] = float((cents * content[units]).quantize(CENT, rounding=ROUND_HALF_EVEN))
    return content


def new_document(
    fields: dict[str, Any],
    estimate: Estimate,
    version: int,
    *,
    now: datetime | None = None,
    gaps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a POST stores: the validated input and its estimate (and its history's ``gaps``), stamped
    (``now``: one moment for a whole bulk insert, as Eve stamps it) and marked for retention."""
    document = stamp(_with_estimate(fields, estimate, version, gaps), now=now)
    return with_retention(document, keep_actuals=settings.ESTIMATION_TTL_KEEP_ACTUALS)


def replacement(
    current: dict[str, Any],
    fields: dict[str, Any],
    estimate: Estimate | None,
    version: int,
    gaps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a PUT or PATCH stores in place of ``current``: the new input with a new ``estimate``, or with
    ``current``'s estimate (None: the inputs stay; the revenue follows the price), under the same ``_id``
    and ``_created``."""
    if estimate is None:
        kept = {name: current[name] for name in ESTIMATE_FIELDS if name in current}
        content = with_revenue({**_given(fields), **kept})
    else:
        content = _with_estimate(fields, estimate, version, gaps)
    document = {"_id": current["_id"], "_created": current["_created"], **stamp(content, new=False)}
    return with_retention(document, keep_actuals=settings.ESTIMATION_TTL_KEEP_ACTUALS)


def item_href(object_id: Any) -> str:
    return f"{RESOURCE}/{object_id}"


def self_link(object_id: Any) -> dict[str, str]:
    return {"title": ITEM_TITLE, "href": item_href(object_id)}


def item_links(object_id: Any) -> dict[str, dict[str, str]]:
    return {
        "self": self_link(object_id),
        "parent": {"title": "home", "href": "/"},
        "collection": {"title": RESOURCE, "href": RESOURCE},
    }


def to_resource(document: dict[str, Any], *, links: str = "self") -> dict[str, Any]:
    """What the API shows. ``links``: 'self' (in lists and write answers) or 'item' (GET one)."""
    shown: dict[str, Any] = {"_id": str(document["_id"])}
    for field in CONTENT_FIELDS:
        if field in document:
            shown[field] = rank_history.shown(document[field]) if field in LISTS else document[field]
    shown["_created"] = http_date(document["_created"])
    shown["_updated"] = http_date(document["_updated"])
    shown["_etag"] = document["_etag"]
    shown["_links"] = item_links(document["_id"]) if links == "item" else {"self": self_link(document["_id"])}
    return shown
