"""Validation of estimation input, with Eve's (Cerberus's) wording for each issue.

One plain function rather than a DRF serializer per item: a bulk insert validates up to
BULK_MAX_ITEMS documents per request, and this costs microseconds per document. The serializers in
``estimations.serializers`` describe the same schema for OpenAPI and the browsable API's form; a test
keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

MIN_RANK = 1
MAX_RANK = 100_000_000  # Amazon's largest departments rank a few tens of millions of products
MAX_CATEGORY_LENGTH = 64

INPUT_FIELDS = ("bestseller_rank", "category")
READ_ONLY_FIELDS = frozenset(
    {
        "estimated_sales",
        "estimated_sales_low",
        "estimated_sales_high",
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
ISSUE_UNKNOWN = "unknown field"
ISSUE_READ_ONLY = "field is read-only"
ISSUE_INTEGER = "must be of integer type"
ISSUE_STRING = "must be of string type"
ISSUE_MIN = f"min value is {MIN_RANK}"
ISSUE_MAX = f"max value is {MAX_RANK}"
ISSUE_EMPTY = "empty values not allowed"
ISSUE_CATEGORY_LENGTH = f"max length is {MAX_CATEGORY_LENGTH}"
ISSUE_UNKNOWN_CATEGORY = "unallowed value '{value}': known categories are {known}"
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
    the strings an HTML form sends for numbers (an empty category is refused there too: the form's
    select always sends one, the default first).
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
        rank = payload["bestseller_rank"]
        if from_form and isinstance(rank, str) and rank.strip().isdigit():
            rank = int(rank.strip())
        problem = _rank_issue(rank)
        if problem:
            issues["bestseller_rank"] = problem
        else:
            clean["bestseller_rank"] = rank
    elif not partial:
        issues["bestseller_rank"] = ISSUE_REQUIRED

    category = payload.get("category")
    if "category" in payload:
        problem = _category_issue(category, rules.categories)
        if problem:
            issues["category"] = problem
        else:
            clean["category"] = category
    elif not partial:
        if rules.default_category in rules.categories:
            clean["category"] = rules.default_category
        else:  # a DEFAULT_CATEGORY the current model does not know cannot stand in
            issues["category"] = ISSUE_REQUIRED
    return clean, issues


def _rank_issue(rank: Any) -> str | None:
    # bool is an int subclass in Python; JSON true is not a rank.
    if not isinstance(rank, int) or isinstance(rank, bool):
        return ISSUE_INTEGER
    if rank < MIN_RANK:
        return ISSUE_MIN
    if rank > MAX_RANK:
        return ISSUE_MAX
    return None


def _category_issue(category: Any, known: Collection[str]) -> str | None:
    if not isinstance(category, str):
        return ISSUE_STRING
    if not category:
        return ISSUE_EMPTY
    if len(category) > MAX_CATEGORY_LENGTH:
        return ISSUE_CATEGORY_LENGTH
    if category not in known:
        shown = category if category.isprintable() else category.encode("unicode_escape").decode()
        return ISSUE_UNKNOWN_CATEGORY.format(value=shown, known=", ".join(sorted(known)))
    return None
