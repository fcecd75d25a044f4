"""POST /estimations: one document, bulk insert, validation and the error envelope."""

from __future__ import annotations

from http import HTTPStatus

from django.test import RequestFactory, override_settings

from core.errors import MSG_BULK_TOO_LARGE, MSG_VALIDATION
from estimations import validation
from estimations.services import MSG_EMPTY_BULK
from ml.serving import get_estimator
from tests.helpers import URL, assert_error_envelope, post_json, stored_count


class TestCreateOne:
    def test_created_with_eve_meta_fields_location_and_estimate(self, api, mongo_db):
        response = post_json(api, {"bestseller_rank": 70, "category": "books"})

        assert response.status_code == HTTPStatus.CREATED, response.json()
        body = response.json()
        assert body["_status"] == "OK"
        assert len(body["_id"]) == 24
        assert body["_links"] == {"self": {"title": "estimations", "href": f"estimations/{body['_id']}"}}
        assert body["_created"].endswith(" GMT") and body["_created"] == body["_updated"]
        assert len(body["_etag"]) == 40
        assert body["bestseller_rank"] == 70 and body["category"] == "books"
        assert body["estimated_sales"] == get_estimator().estimate(70, "books").sales
        assert body["model_version"] == get_estimator().version
        assert response["Location"] == f"http://testserver/estimations/{body['_id']}"
        assert response["ETag"] == f'"{body["_etag"]}"'

    def test_location_behind_a_tls_proxy_is_what_django_would_build(self, api, mongo_db, settings):
        settings.ALLOWED_HOSTS = ["api.example.com"]
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        headers = {"HTTP_HOST": "API.example.com:8443", "HTTP_X_FORWARDED_PROTO": "https"}

        response = post_json(api, {"bestseller_rank": 70}, **headers)

        assert response.status_code == HTTPStatus.CREATED, response.json()
        href = f"/estimations/{response.json()['_id']}"
        assert response["Location"] == RequestFactory().get("/", **headers).build_absolute_uri(href)
        assert response["Location"] == f"https://API.example.com:8443{href}"

    def test_the_tutorials_body_without_category_stores_the_default(self, api, mongo_db, settings):
        settings.DEFAULT_CATEGORY = "toys_games"

        response = post_json(api, {"bestseller_rank": 70})

        assert response.status_code == HTTPStatus.CREATED, response.json()
        assert response.json()["category"] == "toys_games"
        stored = mongo_db["estimations"].find_one()
        assert stored["category"] == "toys_games"
        assert stored["estimated_sales"] == get_estimator().estimate(70, "toys_games").sales

    def test_what_is_stored_is_what_get_returns(self, api, mongo_db):
        created = post_json(api, {"bestseller_rank": 1234, "category": "electronics"}).json()

        fetched = api.get(f"{URL}/{created['_id']}").json()

        for field in ("_id", "bestseller_rank", "category", "estimated_sales", "_etag", "_created", "_updated"):
            assert fetched[field] == created[field], field

    def test_html_form_post_from_the_browsable_api(self, api, mongo_db):
        response = api.post(
            URL, data={"bestseller_rank": "500", "category": "beauty", "csrfmiddlewaretoken": "x"}, format="multipart"
        )

        assert response.status_code == HTTPStatus.CREATED, response.content
        assert response.json()["bestseller_rank"] == 500
        assert response.json()["category"] == "beauty"

    def test_a_forms_empty_sku_is_no_sku_while_json_refuses_it(self, api, mongo_db):
        # The browsable API's form has an optional sku input: left empty, the form still sends it.
        response = api.post(URL, data={"bestseller_rank": "500", "sku": ""}, format="multipart")

        assert response.status_code == HTTPStatus.CREATED, response.content
        assert "sku" not in response.json() and "sku" not in mongo_db["estimations"].find_one({})
        refused = post_json(api, {"bestseller_rank": 500, "sku": ""})
        assert assert_error_envelope(refused, 422)["_issues"] == {"sku": validation.ISSUE_EMPTY}

    def test_the_browsable_form_asks_for_an_optional_sku(self, api, active_model):
        html = api.get(URL, HTTP_ACCEPT="text/html").content.decode()

        form = html[html.index('id="post-object-form"') : html.index('id="post-generic-content-form"')]
        assert 'name="sku"' in form and 'name="category"' in form and 'name="bestseller_rank"' in form

    def test_a_forms_actuals_are_numbers(self, api, mongo_db):
        form = {"bestseller_rank": "500", "sku": "A-1", "actual_sales": "12", "actual_period": "2026-01"}

        body = api.post(URL, data=form, format="multipart").json()

        assert (body["sku"], body["actual_sales"], body["actual_period"]) == ("A-1", 12, "2026-01")


