"""Validation of estimation input, with Eve's (Cerberus's) wording for each issue.

More: docs/architecture.md, "estimations/validation.py".
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core import limits
from estimations import fields
from estimations.fields import (
    ACTUAL_FIELDS,
    MAX_ACTUAL_SALES,
    MAX_CATEGORY_LENGTH,
    MAX_RANK,
    MAX_SKU_LENGTH,
    MIN_RANK,
    PERIOD,
)

# A spreadsheet reads a cell starting with one of these as a formula: such a SKU would turn a CSV
# export into an injection, so it is refused at the door.
FORMULA_STARTS = ("=", "+", "-", "@")
# What a client may send, from the field table; the rest it shows is read-only, and so is a write
# answer's _status.
WRITTEN = tuple(field for field in fields.FIELDS if field.written)
WRITABLE = frozenset(fields.INPUT_FIELDS)
READ_ONLY_FIELDS = fields.READ_ONLY_FIELDS | {"_status"}
# Fields an HTML form adds that are not part of the document.
FORM_CONTROL_FIELDS = frozenset({"csrfmiddlewaretoken"})

ISSUE_REQUIRED = "required field"
ISSUE_NO_DEFAULT_CATEGORY = (
    "required field here: the default category '{default}' (DEFAULT_CATEGORY) is not one the active model "
    "serves; send one of {known}"
)
ISSUE_UNKNOWN = "unknown field"
ISSUE_READ_ONLY = "field is read-only"
ISSUE_INTEGER = "must be of integer type"
ISSUE_STRING = "must be of string type"
ISSUE_MIN = f"min value is {MIN_RANK}"
ISSUE_MAX = f"max value is {MAX_RANK}"
ISSUE_EMPTY = "empty values not allowed"
ISSUE_CATEGORY_LENGTH = f"max length is {MAX_CATEGORY_LENGTH}"
ISSUE_UNKNOWN_CATEGORY = "unallowed value '{value}': known categories are {known}"
ISSUE_SKU_LENGTH = f"max length is {MAX_SKU_LENGTH}"
ISSUE_SKU_CHARACTERS = "must be printable text"
ISSUE_SKU_FORMULA = "must not start with = + - or @ (spreadsheets would run it as a formula)"
ISSUE_ACTUAL_SALES = f"must be a whole number from 0 to {MAX_ACTUAL_SALES:,}"
ISSUE_PERIOD = "must be a month as YYYY-MM, e.g. 2026-10"
ISSUE_PERIOD_FUTURE = "must be a month that has begun: {latest} at the latest"
ISSUE_ACTUALS_NULL = "null only together: send both as null to remove the actuals"
ISSUE_ACTUALS_TOGETHER = "required with {other}: record the units sold and the month together"
ISSUE_NOT_OBJECT = "each estimation must be a JSON object"
ISSUE_DOCUMENT = "_document"


@dataclass(frozen=True)
class Rules:
    """What the validator needs to know beyond the schema."""

    categories: Collection[str]
    default_category: str


def validate(
    payload: Any,
    rules: Rules,
    *,
    partial: bool = False,
    from_form: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (clean fields, issues). Issues map a field name to Eve's message for it.

    ``partial`` (PATCH) checks only the fields given and applies no default. ``from_form`` accepts
    the strings an HTML form (or a CSV row) sends for numbers (an empty category is refused there
    too: the form's select always sends one, the default first). A null ``sku`` or actual comes back
    as None: the field is to be removed.
    """
    if not isinstance(payload, Mapping):
        return {}, {ISSUE_DOCUMENT: ISSUE_NOT_OBJECT}

    clean: dict[str, Any] = {}
    issues: dict[str, str] = {}
    for key in payload:
        if key in WRITABLE:
            continue
        if from_form and key in FORM_CONTROL_FIELDS:
            continue
        issues[str(key)[:64]] = ISSUE_READ_ONLY if key in READ_ONLY_FIELDS else ISSUE_UNKNOWN

    for field in WRITTEN:
        name = field.name
        if name not in payload:
            if partial:
                continue
            if name == "category":
                _default_category(rules, clean, issues)
            elif field.sent and field.sent.required:
                issues[name] = ISSUE_REQUIRED
            continue
        value = payload[name]
        if from_form and field.kind == "integer":
            value = _form_number(value)
        problem = None if value is None and field.sent and field.sent.nullable else CHECKS[name](value, rules)
        if problem:
            issues[name] = problem
        else:
            clean[name] = value
    for name, other in (ACTUAL_FIELDS, ACTUAL_FIELDS[::-1]):
        if name in payload and other not in payload:
            issues.setdefault(other, ISSUE_ACTUALS_TOGETHER.format(other=name))
    if (
        "actual_sales" in clean
        and "actual_period" in clean
        and (clean["actual_sales"] is None) != (clean["actual_period"] is None)
    ):
        issues["actual_period" if clean["actual_period"] is None else "actual_sales"] = ISSUE_ACTUALS_NULL
    return clean, issues


