"""HTTP conditional requests: ETag, If-Match, If-None-Match, If-Modified-Since (RFC 9110)."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

from core.errors import PreconditionRequired

ANY = None  # If-Match: * (any current version)


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


def _etag_values(header: str) -> list[str]:
    """The entity tags in a header, unquoted; weak tags compare by their opaque part."""
    values = []
    for part in header.split(","):
        part = part.strip()
        if part.startswith("W/"):
            part = part[2:]
        part = part.strip('"')
        if part:
            values.append(part)
    return values


def required_if_match(header: str | None) -> list[str] | None:
    """The etags a write must match; ANY for '*'. 428 when the client sent none (Eve's rule)."""
    if header is None or not header.strip():
        raise PreconditionRequired()
    if header.strip() == "*":
        return ANY
    values = _etag_values(header)
    if not values:
        raise PreconditionRequired()
    return values


def not_modified(*, etag: str, updated: datetime, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """True when a GET can answer 304. If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)."""
    if if_none_match is not None:
        stripped = if_none_match.strip()
        return stripped == "*" or etag in _etag_values(stripped)
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False  # an unparseable date is ignored, as RFC 9110 says
        if since.tzinfo is None:
            return False
        return updated.replace(microsecond=0) <= since
    return False
