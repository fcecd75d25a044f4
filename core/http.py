"""HTTP dates and cache headers: RFC 1123 dates, Eve's CACHE_CONTROL and CACHE_EXPIRES on successful GETs."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from django.conf import settings
from rest_framework.views import APIView


def utc_now() -> datetime:
    """Now, truncated to the millisecond MongoDB stores, so a read-back equals what was written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=256)  # a bulk insert's documents share their dates
def http_date(moment: datetime) -> str:
    """RFC 1123, e.g. 'Thu, 25 Jun 2020 06:42:02 GMT' (as email.utils.format_datetime, 2x faster)."""
    m = moment.astimezone(UTC)
    return (
        f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month - 1]} {m.year:04d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} GMT"
    )


class CacheHeadersMixin(APIView):
    """Eve's CACHE_CONTROL / CACHE_EXPIRES on every successful GET."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method in ("GET", "HEAD") and response.status_code < 400:
            response.setdefault("Cache-Control", settings.CACHE_CONTROL)
            response.setdefault("Expires", http_date(datetime.now(UTC) + timedelta(seconds=settings.CACHE_EXPIRES)))
        return response
