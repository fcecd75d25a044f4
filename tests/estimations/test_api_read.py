"""GET of the home endpoint and of one estimation: links, etags, conditional GET, cache headers, CORS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from estimations.selectors import MSG_NO_ESTIMATION
from tests.helpers import assert_error_envelope, post_json


@pytest.fixture
def created(api):
    response = post_json(api, {"bestseller_rank": 250, "category": "home_kitchen"})
    assert response.status_code == HTTPStatus.CREATED, response.json()
    return response.json()


class TestHome:
    def test_lists_the_resources_like_eves_home(self, api):
        response = api.get("/")

        assert response.status_code == HTTPStatus.OK
        assert response.json() == {
            "_links": {
                "child": [{"title": "estimations", "href": "estimations"}, {"title": "models", "href": "models"}]
            }
        }


class TestGetOne:
    def test_document_with_item_links_etag_and_last_modified(self, api, created):
        response = api.get(f"/estimations/{created['_id']}")

        assert response.status_code == HTTPStatus.OK
        body = response.json()
        assert body["_links"] == {
            "self": {"title": "estimations", "href": f"estimations/{created['_id']}"},
            "parent": {"title": "home", "href": "/"},
            "collection": {"title": "estimations", "href": "estimations"},
        }
        assert response["ETag"] == f'"{created["_etag"]}"'
        assert response["Last-Modified"] == created["_updated"]

    def test_trailing_slash_is_accepted(self, api, created):
        assert api.get(f"/estimations/{created['_id']}/").status_code == HTTPStatus.OK
        assert api.get("/estimations/").status_code == HTTPStatus.OK

    @pytest.mark.parametrize(
        "bad_id",
        ["6b0aa8a7e49da0a6640161ec", "not-an-id", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "%00", "x" * 500],
    )
    def test_unknown_or_malformed_id_is_404_in_the_envelope(self, api, created, bad_id):
        response = api.get(f"/estimations/{bad_id}")

        assert assert_error_envelope(response, 404)["_error"]["message"] == MSG_NO_ESTIMATION

    def test_unknown_url_is_404_in_the_envelope(self, api):
        assert_error_envelope(api.get("/no/such/thing"), 404)

    def test_head_answers_headers_without_a_body(self, api, created):
        response = api.head(f"/estimations/{created['_id']}")

        assert response.status_code == HTTPStatus.OK
        assert response["ETag"] == f'"{created["_etag"]}"'
        assert response.content == b""

    def test_head_hands_the_server_no_body_bytes_and_keeps_the_length(self, api, created):
        # Django's test client drops a HEAD body itself; the WSGI handler, as gunicorn runs it, does not.
        path = f"/estimations/{created['_id']}"
        answered = []
        environ = RequestFactory().head(path).environ
        body = b"".join(WSGIHandler()(environ, lambda status, headers, exc_info=None: answered.extend(headers)))

        assert body == b""
        assert dict(answered)["Content-Length"] == str(len(api.get(path).content))


class TestConditionalGet:
    @pytest.mark.parametrize("form", ['"{etag}"', "{etag}", 'W/"{etag}"', '"other", "{etag}"', "*"])
    def test_if_none_match_with_the_current_etag_is_304(self, api, created, form):
        response = api.get(f"/estimations/{created['_id']}", HTTP_IF_NONE_MATCH=form.format(etag=created["_etag"]))

        assert response.status_code == HTTPStatus.NOT_MODIFIED
        assert response.content == b""
        assert response["ETag"] == f'"{created["_etag"]}"'

    def test_if_none_match_with_another_etag_is_200(self, api, created):
        response = api.get(f"/estimations/{created['_id']}", HTTP_IF_NONE_MATCH='"stale"')

        assert response.status_code == HTTPStatus.OK
        assert response.json()["_id"] == created["_id"]

    def test_if_modified_since_now_is_304_and_before_is_200(self, api, created):
        updated = parsedate_to_datetime(created["_updated"])
        earlier = format_datetime(updated - timedelta(seconds=1), usegmt=True)

        unchanged = api.get(f"/estimations/{created['_id']}", HTTP_IF_MODIFIED_SINCE=created["_updated"])
        changed = api.get(f"/estimations/{created['_id']}", HTTP_IF_MODIFIED_SINCE=earlier)

        assert unchanged.status_code == HTTPStatus.NOT_MODIFIED
        assert changed.status_code == HTTPStatus.OK

    def test_if_none_match_wins_over_if_modified_since(self, api, created):
        response = api.get(
            f"/estimations/{created['_id']}", HTTP_IF_NONE_MATCH='"stale"', HTTP_IF_MODIFIED_SINCE=created["_updated"]
        )

        assert response.status_code == HTTPStatus.OK

    def test_unparseable_if_modified_since_is_ignored(self, api, created):
        response = api.get(f"/estimations/{created['_id']}", HTTP_IF_MODIFIED_SINCE="yesterday-ish")

        assert response.status_code == HTTPStatus.OK


class TestCacheHeaders:
    @pytest.mark.parametrize("path", ["/", "/estimations", "/estimations?max_results=1"])
    def test_every_get_carries_eves_cache_control_and_expires(self, api, created, path):
        before = datetime.now(UTC).replace(microsecond=0)

        response = api.get(path)

        assert response.status_code == HTTPStatus.OK
        assert response["Cache-Control"] == "max-age=20"
        expires = parsedate_to_datetime(response["Expires"])
        assert before + timedelta(seconds=19) <= expires <= before + timedelta(seconds=22)

    def test_item_get_and_304_carry_them_too(self, api, created):
        url = f"/estimations/{created['_id']}"
        assert api.get(url)["Cache-Control"] == "max-age=20"
        assert api.get(url, HTTP_IF_NONE_MATCH=created["_etag"])["Cache-Control"] == "max-age=20"

    def test_configurable(self, api, created, settings):
        settings.CACHE_CONTROL = "no-cache"
        settings.CACHE_EXPIRES = 0

        response = api.get("/estimations")

        assert response["Cache-Control"] == "no-cache"
        assert abs((parsedate_to_datetime(response["Expires"]) - datetime.now(UTC)).total_seconds()) < 3

    def test_writes_and_errors_are_not_marked_cacheable(self, api, created):
        assert "Cache-Control" not in post_json(api, {"bestseller_rank": 3})
        assert "Cache-Control" not in api.get("/estimations/6b0aa8a7e49da0a6640161ec")


class TestCors:
    def test_preflight_is_answered_with_the_tutorials_headers(self, api):
        response = api.options(
            "/estimations",
            HTTP_ORIGIN="https://shop.example",
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, if-match",
        )

        assert response.status_code == HTTPStatus.OK
        assert response["Access-Control-Allow-Origin"] == "*"
        allowed = {header.strip().lower() for header in response["Access-Control-Allow-Headers"].split(",")}
        assert {"content-type", "authorization", "if-match", "if-none-match"} <= allowed
        assert "POST" in response["Access-Control-Allow-Methods"]

    def test_simple_request_exposes_etag_and_location(self, api):
        response = post_json(api, {"bestseller_rank": 9}, HTTP_ORIGIN="https://shop.example")

        assert response["Access-Control-Allow-Origin"] == "*"
        exposed = {header.strip().lower() for header in response["Access-Control-Expose-Headers"].split(",")}
        assert {"etag", "location", "last-modified", "x-total-count"} <= exposed


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path", "allowed"),
        [
            ("delete", "/estimations", {"GET", "POST", "HEAD", "OPTIONS"}),
            ("put", "/estimations", {"GET", "POST", "HEAD", "OPTIONS"}),
            ("post", "/estimations/6b0aa8a7e49da0a6640161ec", {"GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}),
            ("post", "/", {"GET", "HEAD", "OPTIONS"}),
        ],
    )
    def test_405_with_allow_header_in_the_envelope(self, api, method, path, allowed):
        response = getattr(api, method)(path, data=json.dumps({}), content_type="application/json")

        assert_error_envelope(response, 405)
        assert {item.strip() for item in response["Allow"].split(",")} == allowed


def test_an_origin_outside_a_configured_list_gets_no_cors_grant(api, settings):
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]

    allowed = api.get("/estimations", HTTP_ORIGIN="https://shop.example")
    other = api.get("/estimations", HTTP_ORIGIN="https://evil.example")

    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Access-Control-Allow-Origin" not in other
