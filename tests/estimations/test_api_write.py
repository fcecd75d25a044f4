"""PUT, PATCH and DELETE of one estimation: If-Match (428/412), re-estimation, new etags."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from core.errors import MSG_IF_MATCH_REQUIRED, MSG_IF_MATCH_STALE
from estimations import validation
from ml.serving import get_estimator
from tests.helpers import assert_error_envelope, post_json, send, stored


@pytest.fixture
def created(api):
    response = post_json(api, {"bestseller_rank": 400, "category": "books"})
    assert response.status_code == HTTPStatus.CREATED, response.json()
    return response.json()


class TestDelete:
    def test_without_if_match_is_428_and_nothing_is_deleted(self, api, mongo_db, created):
        response = send(api, "delete", created, if_match=None)

        assert assert_error_envelope(response, 428)["_error"]["message"] == MSG_IF_MATCH_REQUIRED
        assert stored(mongo_db, created) is not None

    def test_with_a_stale_etag_is_412_and_nothing_is_deleted(self, api, mongo_db, created):
        response = send(api, "delete", created, if_match='"0123456789"')

        assert assert_error_envelope(response, 412)["_error"]["message"] == MSG_IF_MATCH_STALE
        assert stored(mongo_db, created) is not None

    @pytest.mark.parametrize("form", ["{etag}", '"{etag}"', 'W/"{etag}"', '"x", "{etag}"', "*"])
    def test_with_the_current_etag_is_204_and_the_document_is_gone(self, api, mongo_db, created, form):
        response = send(api, "delete", created, if_match=form.format(etag=created["_etag"]))

        assert response.status_code == HTTPStatus.NO_CONTENT, response.content
        assert response.content == b""
        assert stored(mongo_db, created) is None
        assert_error_envelope(api.get(f"/estimations/{created['_id']}"), 404)

    def test_unknown_id_is_404_even_with_an_etag(self, api, created):
        response = api.delete("/estimations/6b0aa8a7e49da0a6640161ec", HTTP_IF_MATCH=created["_etag"])

        assert_error_envelope(response, 404)

    def test_second_delete_with_the_same_etag_is_404(self, api, created):
        assert send(api, "delete", created).status_code == HTTPStatus.NO_CONTENT
        assert_error_envelope(send(api, "delete", created), 404)


class TestPut:
    def test_replaces_the_input_re_estimates_and_returns_a_new_etag(self, api, mongo_db, created):
        response = send(api, "put", created, {"bestseller_rank": 20, "category": "electronics"})

        assert response.status_code == HTTPStatus.OK, response.json()
        body = response.json()
        assert body["_status"] == "OK"
        assert body["bestseller_rank"] == 20 and body["category"] == "electronics"
        assert body["estimated_sales"] == get_estimator().estimate(20, "electronics").sales
        assert body["_etag"] != created["_etag"]
        assert response["ETag"] == f'"{body["_etag"]}"'
        assert body["_created"] == created["_created"]
        document = stored(mongo_db, created)
        assert document["_etag"] == body["_etag"] and document["bestseller_rank"] == 20

    def test_the_old_etag_no_longer_works(self, api, created):
        assert send(api, "put", created, {"bestseller_rank": 21}).status_code == HTTPStatus.OK

        assert_error_envelope(send(api, "put", created, {"bestseller_rank": 22}), 412)

    def test_same_input_again_still_gets_a_fresh_etag_and_update_time(self, api, created):
        body = send(api, "put", created, {"bestseller_rank": 400, "category": "books"}).json()

        assert body["_etag"] != created["_etag"]

    def test_missing_category_takes_the_default_like_post(self, api, created, settings):
        settings.DEFAULT_CATEGORY = "beauty"

        assert send(api, "put", created, {"bestseller_rank": 5}).json()["category"] == "beauty"

    def test_without_if_match_is_428(self, api, mongo_db, created):
        assert_error_envelope(send(api, "put", created, {"bestseller_rank": 1}, if_match=None), 428)
        assert stored(mongo_db, created)["bestseller_rank"] == 400

    def test_stale_etag_is_412_and_changes_nothing(self, api, mongo_db, created):
        assert_error_envelope(send(api, "put", created, {"bestseller_rank": 1}, if_match="stale"), 412)
        assert stored(mongo_db, created)["_etag"] == created["_etag"]

    def test_invalid_body_is_422_and_changes_nothing(self, api, mongo_db, created):
        response = send(api, "put", created, {"bestseller_rank": 0})

        assert assert_error_envelope(response, 422)["_issues"] == {"bestseller_rank": validation.ISSUE_MIN}
        assert stored(mongo_db, created)["_etag"] == created["_etag"]

    def test_unknown_id_is_404(self, api, created):
        response = api.put(
            "/estimations/6b0aa8a7e49da0a6640161ec",
            data=json.dumps({"bestseller_rank": 3}),
            content_type="application/json",
            HTTP_IF_MATCH="*",
        )

        assert_error_envelope(response, 404)

    def test_a_list_body_is_422(self, api, created):
        response = send(api, "put", created, [{"bestseller_rank": 3}])

        assert assert_error_envelope(response, 422)["_issues"] == {
            validation.ISSUE_DOCUMENT: validation.ISSUE_NOT_OBJECT
        }


class TestPatch:
    def test_changes_one_field_keeps_the_other_and_re_estimates(self, api, mongo_db, created):
        response = send(api, "patch", created, {"category": "pet_supplies"})

        assert response.status_code == HTTPStatus.OK, response.json()
        body = response.json()
        assert body["bestseller_rank"] == 400 and body["category"] == "pet_supplies"
        assert body["estimated_sales"] == get_estimator().estimate(400, "pet_supplies").sales
        assert body["_etag"] != created["_etag"]
        assert stored(mongo_db, created)["category"] == "pet_supplies"

    def test_patching_the_estimate_itself_is_refused(self, api, created):
        response = send(api, "patch", created, {"estimated_sales": 1})

        assert assert_error_envelope(response, 422)["_issues"] == {"estimated_sales": validation.ISSUE_READ_ONLY}

    def test_without_if_match_is_428_and_stale_is_412(self, api, created):
        assert_error_envelope(send(api, "patch", created, {"bestseller_rank": 2}, if_match=None), 428)
        assert_error_envelope(send(api, "patch", created, {"bestseller_rank": 2}, if_match="stale"), 412)

    def test_conditional_on_the_version_read_when_another_write_lands_in_between(self, api, mongo_db, created):
        # Given a client that read the document, and another write that changes it afterwards
        from estimations.store import EstimationStore, estimation_store

        real_replace = EstimationStore.replace_if_match

        def racing_replace(self, document, etags):
            self.collection.update_one({}, {"$set": {"_etag": "changed-by-someone-else"}})
            return real_replace(self, document, etags)

        # When the PATCH's conditional replace runs after the other write
        EstimationStore.replace_if_match = racing_replace
        try:
            response = send(api, "patch", created, {"bestseller_rank": 2}, if_match="*")
        finally:
            EstimationStore.replace_if_match = real_replace

        # Then the PATCH loses with 412 and the other write stands
        assert_error_envelope(response, 412)
        assert stored(mongo_db, created)["_etag"] == "changed-by-someone-else"
        assert estimation_store().get(created["_id"])["bestseller_rank"] == 400


class TestCategoryTheActiveModelDropped:
    """An estimation made by a model that knew a category the active one does not."""

    @pytest.fixture
    def legacy(self, api, mongo_db, created):
        from bson import ObjectId

        mongo_db["estimations"].update_one({"_id": ObjectId(created["_id"])}, {"$set": {"category": "garden"}})
        return api.get(f"/estimations/{created['_id']}").json()

    def test_a_new_rank_cannot_be_estimated_and_is_422_not_500(self, api, mongo_db, legacy):
        response = send(api, "patch", legacy, {"bestseller_rank": 5})

        issues = assert_error_envelope(response, 422)["_issues"]
        assert issues["category"].startswith("unallowed value 'garden'")
        assert stored(mongo_db, legacy)["bestseller_rank"] == 400

    def test_recording_actuals_still_works(self, api, legacy):
        response = send(api, "patch", legacy, {"actual_sales": 3, "actual_period": "2026-01"})

        assert response.status_code == HTTPStatus.OK and response.json()["category"] == "garden"
