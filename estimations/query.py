"""Parsing of the collection's query parameters: where, sort, projection, max_results, page.

Eve passes ``where`` to MongoDB almost as given. Here it is rebuilt from an allow-list: only
comparison, set and logical operators on known fields, values of each field's type, bounded in
depth and size. ``$where``, ``$function``, ``$expr``, ``$accumulator``, ``$regex`` and every other
operator answer 400, so no client can make the database run code or scan without bound.
"""

from __future__ import annotations

import ast
import base64
import binascii
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from core import limits
from core.errors import BadQuery
from core.pagination import positive_int
from estimations.fields import BY_NAME, FILTERABLE_FIELDS, META_FIELDS, PROJECTABLE_FIELDS, SORTABLE_FIELDS

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


@dataclass(frozen=True)
class ListQuery:
    filter: dict[str, Any]
    sort: list[tuple[str, int]]
    projection: dict[str, int] | None
    page: int
    max_results: int
    # With ``after``: the sort-key values of the item the page continues after (keyset pagination).
    after: tuple[Any, ...] | None = None

    @property
    def skip(self) -> int:
        return 0 if self.after is not None else (self.page - 1) * self.max_results

    @property
    def range_filter(self) -> dict[str, Any]:
        """The client's ``where``, and with ``after`` only what comes after that item in the sort."""
        if self.after is None:
            return self.filter
        return with_keyset(self.filter, self.sort, self.after)

    def fetched_projection(self) -> dict[str, int] | None:
        """The projection to read with: the client's, keeping the sort keys (the ``after`` token needs
        them); ``shown`` then takes off what the client did not ask for."""
        if self.projection is None:
            return None
        keys = {field for field, _ in self.sort}
        if 1 in self.projection.values():
            return {**self.projection, **dict.fromkeys(keys - self.projection.keys(), 1)}
        kept = {field: flag for field, flag in self.projection.items() if field not in keys}
        return kept or None

    def shown(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` (read with fetched_projection) as the client's projection shows it."""
        if self.projection is None:
            return document
        if 1 in self.projection.values():
            return {key: value for key, value in document.items() if key in self.projection or key in META_FIELDS}
        return {key: value for key, value in document.items() if key not in self.projection}


MSG_PAGE_TOO_DEEP = (
    "page {page} with max_results {size} skips {skip} estimations, more than the {limit} a page may skip "
    "(PAGINATION_MAX_SKIP): follow _links.after (or _links.next) from a page before, which continues after "
    "its last item at any depth."
)


MSG_AFTER_WITH_PAGE = "cannot be combined with page: after continues from an item, page counts from the start."


def parse_list_query(params: Any, *, default_max: int, limit: int, max_skip: int | None = None) -> ListQuery:
    sort = parse_sort(params.get("sort"))
    max_results = min(positive_int(params.get("max_results"), "max_results", default=default_max), limit)
    raw_after = params.get("after")
    after: tuple[Any, ...] | None = None
    if raw_after is not None:
        if params.get("page") is not None:
            raise BadQuery("after", MSG_AFTER_WITH_PAGE)
        after, page = parse_after(raw_after, sort)
    else:
        page = positive_int(params.get("page"), "page", default=1)
        skip = (page - 1) * max_results
        if max_skip is not None and skip > max_skip:
            raise BadQuery("page", MSG_PAGE_TOO_DEEP.format(page=page, size=max_results, skip=skip, limit=max_skip))
    return ListQuery(
        filter=parse_where(params.get("where")),
        sort=sort,
        projection=parse_projection(params.get("projection")),
        page=page,
        max_results=max_results,
        after=after,
    )


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


# --- sort -----------------------------------------------------------------------------------


def parse_sort(raw: str | None) -> list[tuple[str, int]]:
    """Eve's ``[("field", -1)]`` form, or ``-field,other``. A tiebreaker on _id keeps pages stable.
    Without one, DEFAULT_SORT."""
    if raw is None or raw.strip() == "":
        return list(DEFAULT_SORT)
    if len(raw) > 512:
        raise BadQuery("sort", "is too long.")
    keys = _sort_literal(raw) if raw.lstrip().startswith("[") else _sort_fields(raw)
    if not 1 <= len(keys) <= MAX_SORT_KEYS:
        raise BadQuery("sort", f"takes 1 to {MAX_SORT_KEYS} fields.")
    seen: set[str] = set()
    for field, _direction in keys:
        if field not in SORTABLE_FIELDS:
            raise BadQuery("sort", f"cannot sort on '{field[:64]}'; sortable fields are {', '.join(SORTABLE_FIELDS)}.")
        if field in seen:
            raise BadQuery("sort", f"names '{field}' twice.")
        seen.add(field)
    if "_id" in seen:
        if is_served(keys):
            return keys
    else:
        # The _id tiebreaker takes the direction that makes the sort an index's key pattern or its reverse.
        last = keys[-1][1]
        for direction in (last, -last):
            candidate = [*keys, ("_id", direction)]
            if is_served(candidate):
                return candidate
    raise BadQuery("sort", _not_served(keys))


@functools.cache
def sort_plans() -> tuple[tuple[tuple[str, int], ...], ...]:
    """The key patterns of the indexes that serve a sort over the whole collection: each of
    estimations.store.INDEXES on sortable fields that ends in _id (the tiebreaker) and is neither
    partial nor sparse (those hold only some documents), and _id's own index."""
    from estimations.store import INDEXES  # estimations.store imports this module

    plans: list[tuple[tuple[str, int], ...]] = [(("_id", 1),)]
    for index in INDEXES:
        document = index.document
        if "partialFilterExpression" in document or document.get("sparse"):
            continue
        keys = tuple((field, int(direction)) for field, direction in document["key"].items())
        if keys[-1][0] == "_id" and all(field in SORTABLE_FIELDS for field, _ in keys):
            plans.append(keys)
    return tuple(plans)


def reverse(keys: list[tuple[str, int]] | tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    return tuple((field, -direction) for field, direction in keys)


def is_served(keys: list[tuple[str, int]]) -> bool:
    """Whether an index reads ``keys`` in order: its key pattern is ``keys`` or their exact reverse."""
    plans = sort_plans()
    return tuple(keys) in plans or reverse(keys) in plans


def sort_text(keys: list[tuple[str, int]] | tuple[tuple[str, int], ...]) -> str:
    """``-bestseller_rank,_id``: the comma form of a sort."""
    return ",".join(("-" if direction < 0 else "") + field for field, direction in keys)


def sortable_combinations() -> list[str]:
    """What a client may send as ``sort``, from the index table: each plan without its _id tiebreaker."""
    shown = []
    for plan in sort_plans():
        keys = plan[:-1] if len(plan) > 1 else plan
        shown.append(sort_text(keys))
    return shown


def _not_served(keys: list[tuple[str, int]]) -> str:
    mixed = next((plan[:-1] for plan in sort_plans() if len({d for _, d in plan[:-1]}) > 1), None)
    example = f" (e.g. {sort_text(reverse(mixed))})" if mixed else ""
    return (
        f"no index serves the order {sort_text(keys)}, so the database would sort in memory. The sortable "
        f"combinations are {'; '.join(sortable_combinations())}, each also with every direction reversed{example}; "
        "_id is added to break ties."
    )


def _sort_literal(raw: str) -> list[tuple[str, int]]:
    example = 'e.g. [("bestseller_rank", -1)]'
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        raise BadQuery("sort", f"is not a list of (field, direction) pairs, {example}.") from exc
    if not isinstance(value, list):
        raise BadQuery("sort", f"must be a list of (field, direction) pairs, {example}.")
    keys = []
    for pair in value:
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not limits.is_valid_text(pair[0])
            or type(pair[1]) is not int  # not True, 1.0 or 1+0j, which all equal 1
            or pair[1] not in (1, -1)
        ):
            raise BadQuery("sort", f"each entry must be a (field, 1 or -1) pair, {example}.")
        keys.append((pair[0], pair[1]))
    return keys


def _sort_fields(raw: str) -> list[tuple[str, int]]:
    keys = []
    for part in raw.split(","):
        part = part.strip()
        direction = -1 if part.startswith("-") else 1
        field = part[1:] if direction < 0 else part
        if field.startswith("-"):
            raise BadQuery(
                "sort",
                f"'{part[:40]}' has more than one '-': one makes a field descending, e.g. sort=-bestseller_rank.",
            )
        if not field:
            raise BadQuery("sort", "has an empty field name, e.g. sort=-bestseller_rank,category.")
        keys.append((field, direction))
    return keys


# --- after (keyset pagination) ------------------------------------------------------------
#
# A token names an item's position in a sort: the sort (comma form), the item's value of each sort key
# (_id last), and the number of the page it leads to (for _meta). It is base64url JSON, not signed: it
# holds nothing a client could not send as a ``where`` (the values are the item's own, shown to it),
# any host can read it whatever its SECRET_KEY, and every part is checked as strictly as a ``where``.

AFTER_VERSION = 1
MAX_AFTER_PAGE = 10**15
MSG_AFTER_MALFORMED = (
    "is not a token this service made: send the href of _links.after (or _links.next) as it is, "
    "or start again from the first page."
)


def encode_after(sort: list[tuple[str, int]], document: dict[str, Any], page: int) -> str:
    """The token for continuing after ``document`` (read with at least the sort keys) in ``sort``."""
    values = [_token_value(document.get(field)) for field, _ in sort]
    payload = {"v": AFTER_VERSION, "s": sort_text(sort), "k": values, "p": page}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _token_value(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if isinstance(value, datetime):
        return {"$date": int(limits.to_utc(value).timestamp() * 1000)}
    return value


def parse_after(raw: str, sort: list[tuple[str, int]]) -> tuple[tuple[Any, ...], int]:
    """The sort-key values and the page number an ``after`` token carries, checked against ``sort``."""
    if not raw or len(raw) > MAX_PARAM_LENGTH or not raw.isascii():
        raise BadQuery("after", MSG_AFTER_MALFORMED)
    try:
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise BadQuery("after", MSG_AFTER_MALFORMED) from exc
    if (
        not isinstance(payload, dict)
        or set(payload) != {"v", "s", "k", "p"}
        or payload["v"] != AFTER_VERSION
        or not isinstance(payload["s"], str)
        or not isinstance(payload["k"], list)
        or type(payload["p"]) is not int
        or not 1 <= payload["p"] <= MAX_AFTER_PAGE
    ):
        raise BadQuery("after", MSG_AFTER_MALFORMED)
    if payload["s"] != sort_text(sort):
        raise BadQuery(
            "after",
            f"was made for sort={payload['s'][:100]}, not sort={sort_text(sort)}: send it with the sort it was "
            "made for (the href of _links.after keeps it), or start again from the first page of this sort.",
        )
    if len(payload["k"]) != len(sort):
        raise BadQuery("after", MSG_AFTER_MALFORMED)
    try:
        values = tuple(_key_value(field, value) for (field, _), value in zip(sort, payload["k"], strict=True))
    except (ValueError, TypeError, OverflowError, OSError) as exc:  # OSError: a date past the platform's range
        raise BadQuery("after", MSG_AFTER_MALFORMED) from exc
    return values, payload["p"]


def _key_value(field: str, value: Any) -> Any:
    if field == "_id":
        if not isinstance(value, dict) or set(value) != {"$oid"}:
            raise ValueError("an id")
        return _object_id(value["$oid"])
    if value is None:
        return None  # a document without the field (sorted as null, as MongoDB does)
    if field in ("_created", "_updated"):
        if not isinstance(value, dict) or set(value) != {"$date"} or type(value["$date"]) is not int:
            raise ValueError("a date")
        return datetime.fromtimestamp(value["$date"] / 1000, UTC)
    if isinstance(value, dict | list):
        raise ValueError("a value")
    return FIELD_TYPES[field](value)


def with_keyset(where: dict[str, Any], sort: list[tuple[str, int]], values: tuple[Any, ...]) -> dict[str, Any]:
    """``where`` and: after ``values`` in ``sort`` (which ends in _id, so the order is total).

    (k1 > v1) or (k1 = v1 and k2 > v2) or ... with < for a descending key; null (or missing) sorts
    before every value, as in MongoDB. A range on the first key leads, so the sort's index bounds the scan.
    """
    clauses: list[dict[str, Any]] = []
    for index, (field, direction) in enumerate(sort):
        equal = {name: value for (name, _), value in zip(sort[:index], values[:index], strict=True)}
        value = values[index]
        if value is None:
            if direction == 1:
                clauses.append({**equal, field: {"$ne": None}})
            continue  # descending, nothing comes after null
        clauses.append({**equal, field: {"$gt" if direction == 1 else "$lt": value}})
        if direction == -1:
            clauses.append({**equal, field: None})  # descending, null comes after every value
    keyset: dict[str, Any] = {"$or": clauses} if clauses else {"_id": {"$exists": False}}
    first_field, first_direction = sort[0]
    parts = [where] if where else []
    if values[0] is not None and first_direction == 1:
        parts.append({first_field: {"$gte": values[0]}})
    parts.append(keyset)
    return parts[0] if len(parts) == 1 else {"$and": parts}


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
