"""The query parameter parser: what it builds for MongoDB, and where it stops."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from bson import ObjectId

from estimations.errors import BadQuery
from estimations.query import MAX_IN_VALUES, MAX_NODES, parse_projection, parse_sort, parse_where

from ..conftest import known_departure


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


def test_sort_appends_an_id_tiebreaker_in_the_first_keys_direction():
    assert parse_sort("-bestseller_rank") == [("bestseller_rank", -1), ("_id", -1)]
    assert parse_sort("category,-estimated_sales") == [("category", 1), ("estimated_sales", -1), ("_id", 1)]
    assert parse_sort('[("_id", -1)]') == [("_id", -1)]
    assert parse_sort(None) == [("_created", 1), ("_id", 1)]


def test_projection_forms():
    assert parse_projection('{"category": true}') == {"category": 1}
    assert parse_projection(None) is None


def test_not_operator_through_the_api(api, on_nx_27017):
    from .test_api_create import post_json

    post_json(api, [{"bestseller_rank": rank} for rank in (1, 5, 9)])
    known_departure(on_nx_27017, "$not is not implemented")

    response = api.get("/estimations?" + urlencode({"where": json.dumps({"bestseller_rank": {"$not": {"$gt": 4}}})}))

    assert [item["bestseller_rank"] for item in response.json()["_items"]] == [1]