class TestBulkInsert:
    def test_a_list_inserts_every_document(self, api, mongo_db):
        items = [{"bestseller_rank": rank, "category": "books"} for rank in (1, 10, 100)] + [{"bestseller_rank": 5}]

        response = post_json(api, items)

        assert response.status_code == HTTPStatus.CREATED, response.json()
        body = response.json()
        assert body["_status"] == "OK"
        assert [item["_status"] for item in body["_items"]] == ["OK"] * 4
        assert [item["bestseller_rank"] for item in body["_items"]] == [1, 10, 100, 5]
        assert body["_items"][0]["estimated_sales"] == get_estimator().estimate(1, "books").sales
        assert stored_count(mongo_db) == 4
        for item in body["_items"]:
            assert api.get(f"{URL}/{item['_id']}").json()["_etag"] == item["_etag"]

    def test_a_lists_documents_share_one_creation_moment_as_in_eve(self, api, mongo_db):
        response = post_json(api, [{"bestseller_rank": rank, "category": "books"} for rank in range(1, 51)])

        assert response.status_code == HTTPStatus.CREATED, response.json()
        items = response.json()["_items"]
        assert len({(item["_created"], item["_updated"]) for item in items}) == 1
        stored = list(mongo_db["estimations"].find({}, {"_created": 1, "_updated": 1, "_id": 0}))
        assert len(stored) == 50 and all(doc == stored[0] for doc in stored)
        assert len({item["_etag"] for item in items}) == 50  # the content differs, so do the etags

    def test_one_invalid_item_stores_nothing_and_reports_each_item(self, api, mongo_db):
        items = [{"bestseller_rank": 1}, {"bestseller_rank": "x"}, {"bestseller_rank": 3}, "oops"]

        response = post_json(api, items)

        envelope = assert_error_envelope(response, 422)
        assert envelope["_error"]["message"] == MSG_VALIDATION.format(count=2)
        assert envelope["_items"] == [
            {"_status": "OK"},
            {"_status": "ERR", "_issues": {"bestseller_rank": validation.ISSUE_INTEGER}},
            {"_status": "OK"},
            {"_status": "ERR", "_issues": {validation.ISSUE_DOCUMENT: validation.ISSUE_NOT_OBJECT}},
        ]
        assert stored_count(mongo_db) == 0

    def test_empty_list_is_422(self, api, mongo_db):
        response = post_json(api, [])

        assert assert_error_envelope(response, 422)["_error"]["message"] == MSG_EMPTY_BULK

    def test_more_than_the_configured_maximum_is_413(self, api, mongo_db):
        with override_settings(BULK_MAX_ITEMS=3):
            response = post_json(api, [{"bestseller_rank": 1}] * 4)

        message = assert_error_envelope(response, 413)["_error"]["message"]
        assert message == MSG_BULK_TOO_LARGE.format(limit=3, count=4)
        assert stored_count(mongo_db) == 0


class TestModel:
    def test_an_old_clients_answer_from_the_real_model_has_only_marketplace_added(self, api, active_model):
        body = post_json(api, {"bestseller_rank": 1000, "category": "books"}).json()
        before_issue_21 = {
            "_id", "bestseller_rank", "category", "estimated_sales", "estimated_sales_low", "estimated_sales_high",
            "extrapolated", "model_version", "_created", "_updated", "_etag", "_links", "_status",
        }  # fmt: skip

        assert set(body) == before_issue_21 | {"marketplace"} and body["marketplace"] == "us"

    def test_every_estimate_records_its_interval_and_model_version(self, api, active_model):
        body = post_json(api, {"bestseller_rank": 1000, "category": "books"}).json()

        expected = get_estimator().estimate(1000, "books")
        shown = (
            body["estimated_sales"],
            body["estimated_sales_low"],
            body["estimated_sales_high"],
            body["extrapolated"],
        )
        assert shown == tuple(expected)[:4]
        assert "estimated_daily_sales" not in body  # a rank's answer is as before rank histories
        assert body["extrapolated"] is False
        assert body["estimated_sales_low"] < body["estimated_sales"] < body["estimated_sales_high"]
        assert body["model_version"] == active_model["version"]

    def test_without_an_active_model_writes_answer_503_saying_how_to_train(self, api_without_model, mongo_db):
        from ml.serving import MSG_NO_MODEL

        response = post_json(api_without_model, {"bestseller_rank": 5})

        assert assert_error_envelope(response, 503)["_error"]["message"] == MSG_NO_MODEL
        assert "train_model" in MSG_NO_MODEL
        assert stored_count(mongo_db) == 0

    def test_without_an_active_model_reads_still_work(self, api_without_model):
        assert api_without_model.get("/estimations").status_code == HTTPStatus.OK
        assert api_without_model.get("/estimations", HTTP_ACCEPT="text/html").status_code == HTTPStatus.OK
