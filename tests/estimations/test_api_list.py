"""GET /estimations: Eve's envelope, links and meta, filtering, sorting, projection, pagination."""

from __future__ import annotations

import json
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from bson import ObjectId

from tests.helpers import assert_error_envelope, known_departure, post_json

CATEGORIES = ["books", "toys_games", "electronics"]


@pytest.fixture
def thirty(api):
    """30 estimations: ranks 10, 20, ... 300, categories cycling through CATEGORIES."""
    items = [{"bestseller_rank": 10 * n, "category": CATEGORIES[n % 3]} for n in range(1, 31)]
    response = post_json(api, items)
    assert response.status_code == HTTPStatus.CREATED, response.json()
    return response.json()["_items"]


def get_list(api, **params):
    query = {key: json.dumps(value) if isinstance(value, dict | list) else value for key, value in params.items()}
    return api.get("/estimations?" + urlencode(query))


def ranks(response) -> list[int]:
    assert response.status_code == HTTPStatus.OK, response.json()
    return [item["bestseller_rank"] for item in response.json()["_items"]]


class TestEnvelope:
    def test_empty_collection(self, api):
        response = api.get("/estimations")

        assert response.status_code == HTTPStatus.OK
        assert response.json() == {
            "_items": [],
            "_links": {
                "self": {"title": "estimations", "href": "estimations"},
                "parent": {"title": "home", "href": "/"},
            },
            "_meta": {"page": 1, "max_results": 25, "total": 0},
        }
        assert response["X-Total-Count"] == "0"

    def test_first_page_default_size_links_meta_and_total_header(self, api, thirty):
        response = api.get("/estimations")

        body = response.json()
        assert len(body["_items"]) == 25
        assert body["_meta"] == {"page": 1, "max_results": 25, "total": 30}
        assert response["X-Total-Count"] == "30"
        assert body["_links"]["next"] == {"title": "next page", "href": "estimations?page=2"}
        assert body["_links"]["last"] == {"title": "last page", "href": "estimations?page=2"}
        assert "prev" not in body["_links"]
        item = body["_items"][0]
        assert item["_links"] == {"self": {"title": "estimations", "href": f"estimations/{item['_id']}"}}
        assert set(item) >= {"_id", "_etag", "_created", "_updated", "bestseller_rank", "estimated_sales"}

    def test_default_order_is_a_bulks_list_order(self, api, thirty):
        # One bulk: one _created for all, and ids ascending in list order break the tie
        assert len({item["_created"] for item in thirty}) == 1
        assert ranks(get_list(api, max_results=30)) == [10 * n for n in range(1, 31)]

    def test_default_order_is_creation_order_not_id_order(self, api, mongo_db):
        # Given ids that are not in creation order, as ids made within one second by several
        # workers or hosts are not (each process has its own random part and counter)
        ids = [ObjectId(f"65000000{rest}") for rest in ("ffffffffff000001", "0000000000000002", "8888888888000003")]
        for rank, object_id in zip((50000, 123, 70), ids, strict=True):
            assert post_json(api, {"bestseller_rank": rank}).status_code == HTTPStatus.CREATED
            latest = mongo_db["estimations"].find_one(sort=[("_created", -1), ("_id", -1)])
            mongo_db["estimations"].delete_one({"_id": latest["_id"]})
            mongo_db["estimations"].insert_one({**latest, "_id": object_id})
            time.sleep(0.002)  # _created is stamped to the millisecond

        # Then the list shows them as they were created
        assert ranks(api.get("/estimations")) == [50000, 123, 70]


