"""Validation of estimation input, with Eve's (Cerberus's) wording for each issue.

More: docs/architecture.md, "estimations/validation.py".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core import limits
from estimations import fields, rank_history
from estimations.fields import (
    ACTUAL_FIELDS,
    MAX_ACTUAL_SALES,
    MAX_CATEGORY_LENGTH,
    MAX_MARKETPLACE_LENGTH,
    MAX_PRICE,
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
ISSUE_CATEGORY_NOT_IN_MARKETPLACE = (
    "unallowed value '{value}' in marketplace '{marketplace}': its categories are {known}"
)
ISSUE_UNKNOWN_MARKETPLACE = "unallowed value '{value}': known marketplaces are {known}"
ISSUE_NO_DEFAULT_MARKETPLACE = (
    "required field here: the default marketplace '{default}' (DEFAULT_MARKETPLACE) is not one the active model "
    "serves; send one of {known}"
)
ISSUE_MARKETPLACE_LENGTH = f"max length is {MAX_MARKETPLACE_LENGTH}"
ISSUE_PRICE = f"must be a positive number with at most 2 decimals, up to {MAX_PRICE:,}, e.g. 19.99"
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
    # marketplace -> its categories (the estimator's ``markets``); None: every category is in "us".
    markets: Mapping[str, Collection[str]] | None = None
    default_marketplace: str = "us"

    @property
    def known_markets(self) -> Mapping[str, Collection[str]]:
        return self.markets or {"us": self.categories}


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
            elif name == "marketplace":
                _default_marketplace(rules, clean, issues)
            elif field.sent and field.sent.required and not (field.sent.instead and field.sent.instead in payload):
                issues[name] = ISSUE_REQUIRED
            continue
        value = payload[name]
        if from_form and field.kind in FORM_VALUES:
            value = FORM_VALUES[field.kind](value)
        if value is None and field.sent and field.sent.nullable:
            clean[name] = None
        elif problem := CHECKS[name](value, rules):
            issues[name] = problem
        else:
            clean[name] = CLEAN[name](value) if name in CLEAN else value
    _agree(rules, clean, issues)
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


def _agree(rules: Rules, clean: dict[str, Any], issues: dict[str, str]) -> None:
    """bestseller_rank is rank_history's latest rank; a category is one of its marketplace's."""
    history = clean.get("rank_history")
    if history:
        latest = history[-1]["rank"]
        if "bestseller_rank" in clean and clean["bestseller_rank"] != latest:
            differs = rank_history.ISSUE_RANK_DIFFERS.format(rank=clean["bestseller_rank"], latest=latest)
            issues["bestseller_rank"] = differs
        clean["bestseller_rank"] = latest
    if isinstance(clean.get("category"), str) and isinstance(clean.get("marketplace"), str):
        if problem := market_category_issue(clean["marketplace"], clean["category"], rules):
            issues["category"] = problem


def market_category_issue(marketplace: str, category: str, rules: Rules) -> str | None:
    """Whether the model has a curve for ``category`` in ``marketplace`` (both known on their own)."""
    known = rules.known_markets.get(marketplace)
    if known is None or category in known:
        return None
    if len(rules.known_markets) == 1:
        return category_issue(category, known)
    return ISSUE_CATEGORY_NOT_IN_MARKETPLACE.format(
        value=_printable(category), marketplace=marketplace, known=", ".join(sorted(known))
    )


def _default_marketplace(rules: Rules, clean: dict[str, Any], issues: dict[str, str]) -> None:
    """A POST or PUT without a marketplace: DEFAULT_MARKETPLACE, if the current model has it."""
    if rules.default_marketplace in rules.known_markets:
        clean["marketplace"] = rules.default_marketplace
    else:
        issues["marketplace"] = ISSUE_NO_DEFAULT_MARKETPLACE.format(
            default=rules.default_marketplace, known=", ".join(sorted(rules.known_markets))
        )


def _default_category(rules: Rules, clean: dict[str, Any], issues: dict[str, str]) -> None:
    """A POST or PUT without a category: DEFAULT_CATEGORY, if the current model knows it (in the
    marketplace given, when one is)."""
    marketplace = clean.get("marketplace")
    known = rules.known_markets.get(marketplace, rules.categories) if isinstance(marketplace, str) else rules.categories
    if rules.default_category in known:
        clean["category"] = rules.default_category
    else:  # a DEFAULT_CATEGORY the current model does not know cannot stand in
        issues["category"] = ISSUE_NO_DEFAULT_CATEGORY.format(
            default=rules.default_category, known=", ".join(sorted(known))
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


PRICE_TEXT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")


def _form_price(value: Any) -> Any:
    """A price a form or CSV row sent as a decimal string (19.99), as a float; anything else as it came."""
    if isinstance(value, str) and PRICE_TEXT.fullmatch(value):
        return float(value)
    return value


def _form_history(value: Any) -> Any:
    """rank_history as a form or CSV cell: its JSON text, parsed (text that is not JSON: NOT_JSON)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return NOT_JSON
    return value


NOT_JSON = object()


def _price_issue(price: Any) -> str | None:
    if not isinstance(price, int | float) or isinstance(price, bool):
        return ISSUE_PRICE
    if not 0 < price <= MAX_PRICE:  # compared, not converted: an int of any size, NaN and infinities fail here
        return ISSUE_PRICE
    exponent = Decimal(repr(price)).as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -2:
        return ISSUE_PRICE
    return None


def _history_issue(value: Any) -> str | None:
    return rank_history.ISSUE_NOT_JSON if value is NOT_JSON else rank_history.parse(value)[1]


def _history(value: Any) -> list[dict[str, Any]]:
    return rank_history.parse(value)[0]


def _marketplace_issue(value: Any, rules: Rules) -> str | None:
    if problem := _text_issue(value, MAX_MARKETPLACE_LENGTH, ISSUE_MARKETPLACE_LENGTH):
        return problem
    if value not in rules.known_markets:
        return ISSUE_UNKNOWN_MARKETPLACE.format(value=_printable(value), known=", ".join(sorted(rules.known_markets)))
    return None


def _printable(text: str) -> str:
    return text if text.isprintable() else text.encode("unicode_escape").decode()


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
        return ISSUE_UNKNOWN_CATEGORY.format(value=_printable(category), known=", ".join(sorted(known)))
    return None


# Each writable field's check of a value given (not null where null removes it): its issue, or None.
# tests/estimations/test_fields.py keeps these the field table's writable fields.
CHECKS: dict[str, Callable[[Any, Rules], str | None]] = {
    "bestseller_rank": lambda value, rules: _rank_issue(value),
    "rank_history": lambda value, rules: _history_issue(value),
    "marketplace": _marketplace_issue,
    "category": lambda value, rules: category_issue(value, rules.categories),
    "price": lambda value, rules: _price_issue(value),
    "sku": lambda value, rules: _sku_issue(value),
    "actual_sales": lambda value, rules: _actual_sales_issue(value),
    "actual_period": lambda value, rules: _period_issue(value),
}
# What a valid value is stored as, where that differs from what was sent.
CLEAN: dict[str, Callable[[Any], Any]] = {"rank_history": _history, "price": float}
# How a form's or CSV row's text is read, by the field's kind.
FORM_VALUES: dict[str, Callable[[Any], Any]] = {
    "integer": _form_number,
    "number": _form_price,
    "history": _form_history,
}
