"""The input space of the property tests (tests/estimations/test_input_properties.py): hypothesis
strategies for every parameter, body and header a client can send, and ``World``, the test client that
checks each answer (never a 5xx; a 4xx in the envelope and nothing stored changed)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import bson
import mongomock
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from estimations.fields import SORTABLE_FIELDS
from estimations.keyset import encode_after
from estimations.query import (
    COMPARISON_OPERATORS,
    FIELD_TYPES,
    LOGICAL_OPERATORS,
    SET_OPERATORS,
)
from estimations.sorting import reverse, sort_plans, sort_text

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "60"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=not os.environ.get("PROPERTY_RANDOM"),
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
FORM = "application/x-www-form-urlencoded"


class World:
    """The test client, the database, an admin key and one stored estimation to address."""

    def __init__(self, client, database, admin_key: str):
        self.client = client
        self.database = database
        self.admin = {"HTTP_AUTHORIZATION": f"Api-Key {admin_key}"}

    def new_estimation(self) -> dict[str, Any]:
        response = self.client.post(
            "/estimations", {"bestseller_rank": 42, "sku": "seed"}, content_type="application/json"
        )
        assert response.status_code == 201, response.content
        return response.json()

    def stored(self) -> dict[str, list[dict[str, Any]]]:
        return {name: list(self.database[name].find()) for name in sorted(self.database.list_collection_names())}

    def send(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json", **headers):
        """The request's answer, after checking it: never a 5xx; a 4xx in the envelope, nothing stored changed."""
        before = self.stored()
        response = self.client.generic(method, path, body, content_type, **headers)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        status = response.status_code
        assert status < 500, f"{method} {path[:300]!r} -> {status}: {content[:500]!r}"
        if status >= 400:
            kind = response.get("Content-Type", "")
            if kind.startswith("application/json"):
                envelope = json.loads(content)
                assert envelope["_status"] == "ERR" and envelope["_error"]["code"] == status, envelope
                assert envelope["_error"]["message"]
            else:  # the browsable API (Accept: text/html) shows the same envelope in a page; /inspect/ a form
                assert kind.startswith("text/html") and (b"ERR" in content or path.startswith("/inspect/")), kind
            assert self.stored() == before, f"{method} {path[:200]!r} -> {status} changed stored data"
        return status


# mongomock keeps Python objects as they are; a real server gets BSON, which has no integer past 64 bits and
# no lone surrogate. So, as pymongo does before anything is sent, every document, filter and pipeline given
# to a collection is encoded to BSON first: what the wire would refuse fails here too.
ENCODED_METHODS = (
    "find",
    "find_one",
    "count_documents",
    "distinct",
    "aggregate",
    "insert_one",
    "insert_many",
    "find_one_and_replace",
    "find_one_and_update",
    "replace_one",
    "update_one",
    "update_many",
    "delete_one",
    "delete_many",
)


def _encode_as_the_wire_would(value: Any) -> None:
    if isinstance(value, Mapping):
        bson.encode(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _encode_as_the_wire_would(item)


def check_bson_as_the_wire_would(monkeypatch) -> None:
    """Encode every document, filter and pipeline given to a mongomock collection to BSON first."""
    for name in ENCODED_METHODS:
        original = getattr(mongomock.collection.Collection, name)

        def checked(self, *args, _original=original, **kwargs):
            for value in (*args, *kwargs.values()):
                if not isinstance(value, str):
                    _encode_as_the_wire_would(value)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(mongomock.collection.Collection, name, checked)


# --- what clients can send ---------------------------------------------------------------------

# Any character, lone surrogates included (a JSON escape or a Python literal can carry them).
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
# Digits of every script ("²", "①", "٣"), ASCII ones, and numbers of any length.
digit_text = st.one_of(
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),
    st.integers().map(str),
    st.integers(min_value=19, max_value=6000).map(lambda digits: "9" * digits),  # past 64 bits, past 4,300 digits
    st.text("0123456789 +-.eE_", min_size=1, max_size=12),
)
big_integers = st.one_of(
    st.integers(),
    st.integers().map(lambda n: n * 2**64),  # past 64 bits
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**20, 10**400]),
)
offsets = st.integers(min_value=-1439, max_value=1439).map(lambda minutes: timedelta(minutes=minutes))
moments = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    offsets,
)
dates = st.one_of(
    moments.map(datetime.isoformat),
    moments.map(lambda moment: format_datetime(moment)),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "Thu, 25 Jun 2020 06:42:02 GMT"]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    big_integers,
    st.floats(),  # NaN and the infinities too: json.dumps writes them, the service must refuse them
    any_text,
    dates,
    st.sampled_from(["books", "5f0c2a1b3d4e5f6a7b8c9d0e", "", "$where"]),
)
field_names = st.one_of(
    st.sampled_from(
        sorted(FIELD_TYPES)
        + sorted(COMPARISON_OPERATORS | SET_OPERATORS | LOGICAL_OPERATORS)
        + ["$exists", "$not", "$where", "$regex", "$expr", "a.b", "_etag", "__proto__"]
    ),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(field_names, children, max_size=5),
    max_leaves=20,
)
documents = st.dictionaries(field_names, json_values, max_size=6)


