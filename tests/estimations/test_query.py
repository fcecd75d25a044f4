"""The query parameter parser: what it builds for MongoDB, and where it stops."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from bson import ObjectId

from core.errors import BadQuery
from estimations.query import MAX_IN_VALUES, MAX_NODES, parse_projection, parse_where
from estimations.sorting import parse_sort
from tests.helpers import known_departure


def test_values_are_converted_to_the_fields_types():
    where = parse_where(
        json.dumps(
            {
                "_id": "6b0aa8a7e49da0a6640161ec",
                "_created": {"$gte": "Thu, 25 Jun 2020 06:42:02 GMT"},
                "_updated": {"$lt": "2020-06-26T00:00:00"},
            }
        )
    )

    assert where == {
        "_id": ObjectId("6b0aa8a7e49da0a6640161ec"),
        "_created": {"$gte": datetime(2020, 6, 25, 6, 42, 2, tzinfo=UTC)},
        "_updated": {"$lt": datetime(2020, 6, 26, tzinfo=UTC)},
    }


def test_the_filter_is_rebuilt_not_passed_through():
    raw = {"$or": [{"category": "books"}, {"bestseller_rank": {"$not": {"$gt": 5}}}]}

    assert parse_where(json.dumps(raw)) == raw


def test_empty_where_is_no_filter():
    assert parse_where(None) == {} and parse_where("  ") == {}


def test_in_lists_are_bounded():
    with pytest.raises(BadQuery, match=str(MAX_IN_VALUES)):
        parse_where(json.dumps({"bestseller_rank": {"$in": list(range(MAX_IN_VALUES + 1))}}))


def test_condition_count_is_bounded():
    clauses = [{"category": "b"}] * 42
    raw = json.dumps({"$or": [{"$and": clauses}] * 5}, separators=(",", ":"))
    assert len(raw) < 4096  # the node budget, not the length limit, must be what stops it

    with pytest.raises(BadQuery, match=f"more than {MAX_NODES} conditions"):
        parse_where(raw)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(BadQuery):
        parse_where(json.dumps({"bestseller_rank": {"$gt": value}}))


def test_sort_appends_an_id_tiebreaker_that_makes_it_an_index_order():
    assert parse_sort("-bestseller_rank") == [("bestseller_rank", -1), ("_id", -1)]
    assert parse_sort("category,-bestseller_rank") == [("category", 1), ("bestseller_rank", -1), ("_id", -1)]
    assert parse_sort("-category,bestseller_rank") == [("category", -1), ("bestseller_rank", 1), ("_id", 1)]
    assert parse_sort('[("_id", -1)]') == [("_id", -1)]
    assert parse_sort(None) == [("_created", 1), ("_id", 1)]


def _index_orders() -> set[tuple[tuple[str, int], ...]]:
    """Straight from the index table (not from the parser's own derivation): each key pattern of an index
    that holds every document, both ways, and _id's own index."""
    from estimations.store import INDEXES

    orders = {(("_id", 1),), (("_id", -1),)}
    for index in INDEXES:
        document = index.document
        if "partialFilterExpression" in document or document.get("sparse"):
            continue
        keys = tuple((field, int(direction)) for field, direction in document["key"].items())
        orders |= {keys, tuple((field, -direction) for field, direction in keys)}
    return orders


def _every_sort_a_client_can_send():
    """Every list of distinct sortable fields, 1 to MAX_SORT_KEYS long, with every direction."""
    from itertools import permutations, product

    from estimations.fields import SORTABLE_FIELDS
    from estimations.query import MAX_SORT_KEYS

    for length in range(1, MAX_SORT_KEYS + 1):
        for fields in permutations(SORTABLE_FIELDS, length):
            for directions in product((1, -1), repeat=length):
                yield list(zip(fields, directions, strict=True))


def test_every_sort_the_parser_accepts_is_an_index_key_pattern_or_its_reverse():
    from estimations.query import DEFAULT_SORT

    orders = _index_orders()
    accepted, refused = [], []
    for keys in _every_sort_a_client_can_send():
        comma = ",".join(("-" if direction < 0 else "") + field for field, direction in keys)
        eve = repr(keys)
        try:
            parsed = parse_sort(comma)
        except BadQuery as exc:
            refused.append(keys)
            assert "no index serves" in str(exc.detail)
            with pytest.raises(BadQuery):  # the same in Eve's form
                parse_sort(eve)
            continue
        assert tuple(parsed) in orders, (comma, parsed)
        assert parse_sort(eve) == parsed
        accepted.append(tuple(parsed))

    # And every order an index serves can be asked for (the index table has nothing the API cannot use)
    assert set(accepted) == orders
    assert tuple(DEFAULT_SORT) in orders and tuple(parse_sort(None)) == tuple(DEFAULT_SORT)
    assert len(refused) > len(accepted)  # (the enumeration did cover mixed and unindexed orders)


@pytest.mark.parametrize("sort", ["bestseller_rank,category", "-bestseller_rank,_id", "category,-estimated_sales"])
def test_a_sort_no_index_serves_is_refused_listing_the_sortable_combinations(sort):
    from estimations.sorting import sortable_combinations

    with pytest.raises(BadQuery) as refused:
        parse_sort(sort)

    message = str(refused.value.detail)
    assert f"no index serves the order {sort}" in message
    assert sortable_combinations() == [
        "_id",
        "bestseller_rank",
        "estimated_sales",
        "category",
        "category,bestseller_rank",
        "category,-bestseller_rank",
        "model_version",
        "marketplace",
        "price",
        "estimated_revenue",
        "_created",
        "_updated",
    ]
    assert "; ".join(sortable_combinations()) in message and "reversed (e.g. -category,bestseller_rank)" in message


def test_projection_forms():
    assert parse_projection('{"category": true}') == {"category": 1}
    assert parse_projection(None) is None


def test_not_operator_through_the_api(api, on_nx_27017):
    from tests.helpers import post_json

    post_json(api, [{"bestseller_rank": rank} for rank in (1, 5, 9)])
    known_departure(on_nx_27017, "$not is not implemented")

    response = api.get("/estimations?" + urlencode({"where": json.dumps({"bestseller_rank": {"$not": {"$gt": 4}}})}))

    assert [item["bestseller_rank"] for item in response.json()["_items"]] == [1]


@pytest.mark.parametrize("sort", ["--bestseller_rank", "---category", "-bestseller_rank,--_created"])
def test_a_field_with_more_than_one_minus_is_refused(sort):
    with pytest.raises(BadQuery) as refused:
        parse_sort(sort)

    assert "more than one '-'" in str(refused.value.detail)
