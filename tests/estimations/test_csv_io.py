"""CSV in (POST text/csv, all or nothing, bad rows by line) and out (GET text/csv, streamed)."""

from __future__ import annotations

import csv
import io
import json
import random
import tracemalloc
from http import HTTPStatus

import pytest
from django.test import override_settings

from core.errors import MSG_BULK_TOO_LARGE
from estimations import csv_io, validation
from ml.serving import get_estimator
from tests.helpers import URL, assert_error_envelope, post_json


def post_csv(api, text: str | bytes, **extra):
    body = text.encode() if isinstance(text, str) else text
    return api.post(URL, data=body, content_type="text/csv", **extra)


def product_list(rows: int, seed: int = 3) -> tuple[str, list[tuple[int, str, str]]]:
    rng = random.Random(seed)
    categories = ["books", "toys_games", "electronics", "beauty"]
    products = [(rng.randint(1, 2_000_000), rng.choice(categories), f"SKU-{i:05d}") for i in range(rows)]
    lines = ["bestseller_rank,category,sku", *(f"{rank},{category},{sku}" for rank, category, sku in products)]
    return "\n".join(lines) + "\n", products


def peak_memory(action):
    tracemalloc.start()
    try:
        result = action()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def exported(response) -> list[dict[str, str]]:
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


class TestImportAndExport:
    def test_10000_rows_in_and_round_trip_out(self, api, mongo_db, store_kind):
        text, products = product_list(10_000)

        response = post_csv(api, text)

        assert response.status_code == HTTPStatus.CREATED, response.content[:500]
        items = response.json()["_items"]
        assert len(items) == 10_000 and mongo_db["estimations"].count_documents({}) == 10_000
        estimator = get_estimator()
        for item, (rank, category, sku) in zip(items[::97], products[::97], strict=True):
            assert (item["bestseller_rank"], item["category"], item["sku"]) == (rank, category, sku)
            assert item["estimated_sales"] == estimator.estimate(rank, category).sales

        # Out: every stored estimation, in _id order, with the columns a seller needs. Streamed: the
        # export's peak memory is a fraction of what holding the documents at once takes.
        response = api.get(URL, {"format": "csv"})
        assert response.streaming
        export_peak, chunks = peak_memory(lambda: [len(chunk) for chunk in response.streaming_content])
        assert len(chunks) > 10  # written as it is read, not as one body
        if store_kind == "wire":  # (mongomock copies every document it finds up front)
            all_at_once, _ = peak_memory(lambda: list(mongo_db["estimations"].find()))
            assert export_peak < all_at_once / 4, (export_peak, all_at_once)

        rows = exported(api.get(URL, HTTP_ACCEPT="text/csv"))
        assert list(rows[0]) == list(csv_io.EXPORT_COLUMNS)
        assert [row["_id"] for row in rows] == [item["_id"] for item in items]
        for row, item in zip(rows, items, strict=True):
            assert (int(row["bestseller_rank"]), row["category"], row["sku"]) == (
                item["bestseller_rank"],
                item["category"],
                item["sku"],
            )
            assert int(row["estimated_sales"]) == item["estimated_sales"]
            assert row["extrapolated"] == ("true" if item["extrapolated"] else "false")

        # And an export goes back in as it is (its computed columns are ignored)
        again = "".join(
            ",".join(f'"{cell}"' for cell in line) + "\n" for line in [list(rows[0]), *(r.values() for r in rows[:50])]
        )
        response = post_csv(api, again)
        assert response.status_code == HTTPStatus.CREATED, response.json()
        assert [item["sku"] for item in response.json()["_items"]] == [row["sku"] for row in rows[:50]]

    def test_export_applies_the_filter_and_sort(self, api):
        post_csv(api, "bestseller_rank,category\n5,books\n50,toys_games\n7,books\n")

        rows = exported(
            api.get(URL, {"format": "csv", "where": json.dumps({"category": "books"}), "sort": "-bestseller_rank"})
        )

        assert [(row["bestseller_rank"], row["category"]) for row in rows] == [("7", "books"), ("5", "books")]

    def test_an_export_says_its_size_and_refuses_past_its_bound(self, api, settings):
        post_csv(api, "bestseller_rank,category\n5,books\n50,toys_games\n7,books\n")
        books = {"format": "csv", "where": json.dumps({"category": "books"})}

        response = api.get(URL, books)
        assert response["X-Total-Count"] == "2" and len(exported(response)) == 2

        settings.EXPORT_MAX_ROWS = 2
        assert len(exported(api.get(URL, books))) == 2
        refused = api.get(URL, {"format": "csv"})
        message = assert_error_envelope(refused, 400)["_error"]["message"]
        assert "matches 3 estimations, more than the 2 an export holds (EXPORT_MAX_ROWS)" in message
        assert refused["Content-Type"].startswith("application/json")

    def test_an_empty_export_is_the_header_only(self, api):
        rows = exported(api.get(URL, {"format": "csv"}))

        assert rows == []

    def test_a_bad_filter_answers_the_json_error_envelope(self, api):
        response = api.get(URL, {"format": "csv", "where": '{"$where": "1"}'})

        assert response["Content-Type"].startswith("application/json")
        assert_error_envelope(response, 400)

    def test_post_with_accept_csv_answers_the_stored_rows_as_csv(self, api):
        response = post_json(api, [{"bestseller_rank": 5, "sku": "A"}, {"bestseller_rank": 6}], HTTP_ACCEPT="text/csv")

        assert response.status_code == HTTPStatus.CREATED
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [(row["bestseller_rank"], row["sku"]) for row in rows] == [("5", "A"), ("6", "")]

    def test_one_estimation_is_json_only(self, api):
        created = post_json(api, {"bestseller_rank": 5}).json()

        response = api.get(f"{URL}/{created['_id']}", HTTP_ACCEPT="text/csv")

        assert_error_envelope(response, 406)


