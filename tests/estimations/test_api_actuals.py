"""Actual sales recorded on an estimation, the SKU, the extrapolation flag and the retention mark."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.test import override_settings

from estimations import validation
from estimations.documents import EXPIRES_FROM
from ml import serving
from tests.helpers import URL, assert_error_envelope, post_json, send, stored

ACTUALS = {"actual_sales": 480, "actual_period": "2026-10"}
TOGETHER = validation.ISSUE_ACTUALS_TOGETHER


@pytest.fixture
def created(api):
    response = post_json(api, {"bestseller_rank": 400, "category": "books", "sku": "B0-MUG-01"})
    assert response.status_code == HTTPStatus.CREATED, response.json()
    return response.json()


def listed(api, where: dict) -> list[dict]:
    response = api.get(URL, {"where": json.dumps(where)})
    assert response.status_code == HTTPStatus.OK, response.json()
    return response.json()["_items"]


class TestRecordingActuals:
    def test_patch_records_them_and_keeps_the_estimate_and_its_model(self, api, mongo_db, created, trained_model):
        # Given a newer model activated after the estimate was made
        registry = serving.model_registry()
        registry.activate(registry.save(trained_model)["version"])
        serving.reset()

        response = send(api, "patch", created, ACTUALS)

        assert response.status_code == HTTPStatus.OK, response.json()
        body = response.json()
        assert (body["actual_sales"], body["actual_period"]) == (480, "2026-10")
        for field in ("estimated_sales", "estimated_sales_low", "estimated_sales_high", "model_version"):
            assert body[field] == created[field], field
        assert body["_etag"] != created["_etag"]
        document = stored(mongo_db, created)
        assert (document["actual_sales"], document["actual_period"], document["model_version"]) == (480, "2026-10", 1)

    def test_a_new_rank_makes_a_new_estimate_with_the_current_model(self, api, created, trained_model):
        registry = serving.model_registry()
        registry.activate(registry.save(trained_model)["version"])
        serving.reset()

        body = send(api, "patch", created, {"bestseller_rank": 401}).json()

        assert body["model_version"] == 2
        assert body["sku"] == "B0-MUG-01"

    def test_put_with_the_same_input_and_actuals_keeps_the_estimate(self, api, created):
        body = send(api, "put", created, {"bestseller_rank": 400, "category": "books", **ACTUALS}).json()

        assert body["estimated_sales"] == created["estimated_sales"] and body["actual_sales"] == 480
        assert "sku" not in body  # PUT replaces the whole input: the SKU it did not send is gone

    def test_null_for_both_removes_them(self, api, mongo_db, created):
        recorded = send(api, "patch", created, ACTUALS).json()

        body = send(api, "patch", recorded, {"actual_sales": None, "actual_period": None}).json()

        assert "actual_sales" not in body and "actual_period" not in body
        assert "actual_sales" not in stored(mongo_db, created)

    @pytest.mark.parametrize(
        ("patch", "issues"),
        [
            ({"actual_sales": 480}, {"actual_period": validation.ISSUE_ACTUALS_TOGETHER.format(other="actual_sales")}),
            (
                {"actual_period": "2026-10"},
                {"actual_sales": validation.ISSUE_ACTUALS_TOGETHER.format(other="actual_period")},
            ),
            ({"actual_sales": -1, "actual_period": "2026-10"}, {"actual_sales": validation.ISSUE_ACTUAL_SALES}),
            ({"actual_sales": 1.5, "actual_period": "2026-10"}, {"actual_sales": validation.ISSUE_ACTUAL_SALES}),
            ({"actual_sales": True, "actual_period": "2026-10"}, {"actual_sales": validation.ISSUE_ACTUAL_SALES}),
            (
                {"actual_sales": 5, "actual_period": "2026-13"},
                {"actual_period": validation.ISSUE_PERIOD},
            ),
            (
                {"actual_sales": 5, "actual_period": "October"},
                {"actual_period": validation.ISSUE_PERIOD},
            ),
            (
                {"actual_sales": 5, "actual_period": None},
                {"actual_period": validation.ISSUE_ACTUALS_NULL},
            ),
        ],
    )
    def test_malformed_actuals_are_422_and_change_nothing(self, api, mongo_db, created, patch, issues):
        """Each issue on its own field; nothing else reported, nothing stored."""
        before = stored(mongo_db, created)

        body = assert_error_envelope(send(api, "patch", created, patch), 422)

        assert body["_issues"] == issues
        assert stored(mongo_db, created) == before

    def test_needs_a_write_key_when_anonymous_writes_are_off(self, api, created, keys):
        with override_settings(ALLOW_ANONYMOUS_WRITES=False):
            anonymous = send(api, "patch", created, ACTUALS)
            with_key = api.patch(
                f"{URL}/{created['_id']}",
                data=json.dumps(ACTUALS),
                content_type="application/json",
                HTTP_IF_MATCH=created["_etag"],
                HTTP_AUTHORIZATION=f"Api-Key {keys['write']}",
            )

        assert_error_envelope(anonymous, 401)
        assert with_key.status_code == HTTPStatus.OK, with_key.json()

    def test_actuals_are_filterable(self, api, created):
        send(api, "patch", created, ACTUALS)
        post_json(api, {"bestseller_rank": 9})

        assert [item["_id"] for item in listed(api, {"actual_sales": {"$exists": True}})] == [created["_id"]]
        assert [item["_id"] for item in listed(api, {"actual_period": "2026-10"})] == [created["_id"]]


class TestSku:
    def test_stored_shown_and_filterable(self, api, created):
        post_json(api, {"bestseller_rank": 9, "sku": "OTHER"})

        assert created["sku"] == "B0-MUG-01"
        assert [item["_id"] for item in listed(api, {"sku": "B0-MUG-01"})] == [created["_id"]]

    def test_the_sku_index_exists(self, api, mongo_db):
        keys = [info["key"] for info in mongo_db["estimations"].index_information().values()]

        assert [("sku", 1)] in [[tuple(part) for part in key] for key in keys]

    @pytest.mark.parametrize(
        ("sku", "issue"),
        [
            ("=HYPERLINK(1)", validation.ISSUE_SKU_FORMULA),
            ("+1", validation.ISSUE_SKU_FORMULA),
            ("@SUM(A1)", validation.ISSUE_SKU_FORMULA),
            ("x" * 65, validation.ISSUE_SKU_LENGTH),
            ("", validation.ISSUE_EMPTY),
            ("a\nb", validation.ISSUE_SKU_CHARACTERS),
            (42, validation.ISSUE_STRING),
        ],
    )
    def test_refused_skus(self, api, mongo_db, sku, issue):
        body = assert_error_envelope(post_json(api, {"bestseller_rank": 9, "sku": sku}), 422)

        assert body["_issues"] == {"sku": issue}
        assert mongo_db["estimations"].count_documents({}) == 0


class TestExtrapolated:
    def test_set_exactly_outside_the_trained_range(self, api, active_model):
        last = active_model["rank_range"]["books"][1]

        inside = post_json(api, {"bestseller_rank": last, "category": "books"}).json()
        outside = post_json(api, {"bestseller_rank": last + 1, "category": "books"}).json()

        assert inside["extrapolated"] is False and outside["extrapolated"] is True
        assert [item["bestseller_rank"] for item in listed(api, {"extrapolated": True})] == [last + 1]

    def test_bulk_sets_it_per_item(self, api, active_model):
        last = active_model["rank_range"]["toys_games"][1]
        items = [{"bestseller_rank": rank, "category": "toys_games"} for rank in (5, last, last + 1, 10 * last)]

        body = post_json(api, items).json()

        assert [item["extrapolated"] for item in body["_items"]] == [False, False, True, True]


class TestRetentionMark:
    def test_new_estimations_expire_from_their_creation(self, api, mongo_db, created):
        document = stored(mongo_db, created)

        assert document[EXPIRES_FROM] == document["_created"]

    def test_recording_actuals_keeps_the_estimation_and_removing_them_does_not(self, api, mongo_db, created):
        recorded = send(api, "patch", created, ACTUALS).json()
        assert EXPIRES_FROM not in stored(mongo_db, created)

        send(api, "patch", recorded, {"actual_sales": None, "actual_period": None})
        assert stored(mongo_db, created)[EXPIRES_FROM] == stored(mongo_db, created)["_created"]

    def test_with_keep_actuals_off_estimations_with_actuals_expire_too(self, api, mongo_db, created):
        with override_settings(ESTIMATION_TTL_KEEP_ACTUALS=False):
            send(api, "patch", created, ACTUALS)

        assert stored(mongo_db, created)[EXPIRES_FROM] == stored(mongo_db, created)["_created"]

    def test_the_mark_is_not_shown(self, api, created):
        assert EXPIRES_FROM not in api.get(f"{URL}/{created['_id']}").json()
