"""The ``sort`` parameter: parsed, and accepted only where an index of the store reads it in order."""

from __future__ import annotations

import ast
import functools

from core import limits
from core.errors import BadQuery
from estimations.fields import SORTABLE_FIELDS
from estimations.query import DEFAULT_SORT, MAX_SORT_KEYS


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
    from estimations.store import INDEXES  # estimations.store imports this module (by list_query)

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
