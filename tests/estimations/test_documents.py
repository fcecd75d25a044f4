"""The stored document's helpers: RFC 1123 dates, etags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from estimations.documents import CONTENT_FIELDS, compute_etag, http_date, stamp


@pytest.mark.parametrize("days", range(0, 400, 13))  # every weekday and month, both sides of a year end
@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
def test_http_date_is_rfc_1123_in_gmt(days, zone):
    moment = (datetime(2026, 12, 25, 23, 59, 7, 999_000, tzinfo=UTC) + timedelta(days=days)).astimezone(zone)

    assert http_date(moment) == format_datetime(moment.astimezone(UTC), usegmt=True)


BASE = {
    "bestseller_rank": 10,
    "category": "books",
    "sku": "A-1",
    "estimated_sales": 100,
    "estimated_sales_low": 50,
    "estimated_sales_high": 200,
    "extrapolated": False,
    "model_version": 3,
    "actual_sales": 120,
    "actual_period": "2026-10",
    "rank_history": [{"at": datetime(2026, 11, 1, tzinfo=UTC), "rank": 10}],
    "marketplace": "us",
    "price": 19.99,
    "estimated_daily_sales": 3.285,
    "currency": "USD",
    "estimated_revenue": 1999.0,
    "estimated_revenue_low": 999.5,
    "estimated_revenue_high": 3998.0,
    "rank_history_gaps": [{"from": datetime(2026, 11, 1, tzinfo=UTC), "to": datetime(2026, 11, 4, tzinfo=UTC)}],
}
CHANGED = {
    "bestseller_rank": 11,
    "category": "toys_games",
    "sku": "A-2",
    "estimated_sales": 101,
    "estimated_sales_low": 51,
    "estimated_sales_high": 201,
    "extrapolated": True,
    "model_version": 4,
    "actual_sales": None,
    "actual_period": "2026-11",
    "rank_history": [{"at": datetime(2026, 11, 1, 0, 0, 0, 1000, tzinfo=UTC), "rank": 10}],
    "marketplace": "uk",
    "price": 19.98,
    "estimated_daily_sales": 3.286,
    "currency": "GBP",
    "estimated_revenue": 1998.0,
    "estimated_revenue_low": 999.0,
    "estimated_revenue_high": 3996.0,
    "rank_history_gaps": [],
}


def test_the_changes_cover_every_content_field():
    assert set(CHANGED) == set(BASE) == set(CONTENT_FIELDS)


@pytest.mark.parametrize("field", CONTENT_FIELDS)
def test_the_etag_changes_with_each_content_field(field):
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    document = stamp(BASE, now=now)

    assert compute_etag({**document, field: CHANGED[field]}) != document["_etag"]
    assert compute_etag(dict(document)) == document["_etag"]  # and only with a change


def test_the_etag_changes_with_the_update_time_and_not_with_meta_fields():
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    document = stamp(BASE, now=now)

    assert compute_etag({**document, "_updated": now + timedelta(milliseconds=1)}) != document["_etag"]
    assert compute_etag({**document, "_id": "other", "_created": now - timedelta(days=1)}) == document["_etag"]


def test_a_missing_field_and_a_null_one_differ_from_a_value():
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    without_sku = {field: value for field, value in BASE.items() if field != "sku"}

    assert stamp(without_sku, now=now)["_etag"] != stamp(BASE, now=now)["_etag"]
