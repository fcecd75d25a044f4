"""Page parameters: ``page`` and ``max_results`` as whole numbers from 1, refused with a 400 otherwise."""

from __future__ import annotations

from core import limits
from core.errors import BadQuery


def positive_int(raw: str | None, param: str, *, default: int) -> int:
    if raw is None:
        return default
    number = limits.whole_number(raw)
    if number is None or not 1 <= number <= 999_999_999:
        raise BadQuery(param, "must be a whole number (digits 0-9) from 1 to 999999999.")
    return number
