"""POST with an Idempotency-Key: a retry returns the estimation it stored (as it is now, also after PUT or
PATCH) and stores nothing new."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus

import pytest
from django.test import Client

from estimations.services import MSG_IDEMPOTENCY_CONFLICT
from estimations.views import MSG_IDEMPOTENCY_BULK, MSG_IDEMPOTENCY_KEY
from tests.helpers import assert_error_envelope, post_json, stored_count


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


# --- the key through updates (the review: a PATCH dropped it, and a retry stored a duplicate) ----------

ORIGINAL = {"bestseller_rank": 70, "category": "books"}
UPDATES = {
    "patch actuals": ("patch", {"actual_sales": 5100, "actual_period": "2026-10"}),
    "patch rank": ("patch", {"bestseller_rank": 900}),
    "put": ("put", {"bestseller_rank": 900, "category": "toys_games", "sku": "TOY-1"}),
}


def update(api, created: dict, method: str, body: dict):
    response = getattr(api, method)(
        f"/estimations/{created['_id']}",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IF_MATCH=created["_etag"],
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def stored_document(mongo_db) -> dict:
    (document,) = mongo_db["estimations"].find()
    return document


@pytest.mark.parametrize("change", UPDATES, ids=list(UPDATES))
def test_a_retry_after_an_update_replays_the_estimation_and_stores_no_copy(api, mongo_db, change):
    method, body = UPDATES[change]
    first = post(api, ORIGINAL)
    updated = update(api, first.json(), method, body)

    again = post(api, ORIGINAL)

    assert again.status_code == HTTPStatus.CREATED, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"] and again.json()["_id"] == first.json()["_id"]
    # The body is the estimation as it is now, with its current etag for the next conditional write.
    assert {name: again.json()[name] for name in body} == body
    assert again.json()["_etag"] == updated["_etag"] and again["ETag"] == f'"{updated["_etag"]}"'
    assert stored_count(mongo_db) == 1


@pytest.mark.parametrize("change", UPDATES, ids=list(UPDATES))
def test_the_key_stays_with_the_document_through_put_and_patch(api, mongo_db, change):
    from estimations.store import IDEMPOTENCY_FIELDS

    method, body = UPDATES[change]
    first = post(api, ORIGINAL)
    before = {name: stored_document(mongo_db)[name] for name in IDEMPOTENCY_FIELDS}

    second = update(api, first.json(), method, body)
    update(api, second, "patch", {"sku": "AFTER-TWO-UPDATES"})

    assert {name: stored_document(mongo_db).get(name) for name in IDEMPOTENCY_FIELDS} == before
    assert before["_idempotency_key"] == "anonymous:order-42"


def test_after_an_update_the_key_still_refuses_another_body(api, mongo_db):
    first = post(api, ORIGINAL)
    update(api, first.json(), "put", {"bestseller_rank": 900, "category": "books"})

    # Not even the body the document now has: the key belongs to the POST that made it.
    response = post(api, {"bestseller_rank": 900, "category": "books"})

    assert assert_error_envelope(response, 422)["_error"]["message"] == MSG_IDEMPOTENCY_CONFLICT
    assert stored_count(mongo_db) == 1


def test_a_document_stored_with_its_key_only_is_still_replayed(api, mongo_db):
    # Stored before the input digest existed: a retry is checked against the document's input fields.
    from estimations.store import IDEMPOTENCY_INPUT

    first = post(api, ORIGINAL)
    mongo_db["estimations"].update_one({}, {"$unset": {IDEMPOTENCY_INPUT: ""}})

    again = post(api, ORIGINAL)
    other = post(api, {"bestseller_rank": 71, "category": "books"})

    assert again.status_code == HTTPStatus.CREATED and again["Idempotent-Replayed"] == "true"
    assert again.json()["_id"] == first.json()["_id"]
    assert assert_error_envelope(other, 422)["_error"]["message"] == MSG_IDEMPOTENCY_CONFLICT
    assert stored_count(mongo_db) == 1


@pytest.mark.integration
def test_retries_racing_updates_insert_nothing_and_one_update_wins(mongo_db, active_model, store_kind):
    if store_kind != "wire":
        pytest.skip("mongomock is not thread-safe; the race is tested over the wire")
    created = Client().post(
        "/estimations", data=json.dumps(ORIGINAL), content_type="application/json", HTTP_IDEMPOTENCY_KEY="race-2"
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    etag, url = created.json()["_etag"], f"/estimations/{created.json()['_id']}"
    retries: list[tuple[int, str]] = []
    updates: list[int] = []
    start = threading.Barrier(8)

    def retry():
        client = Client()
        start.wait()
        response = client.post(
            "/estimations", data=json.dumps(ORIGINAL), content_type="application/json", HTTP_IDEMPOTENCY_KEY="race-2"
        )
        retries.append((response.status_code, response.json()["_id"]))

    def patch(rank: int):
        client = Client()
        start.wait()
        response = client.patch(
            url, data=json.dumps({"bestseller_rank": rank}), content_type="application/json", HTTP_IF_MATCH=etag
        )
        updates.append(response.status_code)

    threads = [threading.Thread(target=retry) for _ in range(4)]
    threads += [threading.Thread(target=patch, args=(100 + n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert retries == [(201, created.json()["_id"])] * 4
    assert sorted(updates) == [200, 412, 412, 412]
    assert stored_count(mongo_db) == 1
    assert stored_document(mongo_db)["_idempotency_key"] == "anonymous:race-2"
