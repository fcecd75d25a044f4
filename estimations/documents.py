"""The stored document and what the API shows of it.

Stored: ``_id`` (ObjectId), the input fields (rank, category, optional ``sku``), the estimate
(``estimated_sales`` with its interval, ``extrapolated``, ``model_version``), the actuals a client
recorded (``actual_sales``, ``actual_period``), ``_created`` and ``_updated`` (BSON dates, millisecond
precision as MongoDB keeps them), ``_etag``, and ``_expires_from`` (the date retention counts from;
absent on documents that are kept, see ``with_retention``).
Shown: the same with ``_id`` as a string, dates as RFC 1123 strings (Eve's DATE_FORMAT) and
Eve's ``_links``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from core.http import http_date, utc_now
from estimations.fields import CONTENT_FIELDS

RESOURCE = "estimations"
ITEM_TITLE = "estimations"  # the tutorial's item_title
# The ESTIMATION_TTL_DAYS index counts from this date; documents without it never expire.
EXPIRES_FROM = "_expires_from"


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
            shown[field] = document[field]
    shown["_created"] = http_date(document["_created"])
    shown["_updated"] = http_date(document["_updated"])
    shown["_etag"] = document["_etag"]
    shown["_links"] = item_links(document["_id"]) if links == "item" else {"self": self_link(document["_id"])}
    return shown
