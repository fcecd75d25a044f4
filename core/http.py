"""HTTP dates and cache headers: RFC 1123 dates, Eve's CACHE_CONTROL and CACHE_EXPIRES on successful GETs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from django.conf import settings
from rest_framework.views import APIView


def utc_now() -> datetime:
    """Now, truncated to the millisecond MongoDB stores, so a read-back equals what was written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def http_date(moment: datetime) -> str:
    """RFC 1123, e.g. 'Thu, 25 Jun 2020 06:42:02 GMT' (Eve's DATE_FORMAT)."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


class CacheHeadersMixin(APIView):
    """Eve's CACHE_CONTROL / CACHE_EXPIRES on every successful GET."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method in ("GET", "HEAD") and response.status_code < 400:
            response.setdefault("Cache-Control", settings.CACHE_CONTROL)
            response.setdefault("Expires", http_date(datetime.now(UTC) + timedelta(seconds=settings.CACHE_EXPIRES)))
        return response
