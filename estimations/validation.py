"""Validation of estimation input, with Eve's (Cerberus's) wording for each issue.

One plain function rather than a DRF serializer per item: a bulk insert validates up to
BULK_MAX_ITEMS documents per request, and this costs microseconds per document. The serializers in
``estimations.serializers`` describe the same schema for OpenAPI and the browsable API's form; a test
keeps the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from core import limits

MIN_RANK = 1
MAX_RANK = 100_000_000  # Amazon's largest departments rank a few tens of millions of products
MAX_CATEGORY_LENGTH = 64
MAX_SKU_LENGTH = 64
MAX_ACTUAL_SALES = 1_000_000_000
# A spreadsheet reads a cell starting with one of these as a formula: such a SKU would turn a CSV
# export into an injection, so it is refused at the door.
FORMULA_STARTS = ("=", "+", "-", "@")
PERIOD = re.compile(r"(19|20)[0-9][0-9]-(0[1-9]|1[0-2])")  # whole value: fullmatch, so no "2026-10\n"

# What the estimate is made from; changing either makes a new estimate.
ESTIMATE_INPUTS = ("bestseller_rank", "category")
# What a client records afterwards (both or neither; null removes them).
ACTUAL_FIELDS = ("actual_sales", "actual_period")
# Everything a client may write; sku and the actuals may be null (absent).
INPUT_FIELDS = (*ESTIMATE_INPUTS, "sku", *ACTUAL_FIELDS)
READ_ONLY_FIELDS = frozenset(
    {
        "estimated_sales",
        "estimated_sales_low",
        "estimated_sales_high",
        "extrapolated",
        "model_version",
        "_id",
        "_created",
        "_updated",
        "_etag",
        "_links",
        "_status",
    }
)
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
        if key in INPUT_FIELDS:
            continue
        if from_form and key in FORM_CONTROL_FIELDS:
            continue
        issues[str(key)[:64]] = ISSUE_READ_ONLY if key in READ_ONLY_FIELDS else ISSUE_UNKNOWN

    if "bestseller_rank" in payload:
        rank = _form_number(payload["bestseller_rank"]) if from_form else payload["bestseller_rank"]
        problem = _rank_issue(rank)
        if problem:
            issues["bestseller_rank"] = problem
        else:
            clean["bestseller_rank"] = rank
    elif not partial:
        issues["bestseller_rank"] = ISSUE_REQUIRED

    category = payload.get("category")
    if "category" in payload:
        problem = category_issue(category, rules.categories)
        if problem:
            issues["category"] = problem
        else:
            clean["category"] = category
    elif not partial:
        if rules.default_category in rules.categories:
            clean["category"] = rules.default_category
        else:  # a DEFAULT_CATEGORY the current model does not know cannot stand in
            issues["category"] = ISSUE_NO_DEFAULT_CATEGORY.format(
                default=rules.default_category, known=", ".join(sorted(rules.categories))
            )

    for name, check in (("sku", _sku_issue), ("actual_sales", _actual_sales_issue), ("actual_period", _period_issue)):
        if name not in payload:
            continue
        value = payload[name]
        if name == "actual_sales" and from_form:
            value = _form_number(value)
        problem = None if value is None else check(value)
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
    return None


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