class TestPagination:
    def test_pages_cover_the_collection_once(self, api, thirty):
        seen = []
        for page in (1, 2, 3, 4):
            seen += ranks(get_list(api, max_results=8, page=page))

        assert sorted(seen) == [10 * n for n in range(1, 31)]

    def test_middle_page_links_keep_the_other_parameters(self, api, thirty):
        body = get_list(api, max_results=10, page=2, sort="-bestseller_rank").json()

        links = body["_links"]
        for name, page in (("prev", "1"), ("next", "3"), ("last", "3"), ("self", "2")):
            query = parse_qs(urlsplit(links[name]["href"]).query)
            assert query["max_results"] == ["10"] and query["sort"] == ["-bestseller_rank"], name
            assert query.get("page", ["1"]) == [page], name

    def test_max_results_is_capped_at_the_limit(self, api, thirty, settings):
        settings.PAGINATION_LIMIT = 12

        body = get_list(api, max_results=1000).json()

        assert body["_meta"]["max_results"] == 12 and len(body["_items"]) == 12

    def test_page_past_the_end_is_empty(self, api, thirty):
        body = get_list(api, page=9).json()

        assert body["_items"] == [] and body["_meta"]["total"] == 30

    @pytest.mark.parametrize(
        ("param", "value"),
        # page= and max_results= with no value are malformed (found by schemathesis), not the default
        [
            ("page", "0"),
            ("page", "-1"),
            ("page", "two"),
            ("max_results", "0"),
            ("max_results", "1.5"),
            ("page", ""),
            ("max_results", ""),
        ],
    )
    def test_bad_numbers_are_400(self, api, param, value):
        message = assert_error_envelope(get_list(api, **{param: value}), 400)["_error"]["message"]

        assert param in message


class TestWhere:
    @pytest.mark.parametrize(
        ("where", "expected"),
        [
            ({"bestseller_rank": 50}, [50]),
            ({"bestseller_rank": {"$gte": 280}}, [280, 290, 300]),
            ({"bestseller_rank": {"$gt": 100, "$lte": 130}}, [110, 120, 130]),
            ({"bestseller_rank": {"$in": [10, 20, 999]}}, [10, 20]),
            ({"bestseller_rank": {"$lt": 60}, "category": {"$nin": ["books"]}}, [10, 20, 40, 50]),
            ({"category": "books", "bestseller_rank": {"$lte": 90}}, [30, 60, 90]),
            ({"$or": [{"bestseller_rank": 10}, {"bestseller_rank": 300}]}, [10, 300]),
            ({"$and": [{"bestseller_rank": {"$gt": 20}}, {"bestseller_rank": {"$lt": 50}}]}, [30, 40]),
            ({"$nor": [{"bestseller_rank": {"$gt": 30}}]}, [10, 20, 30]),
            (
                {"bestseller_rank": {"$ne": 10}, "category": {"$eq": "toys_games"}},
                [40, 70, 100, 130, 160, 190, 220, 250, 280],
            ),
            ({"estimated_sales": {"$exists": False}}, []),
        ],
    )
    def test_mongo_style_filters(self, api, thirty, where, expected):
        response = get_list(api, where=where, max_results=50)

        assert ranks(response) == expected
        assert response.json()["_meta"]["total"] == len(expected)
        assert response["X-Total-Count"] == str(len(expected))

    def test_filter_on_id_and_dates(self, api, thirty):
        first = thirty[0]

        by_id = get_list(api, where={"_id": first["_id"]})
        by_date = get_list(api, where={"_created": {"$gte": first["_created"]}}, max_results=50)

        assert ranks(by_id) == [10]
        assert len(ranks(by_date)) == 30

    def test_total_of_a_filter_on_id(self, api, thirty, on_nx_27017):
        known_departure(on_nx_27017, "count_documents with an ObjectId _id filter counts 0")

        assert get_list(api, where={"_id": thirty[0]["_id"]}).json()["_meta"]["total"] == 1

    @pytest.mark.parametrize(
        ("where", "fragment"),
        [
            ("not json", "JSON object"),
            ("[1, 2]", "JSON object"),
            ('{"$where": "sleep(1000)"}', "'$where' is not allowed"),
            ('{"bestseller_rank": {"$where": "1"}}', "'$where' is not allowed"),
            ('{"$expr": {"$gt": ["$a", 1]}}', "'$expr' is not allowed"),
            ('{"category": {"$function": {"body": "x"}}}', "'$function' is not allowed"),
            ('{"$accumulator": {}}', "'$accumulator' is not allowed"),
            ('{"category": {"$regex": "(a+)+$"}}', "'$regex' is not allowed"),
            ('{"password": 1}', "unknown field 'password'"),
            ('{"bestseller_rank": "ten"}', "'bestseller_rank' takes a number"),
            ('{"bestseller_rank": {"$in": 5}}', "$in on 'bestseller_rank'"),
            ('{"category": {"$ne": {"$gt": ""}}}', "object or a list"),
            ('{"_id": "nope"}', "24-hex-digit"),
            ('{"_created": "last week"}', "takes a date"),
            ('{"$or": []}', "$or takes a list"),
            ('{"bestseller_rank": {}}', "is empty"),
            ('{"bestseller_rank": {"$exists": "yes"}}', "true or false"),
            ('{"bestseller_rank": {"gt": 5}}', "must use operators"),
            ("[" * 5000 + "]" * 5000, "longer than"),
            ('{"$and": [' * 20 + "{}" + "]}" * 20, "nested more than"),
        ],
    )
    def test_malformed_or_disallowed_where_is_400_naming_the_problem(self, api, thirty, where, fragment):
        response = api.get("/estimations?" + urlencode({"where": where}))

        message = assert_error_envelope(response, 400)["_error"]["message"]
        assert "'where'" in message and fragment in message, message