def _default_category(rules: Rules, clean: dict[str, Any], issues: dict[str, str]) -> None:
    """A POST or PUT without a category: DEFAULT_CATEGORY, if the current model knows it."""
    if rules.default_category in rules.categories:
        clean["category"] = rules.default_category
    else:  # a DEFAULT_CATEGORY the current model does not know cannot stand in
        issues["category"] = ISSUE_NO_DEFAULT_CATEGORY.format(
            default=rules.default_category, known=", ".join(sorted(rules.categories))
        )


def _text_issue(value: Any, max_length: int, too_long: str) -> str | None:
    """A string, not empty, at most ``max_length`` characters; else what is wrong."""
    if not isinstance(value, str):
        return ISSUE_STRING
    if not value:
        return ISSUE_EMPTY
    if len(value) > max_length:
        return too_long
    return None


def _sku_issue(sku: Any) -> str | None:
    if problem := _text_issue(sku, MAX_SKU_LENGTH, ISSUE_SKU_LENGTH):
        return problem
    if not sku.isprintable():
        return ISSUE_SKU_CHARACTERS
    if sku.startswith(FORMULA_STARTS):
        return ISSUE_SKU_FORMULA
    return None


def _actual_sales_issue(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ACTUAL_SALES:
        return ISSUE_ACTUAL_SALES
    return None


def _period_issue(value: Any) -> str | None:
    if not isinstance(value, str) or not PERIOD.fullmatch(value):
        return ISSUE_PERIOD
    latest = latest_period()
    if value > latest:  # YYYY-MM strings sort as the months do
        return ISSUE_PERIOD_FUTURE.format(latest=latest)
    return None


def latest_period() -> str:
    """The latest month actuals can be for: the current one somewhere on Earth (UTC+14 is the furthest)."""
    return (datetime.now(UTC) + timedelta(hours=14)).strftime("%Y-%m")


def _form_number(value: Any) -> Any:
    """A whole number a form or CSV row sent as text (ASCII digits), as an int; anything else as it came.

    Digits too many for 64 bits come back as limits.TOO_LARGE, over every field's maximum."""
    if isinstance(value, str):
        number = limits.whole_number(value)
        if number is not None:
            return number
    return value


def _rank_issue(rank: Any) -> str | None:
    # bool is an int subclass in Python; JSON true is not a rank.
    if not isinstance(rank, int) or isinstance(rank, bool):
        return ISSUE_INTEGER
    if rank < MIN_RANK:
        return ISSUE_MIN
    if rank > MAX_RANK:
        return ISSUE_MAX
    return None


def category_issue(category: Any, known: Collection[str]) -> str | None:
    if problem := _text_issue(category, MAX_CATEGORY_LENGTH, ISSUE_CATEGORY_LENGTH):
        return problem
    if category not in known:
        shown = category if category.isprintable() else category.encode("unicode_escape").decode()
        return ISSUE_UNKNOWN_CATEGORY.format(value=shown, known=", ".join(sorted(known)))
    return None


# Each writable field's check of a value given (not null where null removes it): its issue, or None.
# tests/estimations/test_fields.py keeps these the field table's writable fields.
CHECKS: dict[str, Callable[[Any, Rules], str | None]] = {
    "bestseller_rank": lambda value, rules: _rank_issue(value),
    "category": lambda value, rules: category_issue(value, rules.categories),
    "sku": lambda value, rules: _sku_issue(value),
    "actual_sales": lambda value, rules: _actual_sales_issue(value),
    "actual_period": lambda value, rules: _period_issue(value),
}
