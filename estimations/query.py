"""The list's allow-lists and the parsing of ``where`` and ``projection`` (sort: sorting.py; the
``after`` token: keyset.py; the whole query: list_query.py).

More: docs/architecture.md, "estimations/query.py".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from core import limits
from core.errors import BadQuery
from estimations.fields import BY_NAME, FILTERABLE_FIELDS, PROJECTABLE_FIELDS

MAX_PARAM_LENGTH = limits.MAX_PARAM_LENGTH
MAX_DEPTH = 6
MAX_NODES = 200
MAX_IN_VALUES = 500
MAX_LOGICAL_CLAUSES = 50
MAX_SORT_KEYS = 3

COMPARISON_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})
SET_OPERATORS = frozenset({"$in", "$nin"})
LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor"})
FIELD_OPERATORS = COMPARISON_OPERATORS | SET_OPERATORS | {"$exists", "$not"}


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("takes a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("takes a finite number")
    if isinstance(value, int) and not limits.is_int64(value):
        raise ValueError("takes a number within 64-bit integers (what the database stores)")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("takes a string")
    if len(value) > limits.MAX_STRING_LENGTH:
        raise ValueError(f"takes a string of at most {limits.MAX_STRING_LENGTH} characters")
    if not limits.is_valid_text(value):
        raise ValueError(limits.MSG_BAD_TEXT)
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("takes true or false")
    return value


def _object_id(value: Any) -> ObjectId:
    if isinstance(value, str):
        try:
            return ObjectId(value)
        except InvalidId:
            pass
    raise ValueError("takes a 24-hex-digit id")


def _datetime(value: Any) -> datetime:
    """RFC 1123 (as the API shows dates, Eve's format) or ISO 8601."""
    if isinstance(value, str):
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
        if parsed is not None:
            return limits.to_utc(parsed)
    raise ValueError("takes a date such as 'Thu, 25 Jun 2020 06:42:02 GMT'")


# How a ``where`` value is checked and converted, by the field's kind; which fields a ``where``, a
# ``sort`` and a ``projection`` may name comes from the field table (estimations.fields).
KIND_TYPES: dict[str, Callable[[Any], Any]] = {
    "integer": _number,
    "number": _number,
    "string": _string,
    "boolean": _boolean,
    "id": _object_id,
    "date": _datetime,
}
FIELD_TYPES: dict[str, Callable[[Any], Any]] = {name: KIND_TYPES[BY_NAME[name].kind] for name in FILTERABLE_FIELDS}

# A sort on SORTABLE_FIELDS is accepted only where an index serves it (sort_plans): its key pattern, or its
# exact reverse, so MongoDB reads it in order and never sorts in memory. Reading in order is not free:
# ``page`` skips (page - 1) * max_results index entries, so it is bounded (PAGINATION_MAX_SKIP) and
# ``after`` continues from a position instead (keyset pagination, docs/api.md).
#
# Without a sort: creation order. _created is stamped by the host that took the write, to the millisecond;
# ObjectIds are not ordered within a second across workers and hosts (each has its own counter), so _id
# only breaks ties (a bulk's documents share one _created and have ascending ids). The index "created"
# serves it.
DEFAULT_SORT = (("_created", 1), ("_id", 1))


def _load_json(raw: str, param: str, example: str) -> Any:
    if len(raw) > MAX_PARAM_LENGTH:
        raise BadQuery(param, f"is longer than {MAX_PARAM_LENGTH} characters.")
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise BadQuery(param, "is nested too deeply.") from exc
    except ValueError as exc:
        raise BadQuery(param, f"must be a JSON object, e.g. {example} ({exc}).") from exc
    if not limits.json_text_is_valid(raw, value):
        raise BadQuery(param, limits.MSG_BAD_TEXT + ".")
    return value


# --- where ----------------------------------------------------------------------------------


def parse_where(raw: str | None) -> dict[str, Any]:
    if raw is None or raw.strip() == "":
        return {}
    document = _load_json(raw, "where", '{"category": "books"}')
    if not isinstance(document, dict):
        raise BadQuery("where", 'must be a JSON object, e.g. {"category": "books"}.')
    budget = [MAX_NODES]
    try:
        return _filter(document, depth=0, budget=budget)
    except ValueError as exc:
        raise BadQuery("where", str(exc)) from exc


def _spend(budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"has more than {MAX_NODES} conditions.")


def _filter(document: dict[str, Any], *, depth: int, budget: list[int]) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise ValueError(f"is nested more than {MAX_DEPTH} levels deep.")
    result: dict[str, Any] = {}
    for key, value in document.items():
        _spend(budget)
        if key in LOGICAL_OPERATORS:
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LOGICAL_CLAUSES:
                raise ValueError(f"{key} takes a list of 1 to {MAX_LOGICAL_CLAUSES} conditions.")
            clauses = []
            for clause in value:
                if not isinstance(clause, dict):
                    raise ValueError(f"each condition in {key} must be an object.")
                clauses.append(_filter(clause, depth=depth + 1, budget=budget))
            result[key] = clauses
        elif key.startswith("$"):
            raise ValueError(_operator_refused(key))
        elif key in FIELD_TYPES:
            result[key] = _condition(key, value, depth=depth + 1, budget=budget)
        else:
            raise ValueError(f"unknown field '{key[:64]}'; filterable fields are {', '.join(FIELD_TYPES)}.")
    return result


def _operator_refused(operator: str) -> str:
    allowed = sorted(LOGICAL_OPERATORS | FIELD_OPERATORS)
    return f"operator '{operator[:32]}' is not allowed; allowed operators are {', '.join(allowed)}."


def _condition(field: str, value: Any, *, depth: int, budget: list[int]) -> Any:
    convert = FIELD_TYPES[field]
    if not isinstance(value, dict):
        return _typed(field, convert, value)
    if depth > MAX_DEPTH:
        raise ValueError(f"is nested more than {MAX_DEPTH} levels deep.")
    if not value:
        raise ValueError(f"the condition on '{field}' is empty.")
    condition: dict[str, Any] = {}
    for operator, operand in value.items():
        _spend(budget)
        if operator in COMPARISON_OPERATORS:
            condition[operator] = _typed(field, convert, operand)
        elif operator in SET_OPERATORS:
            if not isinstance(operand, list) or len(operand) > MAX_IN_VALUES:
                raise ValueError(f"{operator} on '{field}' takes a list of at most {MAX_IN_VALUES} values.")
            condition[operator] = [_typed(field, convert, item) for item in operand]
        elif operator == "$exists":
            if not isinstance(operand, bool):
                raise ValueError(f"$exists on '{field}' takes true or false.")
            condition[operator] = operand
        elif operator == "$not":
            if not isinstance(operand, dict):
                raise ValueError(f"$not on '{field}' takes an operator object, e.g. {{\"$gt\": 5}}.")
            condition[operator] = _condition(field, operand, depth=depth + 1, budget=budget)
        else:
            raise ValueError(
                _operator_refused(operator)
                if operator.startswith("$")
                else f"the condition on '{field}' must use operators such as $gt, not '{operator[:32]}'."
            )
    return condition


def _typed(field: str, convert: Callable[[Any], Any], value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ValueError(f"'{field}' cannot be compared with an object or a list here.")
    try:
        return convert(value)
    except ValueError as exc:
        raise ValueError(f"'{field}' {exc}.") from exc


# --- projection -----------------------------------------------------------------------------


def parse_projection(raw: str | None) -> dict[str, int] | None:
    """``{"field": 1}`` keeps only the named fields, ``{"field": 0}`` drops them. Meta fields stay."""
    if raw is None or raw.strip() == "":
        return None
    document = _load_json(raw, "projection", '{"estimated_sales": 1}')
    if not isinstance(document, dict) or not document:
        raise BadQuery("projection", 'must be a non-empty JSON object, e.g. {"estimated_sales": 1}.')
    projection: dict[str, int] = {}
    for field, flag in document.items():
        if field not in PROJECTABLE_FIELDS:
            raise BadQuery(
                "projection",
                f"cannot project '{str(field)[:64]}'; fields are {', '.join(PROJECTABLE_FIELDS)}.",
            )
        if isinstance(flag, bool):
            flag = int(flag)
        if flag not in (0, 1) or not isinstance(flag, int):
            raise BadQuery("projection", f"'{field}' takes 1 (include) or 0 (exclude).")
        projection[field] = flag
    if len(set(projection.values())) > 1:
        raise BadQuery("projection", "cannot mix inclusion (1) and exclusion (0).")
    return projection