def json_text(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


def to_bytes(text: str) -> bytes:
    """The text as UTF-8, lone surrogates written as the (invalid) bytes a careless client would send."""
    return text.encode("utf-8", "surrogatepass")


def query(params: dict[str, str]) -> str:
    return "&".join(f"{quote(name)}={quote(to_bytes(value))}" for name, value in params.items())


json_params = st.one_of(
    st.builds(json_text, json_values, st.booleans()),
    st.builds(json_text, documents, st.booleans()),
    any_text,
)
# Mostly well-formed filters, so the values reach the store: each field with values of its own type (and others).
typed_values = {
    "_id": st.text("0123456789abcdef", min_size=24, max_size=24),
    "_created": dates,
    "_updated": dates,
    "extrapolated": st.booleans(),
    "category": any_text | st.just("books"),
    "marketplace": any_text | st.sampled_from(["us", "uk", "de"]),
    "sku": any_text,
    "actual_period": any_text | st.just("2026-10"),
}
numbers = st.one_of(big_integers, st.floats())


def condition(field: str) -> st.SearchStrategy:
    typed = typed_values.get(field, numbers)
    # Three times in four a value of the field's type (one_of would weigh every branch of both the same).
    value = st.integers(0, 3).flatmap(lambda pick: json_scalars if pick == 3 else typed)
    comparison = st.tuples(st.sampled_from(sorted(COMPARISON_OPERATORS)), value)
    in_set = st.tuples(st.sampled_from(sorted(SET_OPERATORS)), st.lists(value, max_size=3))
    negated = st.tuples(
        st.just("$not"), st.builds(lambda op, v: {op: v}, st.sampled_from(sorted(COMPARISON_OPERATORS)), value)
    )
    exists = st.tuples(st.just("$exists"), st.booleans())
    operators = st.lists(st.one_of(comparison, in_set, negated, exists), min_size=1, max_size=2).map(dict)
    return st.one_of(value, operators)


field_conditions = st.sampled_from(list(FIELD_TYPES)).flatmap(lambda field: st.tuples(st.just(field), condition(field)))
where_documents = st.recursive(
    st.lists(field_conditions, min_size=1, max_size=2).map(dict),
    lambda children: st.dictionaries(
        st.sampled_from(sorted(LOGICAL_OPERATORS)), st.lists(children, min_size=1, max_size=3), min_size=1, max_size=2
    ),
    max_leaves=8,
)
where_values = st.integers(0, 3).flatmap(
    lambda pick: json_params if pick == 3 else st.builds(json_text, where_documents, st.booleans())
)
sort_values = st.one_of(
    any_text,
    st.lists(
        st.tuples(st.sampled_from(SORTABLE_FIELDS) | any_text, st.sampled_from(["", "-"])), min_size=1, max_size=4
    ).map(lambda keys: ",".join(sign + name for name, sign in keys)),
    st.lists(
        st.tuples(
            st.sampled_from(SORTABLE_FIELDS) | any_text,
            st.one_of(big_integers, st.floats(), st.complex_numbers(), st.booleans(), any_text, st.none()),
        ),
        max_size=4,
    ).map(repr),
    st.builds(lambda inner: f"[{inner}]", any_text),
)
page_values = st.one_of(digit_text, any_text)
# after: what a client may send, and real tokens (for any sort an index serves) holding any values.
served_sorts = st.sampled_from([list(plan) for plan in sort_plans()] + [list(reverse(plan)) for plan in sort_plans()])
key_values = st.one_of(
    json_scalars,
    big_integers,
    moments,
    st.datetimes(),  # naive: taken as UTC
    st.builds(bson.ObjectId),
    any_text,
)


def _real_token(sort: list[tuple[str, int]], values: list[Any], page: int) -> str:
    return encode_after(sort, {field: value for (field, _), value in zip(sort, values, strict=False)}, page)


real_tokens = served_sorts.flatmap(
    lambda sort: st.builds(
        _real_token,
        st.just(sort),
        st.lists(key_values, min_size=len(sort), max_size=len(sort)),
        big_integers,
    ).map(lambda token: (sort_text(sort[:-1] if len(sort) > 1 else sort), token))
)
after_values = st.one_of(
    any_text,
    st.builds(lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).decode(), json_values),
    real_tokens.map(lambda pair: pair[1]),
)
list_params = st.fixed_dictionaries(
    {},
    optional={
        "where": where_values,
        "sort": sort_values,
        "projection": json_params,
        "page": page_values,
        "max_results": page_values,
        "after": after_values,
        "format": st.sampled_from(["json", "csv", "xml", ""]) | any_text,
    },
)
header_values = st.text(st.characters(max_codepoint=255), max_size=60)  # WSGI headers are latin-1
