"""Issue 21's inputs under hypothesis: marketplace, rank_history and price, well-formed or not, in every body
format (JSON one or bulk, form, CSV) and in PATCH. Each request answers a 2xx or a 4xx in the envelope,
never a 5xx, and leaves nothing behind when refused (tests/properties.py World); a stored estimation keeps
the rules: bestseller_rank is its history's latest rank, revenue is units x price in the marketplace's currency."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml.markets import CURRENCIES
from tests.properties import (
    FORM,
    PROPERTY,
    World,
    any_text,
    big_integers,
    check_bson_as_the_wire_would,
    dates,
    json_scalars,
    json_values,
    query,
    to_bytes,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(hours_ago: int) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


marketplaces = st.sampled_from(["us", "uk", "de", "jp", "US", "", "xx"]) | any_text
categories = st.sampled_from(["books", "electronics", "toys_games", "home_kitchen", "nope"])
ranks = st.integers(1, 3_000_000) | big_integers
# Mostly valid histories (sorted, within 90 days), and anything else a client could send.
valid_histories = st.lists(
    st.tuples(st.integers(0, 90 * 24), st.integers(1, 3_000_000)), min_size=1, max_size=12, unique_by=lambda p: p[0]
).map(lambda points: [{"at": iso(hours), "rank": rank} for hours, rank in sorted(points, reverse=True)])
samples = st.fixed_dictionaries(
    {}, optional={"at": dates | json_scalars | st.just(iso(3)), "rank": ranks | json_scalars, "x": json_scalars}
)
histories = st.one_of(
    valid_histories,
    valid_histories.map(lambda history: history[::-1]),  # newest first
    valid_histories.map(lambda history: [*history, history[-1]]),  # a duplicate
    st.lists(samples, max_size=4),
    json_values,
)
prices = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1_000_000), places=2).map(float),
    st.floats(),
    big_integers,
    json_scalars,
)
price_texts = st.one_of(prices.map(str), any_text, st.sampled_from(["19.99", "0", "19,99", "1e3", ""]))
bodies = st.fixed_dictionaries(
    {},
    optional={
        "bestseller_rank": ranks | json_scalars,
        "rank_history": histories,
        "marketplace": marketplaces,
        "category": categories,
        "price": prices,
    },
)


@pytest.fixture
def store_kind() -> str:
    return "mongomock"


@pytest.fixture
def world(client, mongo_db, active_model, keys, monkeypatch) -> World:
    check_bson_as_the_wire_would(monkeypatch)
    world = World(client, mongo_db, keys["admin"])
    world.new_estimation()
    return world


def check_stored(world: World, sent: list[dict]) -> None:
    """What the last write stored keeps the rules, for each of ``sent``'s estimations."""
    stored = list(world.database["estimations"].find().sort("_id", -1).limit(len(sent)))[::-1]
    for document in stored:
        assert document["marketplace"] in CURRENCIES
        if "rank_history" in document:
            assert document["bestseller_rank"] == document["rank_history"][-1]["rank"]
        if "price" in document:
            assert document["currency"] == CURRENCIES[document["marketplace"]]
            revenue = Decimal(repr(document["price"])) * document["estimated_sales"]
            assert document["estimated_revenue"] == float(revenue.quantize(Decimal("0.01")))
        else:
            assert "estimated_revenue" not in document and "currency" not in document


def send_json(world: World, body) -> int:
    status = world.send("POST", "/estimations", to_bytes(json.dumps(body)))
    if status == 201:
        check_stored(world, body if isinstance(body, list) else [body])
    return status


@PROPERTY
@given(body=bodies)
def test_a_json_post_of_any_new_input(world, body):
    send_json(world, body)


@PROPERTY
@given(items=st.lists(bodies, min_size=1, max_size=3))
def test_a_bulk_post_of_any_new_inputs(world, items):
    send_json(world, items)


def as_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@PROPERTY
@given(body=bodies, price=price_texts)
def test_a_form_post_of_any_new_input(world, body, price):
    fields = {name: as_text(value) for name, value in {**body, "price": price}.items()}
    if world.send("POST", "/estimations", query(fields).encode(), FORM) == 201:
        check_stored(world, [fields])


@PROPERTY
@given(rows=st.lists(bodies, min_size=1, max_size=4), price=price_texts)
def test_a_csv_post_of_any_new_input(world, rows, price):
    columns = sorted({name for row in rows for name in row} | {"bestseller_rank", "price"})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([as_text({**row, "price": price}.get(name, "")) for name in columns])
    if world.send("POST", "/estimations", to_bytes(buffer.getvalue()), "text/csv") == 201:
        check_stored(world, rows)


@PROPERTY
@given(body=bodies)
def test_a_patch_of_any_new_input(world, body):
    target = world.new_estimation()
    status = world.send("PATCH", f"/estimations/{target['_id']}", to_bytes(json.dumps(body)), HTTP_IF_MATCH="*")
    if status == 200:
        check_stored(world, [body])  # the target is the latest estimation


def test_the_strategies_reach_both_answers(world):
    """The property tests above see stored estimations as well as refusals (so they test both paths)."""
    history = [{"at": iso(30), "rank": 900}, {"at": iso(2), "rank": 1200}]
    good = {"rank_history": history, "marketplace": "uk", "category": "books", "price": 9.99}

    assert send_json(world, good) == 201
    assert send_json(world, {**good, "rank_history": history[::-1]}) == 422