class TestSort:
    @pytest.mark.parametrize(
        ("sort", "first_five"),
        [
            ('[("bestseller_rank", -1)]', [300, 290, 280, 270, 260]),
            ("[['bestseller_rank', 1]]", [10, 20, 30, 40, 50]),
            ("-bestseller_rank", [300, 290, 280, 270, 260]),
            ("category,-bestseller_rank", [300, 270, 240, 210, 180]),
            ('[("category", 1), ("bestseller_rank", 1)]', [30, 60, 90, 120, 150]),
        ],
    )
    def test_eve_and_comma_forms(self, api, thirty, sort, first_five):
        assert ranks(get_list(api, sort=sort, max_results=5)) == first_five

    def test_sort_on_the_estimate(self, api, thirty):
        by_sales = sorted(thirty, key=lambda item: -item["estimated_sales"])

        assert ranks(get_list(api, sort="-estimated_sales", max_results=30)) == [i["bestseller_rank"] for i in by_sales]

    @pytest.mark.parametrize(
        ("sort", "fragment"),
        [
            ("-password", "cannot sort on 'password'"),
            ('[("bestseller_rank", 2)]', "(field, 1 or -1) pair"),
            ('[("bestseller_rank",)]', "(field, 1 or -1) pair"),
            ("[(", "not a list"),
            ('[__import__("os")]', "not a list"),
            ("bestseller_rank,,category", "empty field name"),
            ("bestseller_rank,bestseller_rank", "twice"),
            ("a,b,c,d", "1 to 3 fields"),
        ],
    )
    def test_bad_sort_is_400_where_eve_ignored_it(self, api, sort, fragment):
        message = assert_error_envelope(get_list(api, sort=sort), 400)["_error"]["message"]

        assert "'sort'" in message and fragment in message, message


class TestProjection:
    def test_inclusion_keeps_only_the_named_fields_and_the_meta_fields(self, api, thirty):
        item = get_list(api, projection={"estimated_sales": 1}).json()["_items"][0]

        assert set(item) == {"_id", "estimated_sales", "_created", "_updated", "_etag", "_links"}

    def test_exclusion_drops_the_named_fields(self, api, thirty):
        item = get_list(api, projection={"category": 0, "model_version": 0}).json()["_items"][0]

        assert "category" not in item and "model_version" not in item
        assert {"bestseller_rank", "estimated_sales", "_etag"} <= set(item)

    @pytest.mark.parametrize(
        ("projection", "fragment"),
        [
            ('{"_etag": 0}', "cannot project '_etag'"),
            ('{"secret": 1}', "cannot project 'secret'"),
            ('{"category": 1, "bestseller_rank": 0}', "cannot mix"),
            ('{"category": 2}', "1 (include) or 0 (exclude)"),
            ('{"category": {"$slice": 1}}', "1 (include) or 0 (exclude)"),
            ("{}", "non-empty"),
            ("category", "JSON object"),
        ],
    )
    def test_bad_projection_is_400(self, api, projection, fragment):
        message = assert_error_envelope(api.get("/estimations?" + urlencode({"projection": projection})), 400)[
            "_error"
        ]["message"]

        assert "'projection'" in message and fragment in message, message


def follow(api, href: str):
    return api.get("/" + href)