class TestActualsInACsv:
    def test_actual_sales_and_their_month_are_stored_as_a_json_post_stores_them(self, api, mongo_db):
        response = post_csv(api, "bestseller_rank,actual_sales,actual_period\n5,3,2026-10\n9,,\n")

        assert response.status_code == 201, response.content
        stored = {doc["bestseller_rank"]: doc for doc in mongo_db["estimations"].find()}
        assert (stored[5]["actual_sales"], stored[5]["actual_period"]) == (3, "2026-10")
        assert "actual_sales" not in stored[9]

    def test_an_actual_without_its_month_is_refused_on_its_line(self, api, mongo_db):
        body = assert_error_envelope(post_csv(api, "bestseller_rank,actual_sales\n5,3\n"), 422)

        assert set(body["_issues"]) == {"line 2"}
        assert "actual_period" in body["_issues"]["line 2"]
        assert mongo_db["estimations"].count_documents({}) == 0

    def test_an_export_with_actuals_goes_back_in_with_them(self, api, mongo_db):
        post_csv(api, "bestseller_rank,actual_sales,actual_period\n5,3,2026-10\n")
        export = api.get(URL, HTTP_ACCEPT="text/csv")
        mongo_db["estimations"].delete_many({})

        assert post_csv(api, export.getvalue()).status_code == 201
        (again,) = mongo_db["estimations"].find()
        assert (again["actual_sales"], again["actual_period"]) == (3, "2026-10")


