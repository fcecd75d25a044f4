"""POST with an Idempotency-Key: a retry returns the original estimation and stores nothing new."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus

import pytest
from django.test import Client

from estimations.services import MSG_IDEMPOTENCY_CONFLICT
from estimations.views import MSG_IDEMPOTENCY_BULK, MSG_IDEMPOTENCY_KEY

from .test_api_create import assert_error_envelope, post_json, stored_count


def post(api, body, key: str | None = "order-42", **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return post_json(api, body, **headers)


def test_a_retry_answers_the_original_and_stores_once(api, mongo_db):
    first = post(api, {"bestseller_rank": 70, "category": "books"})
    again = post(api, {"bestseller_rank": 70, "category": "books"})

    assert first.status_code == again.status_code == HTTPStatus.CREATED
    assert again.json()["_id"] == first.json()["_id"] and again.json()["_etag"] == first.json()["_etag"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert again["Location"] == first["Location"]
    assert stored_count(mongo_db) == 1


def test_the_key_is_never_shown(api):
    body = post(api, {"bestseller_rank": 70}).json()

    assert not any("idempotency" in field for field in body)
    listed = api.get("/estimations").json()["_items"][0]
    assert not any("idempotency" in field for field in listed)


def test_the_same_key_for_another_body_is_422_and_stores_nothing(api, mongo_db):
    post(api, {"bestseller_rank": 70, "category": "books"})

    response = post(api, {"bestseller_rank": 71, "category": "books"})

    assert assert_error_envelope(response, 422)["_error"]["message"] == MSG_IDEMPOTENCY_CONFLICT
    assert stored_count(mongo_db) == 1


def test_without_a_key_every_post_stores(api, mongo_db):
    post(api, {"bestseller_rank": 70}, key=None)
    post(api, {"bestseller_rank": 70}, key=None)

    assert stored_count(mongo_db) == 2


def test_keys_are_scoped_to_the_client(api, mongo_db, keys):
    anonymous = post(api, {"bestseller_rank": 70}).json()
    keyed = post(api, {"bestseller_rank": 70}, HTTP_AUTHORIZATION=f"Api-Key {keys['write']}").json()

    assert anonymous["_id"] != keyed["_id"]
    assert stored_count(mongo_db) == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, 'quote"', "new\nline"])
def test_a_malformed_key_is_400(api, mongo_db, key):
    response = post(api, {"bestseller_rank": 70}, key=key)

    assert assert_error_envelope(response, 400)["_error"]["message"] == MSG_IDEMPOTENCY_KEY
    assert stored_count(mongo_db) == 0


def test_bulk_with_a_key_is_400(api, mongo_db):
    response = post(api, [{"bestseller_rank": 1}])

    assert assert_error_envelope(response, 400)["_error"]["message"] == MSG_IDEMPOTENCY_BULK
    assert stored_count(mongo_db) == 0


@pytest.mark.integration
def test_concurrent_retries_insert_exactly_once(mongo_db, active_model, store_kind):
    if store_kind != "wire":
        pytest.skip("mongomock is not thread-safe; the unique index is tested over the wire")
    answers: list[tuple[int, str]] = []
    start = threading.Barrier(8)

    def retry():
        client = Client()
        start.wait()
        response = client.post(
            "/estimations",
            data=json.dumps({"bestseller_rank": 99, "category": "books"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="race-1",
        )
        answers.append((response.status_code, response.json()["_id"]))

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _ in answers] == [201] * 8
    assert len({object_id for _, object_id in answers}) == 1
    assert stored_count(mongo_db) == 1
