"""No client input produces a 5xx: property-based tests over the whole input space of each parameter and body.

Hypothesis generates the values: any JSON (big integers, dates at the ends of the calendar with any offset,
lone surrogates, deep and wide nesting) for ``where``, ``sort``, ``projection``, ``page`` and ``max_results``
on every list endpoint; any bytes or text for JSON, form, multipart and CSV bodies; any header value for
If-Match, Idempotency-Key, Accept, Content-Type and the conditional GET headers. Each request must answer a
2xx, 3xx or a 4xx in the error envelope, and a 4xx must leave every stored collection as it was.

They run on mongomock through Django's test client (a request is a few milliseconds), with every document and
filter encoded to BSON on the way in, as pymongo does before it sends anything. ``make test`` runs
PROPERTY_EXAMPLES (default 60) examples per property, derandomized (the same examples on every run, so CI is
deterministic); ``make fuzz`` runs 2,000 per property with a random seed (PROPERTY_RANDOM=1).
"""

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
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estimations.csv_io import EXPORT_COLUMNS, IMPORT_COLUMNS
from estimations.fields import INPUT_FIELDS, SORTABLE_FIELDS
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


@pytest.fixture
def store_kind() -> str:
    return "mongomock"  # fast; the named cases in test_hostile_input.py also run over the wire


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


@pytest.fixture
def bson_checked(monkeypatch) -> None:
    for name in ENCODED_METHODS:
        original = getattr(mongomock.collection.Collection, name)

        def checked(self, *args, _original=original, **kwargs):
            for value in (*args, *kwargs.values()):
                if not isinstance(value, str):
                    _encode_as_the_wire_would(value)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(mongomock.collection.Collection, name, checked)


@pytest.fixture
def world(client, mongo_db, active_model, keys, bson_checked) -> World:
    world = World(client, mongo_db, keys["admin"])
    world.new_estimation()
    return world


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


# --- list endpoints ----------------------------------------------------------------------------


@PROPERTY
@given(params=list_params)
def test_the_estimations_list_takes_any_query(world, params):
    world.send("GET", "/estimations?" + query(params), b"")


@PROPERTY
@given(pair=real_tokens, where=st.one_of(st.none(), where_values), max_results=page_values)
def test_the_estimations_list_takes_any_after_token_for_its_sort(world, pair, where, max_results):
    sort, token = pair
    params = {"sort": sort, "after": token, "max_results": max_results, **({"where": where} if where else {})}
    world.send("GET", "/estimations?" + query(params), b"")


@PROPERTY
@given(
    field=st.sampled_from(list(FIELD_TYPES)),
    operator=st.sampled_from(["", "$eq", "$gt", "$lte", "$ne", "$in", "$nin", "$not"]),
    value=st.one_of(big_integers, st.floats(), dates, any_text, st.booleans(), st.none()),
    csv=st.booleans(),
)
def test_any_value_of_any_field_under_any_operator_in_where(world, field, operator, value, csv):
    # One condition, so that nearly every value gets past the field's type check to the store.
    operand = [value] if operator in ("$in", "$nin") else {"$gt": value} if operator == "$not" else value
    where = json.dumps({field: {operator: operand} if operator else operand})
    world.send("GET", "/estimations?" + query({"where": where, **({"format": "csv"} if csv else {})}), b"")


@PROPERTY
@given(params=list_params, accept=st.sampled_from(["text/csv", "application/json", "text/html", "*/*"]))
def test_the_estimations_list_takes_any_query_in_any_format(world, params, accept):
    world.send("GET", "/estimations?" + query(params), b"", HTTP_ACCEPT=accept)


@PROPERTY
@given(
    params=st.fixed_dictionaries(
        {},
        optional={"page": page_values, "max_results": page_values, "action": any_text | st.sampled_from(["replay"])},
    )
)
def test_the_audit_list_takes_any_query(world, params):
    world.send("GET", "/audit?" + query(params), b"", **world.admin)


@PROPERTY
@given(
    params=st.fixed_dictionaries(
        {}, optional={"category": any_text, "min_rank": page_values, "max_rank": page_values, "page": page_values}
    )
)
def test_the_inspection_page_takes_any_filter(world, params):
    assert world.send("GET", "/inspect/?" + query(params), b"", **world.admin) == 200


@PROPERTY
@given(
    version=st.one_of(big_integers.map(str), any_text),
    tail=st.sampled_from(["", "/replays", "/accuracy"]),
    params=list_params,
)
def test_model_endpoints_take_any_version_and_query(world, version, tail, params):
    world.send("GET", f"/models/{quote(to_bytes(version), safe='')}{tail}?{query(params)}", b"", **world.admin)


# --- bodies ------------------------------------------------------------------------------------


@PROPERTY
@given(body=st.one_of(documents, st.lists(documents, max_size=4), json_values), ascii_only=st.booleans())
def test_a_json_post_of_any_value(world, body, ascii_only):
    world.send("POST", "/estimations", to_bytes(json_text(body, ascii_only)))


@PROPERTY
@given(body=st.binary(max_size=200) | any_text.map(to_bytes))
def test_a_json_post_of_any_bytes(world, body):
    world.send("POST", "/estimations", body)


