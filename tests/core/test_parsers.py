"""core/parsers.py: request bodies read within MAX_BODY_BYTES, and what a body that cannot be read says."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.exceptions import ParseError

from core.errors import PayloadTooLarge
from core.parsers import (
    MSG_JSON_AS_FORM,
    MSG_NOT_UTF8,
    MSG_TOO_DEEP,
    LimitedFormParser,
    LimitedJSONParser,
    read_limited,
)
from estimations import validation
from tests.helpers import URL, assert_error_envelope, stored_count


def parse_json(raw: bytes):
    return LimitedJSONParser().parse(io.BytesIO(raw))


def test_read_limited_reads_up_to_the_limit_and_refuses_a_byte_more():
    assert read_limited(None, 5) == b""
    assert read_limited(io.BytesIO(b"12345"), 5) == b"12345"
    with pytest.raises(PayloadTooLarge, match="larger than the 5 bytes"):
        read_limited(io.BytesIO(b"123456"), 5)


def test_json_is_parsed_as_json():
    assert parse_json(b'{"bestseller_rank": 70, "category": "books"}') == {"bestseller_rank": 70, "category": "books"}


def test_a_json_body_over_max_body_bytes_is_413(settings):
    settings.MAX_BODY_BYTES = 20

    with pytest.raises(PayloadTooLarge):
        parse_json(b'{"bestseller_rank": 70, "category": "books"}')


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_the_infinities_are_not_json(constant):
    with pytest.raises(ParseError, match="is not a JSON value"):
        parse_json(b'{"bestseller_rank": ' + constant + b"}")


def test_a_body_not_in_utf8_says_so():
    with pytest.raises(ParseError) as refused:
        parse_json('{"category": "büch"}'.encode("latin-1"))

    assert refused.value.detail == MSG_NOT_UTF8


def test_a_nesting_bomb_is_a_parse_error_not_a_recursion_error():
    with pytest.raises(ParseError) as refused:
        parse_json(b"[" * 100_000 + b"]" * 100_000)

    assert refused.value.detail == MSG_TOO_DEEP


def test_a_form_is_read_as_fields():
    form = LimitedFormParser().parse(io.BytesIO(b"bestseller_rank=70&category=books"))

    assert form["bestseller_rank"] == "70" and form["category"] == "books"


@pytest.mark.parametrize("body", [b'{"bestseller_rank": 70}', b'  [{"bestseller_rank": 70}]'])
def test_a_json_body_in_a_form_is_refused_naming_the_content_type(body):
    with pytest.raises(ParseError) as refused:
        LimitedFormParser().parse(io.BytesIO(body))

    assert refused.value.detail == MSG_JSON_AS_FORM


class TestMalformedRequests:
    def test_json_sent_as_a_form_says_which_content_type_to_send(self, api, mongo_db):
        # curl -X POST .../estimations -d '{"bestseller_rank": 70}': curl's -d sends a form by default
        response = api.post(URL, data='{"bestseller_rank": 70}', content_type="application/x-www-form-urlencoded")

        message = assert_error_envelope(response, 400)["_error"]["message"]
        assert "looks like JSON" in message and "Content-Type: application/json" in message
        assert mongo_db["estimations"].count_documents({}) == 0

    def test_malformed_json_is_400(self, api, mongo_db):
        response = api.post(URL, data='{"bestseller_rank": 70', content_type="application/json")

        assert "not valid JSON" in assert_error_envelope(response, 400)["_error"]["message"]

    def test_nesting_bomb_is_400_not_500(self, api, mongo_db):
        response = api.post(URL, data="[" * 100_000 + "]" * 100_000, content_type="application/json")

        assert_error_envelope(response, 400)

    @pytest.mark.parametrize("body", ["70", '"books"', "null", "true"])
    def test_a_body_that_is_not_an_object_or_list_is_400(self, api, mongo_db, body):
        response = api.post(URL, data=body, content_type="application/json")

        assert "JSON object" in assert_error_envelope(response, 400)["_error"]["message"]

    def test_nan_is_not_json(self, api, mongo_db):
        response = api.post(URL, data='{"bestseller_rank": NaN}', content_type="application/json")

        assert_error_envelope(response, 400)

    def test_wrong_content_type_is_415(self, api, mongo_db):
        response = api.post(URL, data="bestseller_rank=70", content_type="text/plain")

        assert "text/plain" in assert_error_envelope(response, 415)["_error"]["message"]

    def test_body_over_the_limit_is_413(self, api, mongo_db, settings):
        settings.MAX_BODY_BYTES = 1000

        response = api.post(
            URL, data=json.dumps({"bestseller_rank": 1, "pad": "x" * 2000}), content_type="application/json"
        )

        assert "1000 bytes" in assert_error_envelope(response, 413)["_error"]["message"]
        assert stored_count(mongo_db) == 0

    def test_empty_body_reports_the_required_field(self, api, mongo_db):
        response = api.post(URL, data="", content_type="application/json")

        assert assert_error_envelope(response, 422)["_issues"] == {"bestseller_rank": validation.ISSUE_REQUIRED}