class TestImportIsAllOrNothing:
    def test_bad_rows_are_reported_by_line_and_nothing_is_stored(self, api, mongo_db):
        text = "bestseller_rank,category,sku\n5,books,A\nabc,books,B\n7,garden,C\n8,books,=1+1\n0,,\n9,books,Z\n"

        body = assert_error_envelope(post_csv(api, text), 422)

        assert "4 CSV row(s)" in body["_error"]["message"]
        assert body["_issues"] == {
            "line 3": f"bestseller_rank: {validation.ISSUE_INTEGER}",
            "line 4": "category: "
            + validation.ISSUE_UNKNOWN_CATEGORY.format(
                value="garden", known=", ".join(sorted(get_estimator().categories))
            ),
            "line 5": f"sku: {validation.ISSUE_SKU_FORMULA}",
            "line 6": f"bestseller_rank: {validation.ISSUE_MIN}",
        }
        assert mongo_db["estimations"].count_documents({}) == 0

    def test_many_bad_rows_list_the_first_hundred(self, api):
        body = assert_error_envelope(post_csv(api, "bestseller_rank\n" + "x\n" * 150), 422)

        assert "150 CSV row(s)" in body["_error"]["message"] and "the first 100" in body["_error"]["message"]
        assert list(body["_issues"]) == [f"line {line}" for line in range(2, 102)]

    def test_empty_cells_are_not_given_and_quoted_cells_may_hold_commas(self, api):
        text = '\ufeffbestseller_rank,category,sku\n5,,\n\n6,toys_games,"MUG, blue"\n'

        items = post_csv(api, text).json()["_items"]

        assert [(i["category"], i.get("sku")) for i in items] == [("books", None), ("toys_games", "MUG, blue")]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", csv_io.MSG_CSV_EMPTY),
            ("category,sku\nbooks,A\n", "must name a bestseller_rank or a rank_history column"),
            ("bestseller_rank,colour\n5,3\n", "unknown column(s) 'colour'"),
            ("bestseller_rank,bestseller_rank\n5,5\n", "names 'bestseller_rank' twice"),
            ("bestseller_rank\n5,6\n", csv_io.MSG_CSV_EXTRA_CELLS.format(line=2)),
            (b"bestseller_rank\n\xff\xfe\n", csv_io.MSG_CSV_NOT_UTF8),
            ('bestseller_rank,sku\n5,"open\n', "could not be read at line"),
        ],
    )
    def test_an_unreadable_csv_is_400_naming_the_problem(self, api, mongo_db, text, message):
        body = assert_error_envelope(post_csv(api, text), 400)

        assert message in body["_error"]["message"]
        assert mongo_db["estimations"].count_documents({}) == 0

    def test_a_nul_byte_is_a_bad_cell_on_its_line(self, api):
        body = assert_error_envelope(post_csv(api, "bestseller_rank\n5\x00\n"), 422)

        assert body["_issues"] == {"line 2": f"bestseller_rank: {validation.ISSUE_INTEGER}"}

    def test_a_header_without_rows_is_422(self, api):
        assert_error_envelope(post_csv(api, "bestseller_rank,category\n"), 422)

    def test_more_rows_than_the_bulk_limit_is_413(self, api, mongo_db):
        with override_settings(BULK_MAX_ITEMS=3):
            response = post_csv(api, "bestseller_rank\n1\n2\n3\n4\n")

        assert assert_error_envelope(response, 413)["_error"]["message"] == MSG_BULK_TOO_LARGE.format(limit=3, count=4)
        assert mongo_db["estimations"].count_documents({}) == 0

    def test_an_idempotency_key_is_for_single_estimations(self, api, mongo_db):
        assert_error_envelope(post_csv(api, "bestseller_rank\n1\n", HTTP_IDEMPOTENCY_KEY="k1"), 400)

    def test_put_and_patch_do_not_take_csv(self, api):
        created = post_json(api, {"bestseller_rank": 5}).json()

        response = api.patch(
            f"{URL}/{created['_id']}",
            data=b"bestseller_rank\n6\n",
            content_type="text/csv",
            HTTP_IF_MATCH=created["_etag"],
        )

        assert_error_envelope(response, 415)


@pytest.mark.parametrize("fmt", ["AAA", "xml", "\U000118a8I", ""])
def test_an_unknown_format_is_406_naming_the_choices(api, fmt):
    message = assert_error_envelope(api.get(URL, {"format": fmt}), 406)["_error"]["message"]

    assert "json, or csv" in message


def test_format_is_a_parameter_of_the_list_only_elsewhere_ignored(api):
    created = post_json(api, {"bestseller_rank": 5}).json()

    response = api.get(f"{URL}/{created['_id']}", {"format": "csv"})

    assert response.status_code == HTTPStatus.OK and response.json()["_id"] == created["_id"]


def test_a_method_the_url_does_not_take_is_405_whatever_the_format(api):
    response = api.generic("TRACE", URL + "?format=csv")

    assert_error_envelope(response, 405)