class TestKeyset:
    """_links.after: the next page as a range on the sort key, alongside Eve's page links."""

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"sort": "-bestseller_rank"},
            {"sort": "category,-bestseller_rank"},
            {"sort": "-category,-bestseller_rank", "where": {"bestseller_rank": {"$gt": 40}}},
            {"sort": "-estimated_sales", "projection": {"estimated_sales": 0, "bestseller_rank": 0}},
        ],
    )
    def test_following_after_reads_the_sort_once_to_the_end(self, api, thirty, params):
        whole = get_list(api, max_results=50, **params).json()["_items"]
        seen, pages = [], 0
        response = get_list(api, max_results=7, **params)
        while True:
            body = response.json()
            assert response.status_code == HTTPStatus.OK, body
            seen += body["_items"]
            pages += 1
            assert body["_meta"]["page"] == pages and body["_meta"]["total"] == len(whole)
            if "after" not in body["_links"]:
                assert "next" not in body["_links"]
                break
            href = body["_links"]["after"]["href"]
            query = parse_qs(urlsplit(href).query)
            assert "page" not in query and query["max_results"] == ["7"]
            assert all(query[name] == [json.dumps(v) if isinstance(v, dict) else v] for name, v in params.items())
            if pages > 1:  # a page reached by after links on by after: next is the same link
                assert body["_links"]["next"]["href"] == href
            response = follow(api, href)

        assert [item["_id"] for item in seen] == [item["_id"] for item in whole]
        assert pages == -(-len(whole) // 7)
        if "projection" in params:  # the sort key it read to make the token is not shown
            assert all("estimated_sales" not in item for item in seen)

    def test_after_is_stable_under_inserts_before_the_cursor(self, api, thirty):
        first = get_list(api, sort="bestseller_rank", max_results=5).json()
        assert [item["bestseller_rank"] for item in first["_items"]] == [10, 20, 30, 40, 50]

        # Given estimations inserted meanwhile before the end of the first page
        assert post_json(api, [{"bestseller_rank": rank} for rank in (1, 2, 3)]).status_code == HTTPStatus.CREATED

        # Then after continues exactly after rank 50, where page=2 has moved
        assert ranks(follow(api, first["_links"]["after"]["href"])) == [60, 70, 80, 90, 100]
        assert ranks(follow(api, first["_links"]["next"]["href"])) == [30, 40, 50, 60, 70]

    def test_a_token_is_checked(self, api, thirty):
        import base64

        href = get_list(api, sort="-bestseller_rank", max_results=5).json()["_links"]["after"]["href"]
        token = parse_qs(urlsplit(href).query)["after"][0]
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))

        def encoded(value) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

        cases = [
            (token[:-3], "not a token"),
            ("%%%", "not a token"),
            (encoded({**payload, "k": [{"$oid": "zz"}, {"$oid": "zz"}]}), "not a token"),
            (encoded({**payload, "k": ["x", payload["k"][1]]}), "not a token"),
            (encoded({**payload, "k": payload["k"][:1]}), "not a token"),
            (encoded({**payload, "p": 0}), "not a token"),
            (encoded([1, 2]), "not a token"),
        ]
        for bad, fragment in cases:
            message = assert_error_envelope(get_list(api, sort="-bestseller_rank", after=bad), 400)["_error"]["message"]
            assert "'after'" in message and fragment in message, (bad, message)

        other_sort = get_list(api, sort="bestseller_rank", after=token)
        assert "made for sort=-bestseller_rank,-_id" in assert_error_envelope(other_sort, 400)["_error"]["message"]
        with_page = get_list(api, sort="-bestseller_rank", after=token, page=2)
        assert "cannot be combined with page" in assert_error_envelope(with_page, 400)["_error"]["message"]

    def test_a_page_past_the_skip_limit_is_refused_and_links_stop_before_it(self, api, thirty, settings):
        settings.PAGINATION_MAX_SKIP = 10

        message = assert_error_envelope(get_list(api, max_results=5, page=4), 400)["_error"]["message"]
        assert "'page'" in message and "skips 15 estimations, more than the 10" in message and "_links.after" in message

        # Page 3 (skipping 10) is the deepest: its next is the after link, and there is no last
        links = get_list(api, max_results=5, page=3).json()["_links"]
        assert links["next"]["href"] == links["after"]["href"] and "last" not in links
        assert ranks(follow(api, links["next"]["href"])) == [160, 170, 180, 190, 200]
        assert parse_qs(urlsplit(get_list(api, max_results=5, page=2).json()["_links"]["next"]["href"]).query)[
            "page"
        ] == ["3"]
