"""What client input may be: the number, text, date and size limits every parser checks.

More: docs/architecture.md, "core/limits.py".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Any whole number of at most 18 digits fits in 64 bits; one of more stands for "too large" (TOO_LARGE)
# without ever being converted, whatever its length.
MAX_DIGITS = 18
TOO_LARGE = INT64_MAX + 1
_ASCII_DIGITS = re.compile(r"[0-9]+")
_TOKEN = re.compile(r"[A-Za-z0-9._:-]+")  # an Idempotency-Key or X-Request-ID
# A JSON text can only carry a lone surrogate as an escape (UTF-8 decoding refuses encoded ones).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

MAX_PARAM_LENGTH = 4096  # a query parameter holding JSON (where, projection)
MAX_STRING_LENGTH = 256  # a string compared with a field in where

MSG_BAD_TEXT = "holds text that is not valid Unicode (a lone surrogate such as \\ud800)"


def body_limit() -> int:
    """The most bytes a request body may have (MAX_BODY_BYTES); 413 beyond."""
    return int(settings.MAX_BODY_BYTES)


def form_field_limit() -> int:
    """The most fields a form may have (Django's DATA_UPLOAD_MAX_NUMBER_FIELDS); 400 beyond."""
    return int(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS or 1000)


def is_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def whole_number(text: str) -> int | None:
    """The value of ``text`` if it is ASCII digits (surrounding spaces allowed), else None.

    More than MAX_DIGITS significant digits give TOO_LARGE, which every range check refuses: the number is
    never converted, so no length of digits reaches Python's int-string limit.
    """
    text = text.strip()
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    significant = text.lstrip("0") or "0"
    return TOO_LARGE if len(significant) > MAX_DIGITS else int(significant)


def is_token(value: str, max_length: int) -> bool:
    """A header token: 1 to ``max_length`` letters, digits and . _ : - (the whole value: no final newline)."""
    return len(value) <= max_length and _TOKEN.fullmatch(value) is not None


def is_valid_text(text: str) -> bool:
    """True when ``text`` can be encoded as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_text_is_valid(raw: str, value: Any) -> bool:
    """Whether every string and key of ``value``, parsed from the JSON text ``raw``, is valid text.

    Only a text with a surrogate escape can hold a lone surrogate, so most bodies are not walked.
    """
    return _SURROGATE_ESCAPE.search(raw) is None or _all_valid(value)


def _all_valid(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not is_valid_text(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (naive: taken as UTC); ValueError when UTC would fall outside years 1 to 9999."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("takes a date from year 1 to 9999 (in UTC)") from exc