@PROPERTY
@given(method=st.sampled_from(["PUT", "PATCH"]), body=st.one_of(documents, json_values), ascii_only=st.booleans())
def test_a_json_update_of_any_value(world, method, body, ascii_only):
    target = world.new_estimation()
    world.send(method, f"/estimations/{target['_id']}", to_bytes(json_text(body, ascii_only)), HTTP_IF_MATCH="*")


@PROPERTY
@given(
    fields=st.dictionaries(st.sampled_from(INPUT_FIELDS) | any_text, digit_text | any_text, max_size=6),
    raw=st.binary(max_size=200),
    use_raw=st.booleans(),
)
def test_a_form_post_of_any_fields_or_bytes(world, fields, raw, use_raw):
    world.send("POST", "/estimations", raw if use_raw else query(fields).encode(), FORM)


@PROPERTY
@given(
    parts=st.lists(st.tuples(st.sampled_from(INPUT_FIELDS) | any_text, digit_text | any_text), max_size=5),
    raw=st.binary(max_size=200),
    use_raw=st.booleans(),
)
def test_a_multipart_post_of_any_parts_or_bytes(world, parts, raw, use_raw):
    body = raw
    if not use_raw:
        body = (
            b"".join(
                b'--b\r\nContent-Disposition: form-data; name="'
                + to_bytes(name).replace(b'"', b"")
                + b'"\r\n\r\n'
                + to_bytes(value)
                + b"\r\n"
                for name, value in parts
            )
            + b"--b--\r\n"
        )
    world.send("POST", "/estimations", body, "multipart/form-data; boundary=b")


csv_cells = st.one_of(digit_text, any_text, st.sampled_from(["books", "", '"', "=1+1", "\r\n", ","]))


@PROPERTY
@given(
    header=st.lists(st.sampled_from(EXPORT_COLUMNS + IMPORT_COLUMNS) | any_text, min_size=0, max_size=5),
    rows=st.lists(st.lists(csv_cells, max_size=5), max_size=6),
    raw=st.binary(max_size=300),
    use_raw=st.booleans(),
    bom=st.booleans(),
)
def test_a_csv_post_of_any_table_or_bytes(world, header, rows, raw, use_raw, bom):
    text = "\r\n".join(",".join(cells) for cells in [header, *rows])
    body = raw if use_raw else (b"\xef\xbb\xbf" if bom else b"") + to_bytes(text)
    world.send("POST", "/estimations", body, "text/csv")


@PROPERTY
@given(
    body=st.one_of(st.fixed_dictionaries({"sample": json_values}), documents, json_values),
    content_type=st.sampled_from(["application/json", FORM, "text/csv", "multipart/form-data; boundary=b"]),
)
def test_a_replay_request_of_any_body(world, body, content_type):
    world.send("POST", "/models/1/replay", to_bytes(json_text(body, True)), content_type, **world.admin)


# --- headers -----------------------------------------------------------------------------------


@PROPERTY
@given(if_match=header_values, method=st.sampled_from(["PUT", "PATCH", "DELETE"]))
def test_any_if_match(world, if_match, method):
    target = world.new_estimation()
    body = b"" if method == "DELETE" else b'{"bestseller_rank": 7}'
    world.send(method, f"/estimations/{target['_id']}", body, HTTP_IF_MATCH=if_match)


@PROPERTY
@given(key=header_values, body=st.sampled_from([b'{"bestseller_rank": 9}', b'[{"bestseller_rank": 9}]']))
def test_any_idempotency_key(world, key, body):
    world.send("POST", "/estimations", body, HTTP_IDEMPOTENCY_KEY=key)


@PROPERTY
@given(accept=header_values, method=st.sampled_from(["GET", "POST", "GET item"]))
def test_any_accept(world, accept, method):
    if method == "GET item":
        world.send("GET", f"/estimations/{world.new_estimation()['_id']}", b"", HTTP_ACCEPT=accept)
    else:
        body = b'{"bestseller_rank": 11}' if method == "POST" else b""
        world.send(method, "/estimations", body, HTTP_ACCEPT=accept)


@PROPERTY
@given(content_type=header_values, method=st.sampled_from(["POST", "PUT", "PATCH"]))
def test_any_content_type(world, content_type, method):
    path = "/estimations" if method == "POST" else f"/estimations/{world.new_estimation()['_id']}"
    world.send(method, path, b'{"bestseller_rank": 12}', content_type, HTTP_IF_MATCH="*")


@PROPERTY
@given(
    headers=st.fixed_dictionaries(
        {},
        optional={
            "HTTP_IF_NONE_MATCH": header_values,
            "HTTP_IF_MODIFIED_SINCE": header_values | dates,
            "HTTP_X_REQUEST_ID": header_values,
            "HTTP_AUTHORIZATION": header_values,
            "HTTP_ORIGIN": header_values,
        },
    )
)
def test_any_conditional_and_other_headers(world, headers):
    world.send("GET", f"/estimations/{world.new_estimation()['_id']}", b"", **headers)
