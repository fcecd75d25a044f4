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

import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from estimations.csv_io import EXPORT_COLUMNS, IMPORT_COLUMNS
from estimations.fields import INPUT_FIELDS
from estimations.query import (
    FIELD_TYPES,
)
from tests.properties import (
    FORM,
    PROPERTY,
    World,
    any_text,
    big_integers,
    check_bson_as_the_wire_would,
    dates,
    digit_text,
    documents,
    header_values,
    json_text,
    json_values,
    list_params,
    page_values,
    query,
    real_tokens,
    to_bytes,
    where_values,
)


@pytest.fixture
def store_kind() -> str:
    return "mongomock"  # fast; the named cases in test_hostile_input.py also run over the wire


@pytest.fixture
def world(client, mongo_db, active_model, keys, monkeypatch) -> World:
    check_bson_as_the_wire_would(monkeypatch)
    world = World(client, mongo_db, keys["admin"])
    world.new_estimation()
    return world


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
