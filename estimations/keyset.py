"""Keyset pagination: the ``after`` token that names an item's position in a sort, and the filter for
what comes after it."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from core import limits
from core.errors import BadQuery
from estimations.query import FIELD_TYPES, MAX_PARAM_LENGTH
from estimations.sorting import sort_text

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
        return FIELD_TYPES["_id"](value["$oid"])
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
