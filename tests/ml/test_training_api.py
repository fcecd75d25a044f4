"""Training through the API: POST /models with a CSV starts a job; GET /models/jobs/{id} follows it."""

from __future__ import annotations

import io
import tempfile
import time
from http import HTTPStatus

import pytest
from django.core.management import CommandError, call_command

from core.audit import audit_log
from ml import job_store, jobs
from ml.serving import model_registry
from ml.training_api import MSG_SEND_CSV
from tests.helpers import SAMPLE_CSV, assert_error_envelope

BAD_CSV = (
    b"category,bestseller_rank,monthly_sales\nbooks,120,400\nbooks,abc,10\ntoys_games,40,-3\nbooks,9,900\nbooks,-5,10\n"
)


pytestmark = pytest.mark.usefixtures("private_temp_dir")


def post_csv(api, body: bytes, key: str | None, query: str = "", content_type: str = "text/csv"):
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    return api.generic("POST", "/models" + query, body, content_type=content_type, **headers)


def finished(api, job_path: str, key: str, timeout: float = 60) -> dict:
    """Poll the job until it has succeeded or failed (a deadline, not a timing expectation)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(job_path, HTTP_AUTHORIZATION=f"Api-Key {key}")
        assert response.status_code == HTTPStatus.OK, response.content
        body = response.json()
        if body["status"] in ("succeeded", "failed"):
            return body
        assert time.monotonic() < deadline, f"the job did not finish within {timeout} s: {body}"
        time.sleep(0.05)


def train_through_api(api, key: str, body: bytes, query: str = "") -> tuple[dict, dict]:
    """(the 202 answer, the finished job)."""
    response = post_csv(api, body, key, query)
    assert response.status_code == HTTPStatus.ACCEPTED, response.content
    path = "/" + response["Location"].split("/", 3)[3]
    return response.json(), finished(api, path, key)


class TestTraining:
    def test_an_admin_trains_a_new_active_version_and_polls_it_to_success(self, api, keys, private_temp_dir):
        body = SAMPLE_CSV.read_bytes()

        response = post_csv(api, body, keys["admin"], "?name=my_sales.csv")

        assert response.status_code == HTTPStatus.ACCEPTED, response.content
        accepted = response.json()
        assert response["Location"] == f"http://testserver/models/jobs/{accepted['_id']}"
        assert accepted["status"] == "queued" and accepted["version"] is None
        assert accepted["request"] == {
            "name": "my_sales.csv",
            "bytes": len(body),
            "activate": True,
            "skip_bad_rows": False,
            "seed": 0,
        }
        assert accepted["actor"] == {"name": "admin-client", "via": "api"}
        job = finished(api, f"/models/jobs/{accepted['_id']}", keys["admin"])
        assert job["status"] == "succeeded", job
        assert (job["version"], job["active"]) == (2, True)
        assert job["_links"]["model"] == {"title": "models", "href": "models/2"}
        assert job["progress"] == {
            "phase": "done",
            "rows_read": 40_000,
            "bytes_read": len(body),
            "bytes_total": len(body),
            "fraction": 1.0,
        }
        assert job["started"] and job["finished"] and "_error" not in job
        assert model_registry().active_version() == 2
        data = api.get("/models/2").json()["training_data"]
        assert (data["source"], data["rows"], data["seed"]) == ("my_sales.csv", 40_000, 0)
        assert list(private_temp_dir.iterdir()) == []  # the upload is removed once trained

    def test_it_is_audited_as_model_train_by_the_keys_name(self, api, keys):
        _, job = train_through_api(api, keys["admin"], SAMPLE_CSV.read_bytes())

        entries, _ = audit_log().find(action=None, skip=0, limit=10)
        by_action = {entry["action"]: entry for entry in entries}
        assert by_action["model.train"]["actor"] == {"name": "admin-client", "via": "api"}
        assert by_action["model.train"]["target"] == {"model_version": job["version"]}
        assert by_action["model.activate"]["actor"]["name"] == "admin-client"

    def test_a_second_training_waits_queued_for_the_first(self, api, keys, monkeypatch):
        monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
        slot = jobs._training_slot()
        slot.acquire()  # as a training in progress holds it
        try:
            response = post_csv(api, SAMPLE_CSV.read_bytes(), keys["admin"])
            path = f"/models/jobs/{response.json()['_id']}"
            admin = {"HTTP_AUTHORIZATION": f"Api-Key {keys['admin']}"}
            beats = set()
            for _ in range(3):  # over 1.8 s: heartbeats are shown to the second
                time.sleep(0.6)
                beats.add(api.get(path, **admin).json()["heartbeat"])
            waiting = api.get(path, **admin).json()
        finally:
            slot.release()

        assert (waiting["status"], waiting["progress"]["phase"], waiting["started"]) == ("queued", "queued", None)
        assert len(beats) >= 2  # it keeps beating while it waits, so it never reads as dead
        assert finished(api, path, keys["admin"])["status"] == "succeeded"

    def test_activate_false_stores_without_activating(self, api, keys):
        _, job = train_through_api(api, keys["admin"], SAMPLE_CSV.read_bytes(), "?activate=false&seed=7")

        assert job["status"] == "succeeded", job
        assert (job["version"], job["active"]) == (2, False)
        assert model_registry().active_version() == 1
        assert api.get("/models/2").json()["training_data"]["seed"] == 7
        assert "model.activate" not in {entry["action"] for entry in audit_log().find(action=None, skip=0, limit=9)[0]}

    def test_too_few_rows_for_a_category_fail_the_job_with_a_422_naming_it(self, api, keys):
        few = b"category,bestseller_rank,monthly_sales\nbooks,10,100\nbooks,abc,5\nbooks,20,-3\n"

        _, job = train_through_api(api, keys["admin"], few, "?name=few.csv&skip_bad_rows=true&activate=false")

        assert job["status"] == "failed", job
        assert job["_error"]["code"] == 422
        assert "few.csv: too few rows to fit a curve for 1 category" in job["_error"]["message"]
        assert "'books' has 1 valid row" in job["_error"]["message"]
        assert [m["version"] for m in model_registry().list()] == [1]

    def test_a_version_that_narrows_what_is_accepted_says_so_in_its_job(self, api, keys):
        books_only = b"category,bestseller_rank,monthly_sales\n" + b"".join(
            f"books,{rank},{max(1, 200_000 // rank)}\n".encode() for rank in range(10, 5_000, 7)
        )

        _, job = train_through_api(api, keys["admin"], books_only, "?activate=false")
        _, full = train_through_api(api, keys["admin"], SAMPLE_CSV.read_bytes(), "?activate=false")

        assert job["status"] == "succeeded", job
        assert len(job["warnings"]) == 1 and "lacks 23 categories that version 1 serves" in job["warnings"][0]
        assert job["held_back"] is None  # activate=false: nothing to hold back
        assert full["warnings"] == [] and full["held_back"] is None

    def test_a_narrowing_version_is_stored_but_not_activated_and_the_job_says_why(self, api, keys):
        books_and_electronics = b"category,bestseller_rank,monthly_sales\n" + b"".join(
            f"{category},{rank},{max(1, 200_000 // rank)}\n".encode()
            for category in ("books", "electronics")
            for rank in range(10, 5_000, 7)
        )

        _, job = train_through_api(api, keys["admin"], books_and_electronics)  # activate defaults to true

        assert (job["status"], job["version"], job["active"]) == ("succeeded", 2, False), job
        assert model_registry().active_version() == 1
        assert job["held_back"].startswith(
            "version 2 was stored but not activated: it lacks categories beauty, clothing, home_kitchen, "
            "pet_supplies, sports_outdoors, toys_games, beauty (de), books (de), "
        )
        assert "POST /models/2/activate with an admin API key, or python manage.py activate_model 2" in job["held_back"]
        assert "lacks 22 categories that version 1 serves" in job["warnings"][0]
        # the explicit choice it names activates, warning as before
        activated = api.post("/models/2/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")
        assert activated.status_code == 200 and activated.json()["warnings"] == job["warnings"]
        assert model_registry().active_version() == 2

    def test_a_version_serving_all_the_active_one_does_is_activated(self, api, keys):
        _, job = train_through_api(api, keys["admin"], SAMPLE_CSV.read_bytes())

        assert (job["status"], job["active"], job["held_back"], job["warnings"]) == ("succeeded", True, None, [])
        assert model_registry().active_version() == 2

    def test_bad_rows_fail_the_job_with_the_lines_train_model_prints(self, api, keys, tmp_path):
        _, job = train_through_api(api, keys["admin"], BAD_CSV, "?name=bad.csv")

        assert job["status"] == "failed"
        assert job["_error"]["code"] == 422
        assert "bad.csv has bad rows" in job["_error"]["message"]
        assert "skip_bad_rows=true" in job["_error"]["message"]
        assert job["_issues"] == {
            "line 3": "bestseller_rank 'abc' is not a whole number",
            "line 4": "monthly_sales cannot be negative",
            "line 6": "bestseller_rank must be at least 1",
        }
        assert job["version"] is None and [m["version"] for m in model_registry().list()] == [1]
        # the command's own words for the same file, line by line
        (tmp_path / "bad.csv").write_bytes(BAD_CSV)
        with pytest.raises(CommandError) as printed:
            call_command("train_model", "--csv", str(tmp_path / "bad.csv"), stdout=io.StringIO())
        assert [f"{line}: {reason}" for line, reason in job["_issues"].items()] == [
            line.strip() for line in str(printed.value).splitlines()[1:]
        ]

    def test_skip_bad_rows_counts_them_and_trains(self, api, keys):
        body = SAMPLE_CSV.read_bytes() + b"books,abc,10\n"

        _, job = train_through_api(api, keys["admin"], body, "?skip_bad_rows=true")

        assert job["status"] == "succeeded", job
        assert api.get(f"/models/{job['version']}").json()["training_data"]["bad_rows_skipped"] == 1

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b"rank,sales\n1,2\n", "upload.csv: the header lacks category, bestseller_rank, monthly_sales"),
            (b"category,bestseller_rank,monthly_sales\n", "upload.csv has no valid rows to train on"),
            (b"category,bestseller_rank,monthly_sales\nb\xffoks,1,2\n", "upload.csv is not UTF-8 text"),
        ],
    )
    def test_a_file_that_cannot_be_trained_on_fails_with_the_readers_message(self, api, keys, body, expected):
        _, job = train_through_api(api, keys["admin"], body)

        assert job["status"] == "failed" and job["_error"]["code"] == 422
        assert job["_error"]["message"].startswith(expected), job
        assert tempfile.gettempdir() not in job["_error"]["message"]  # no server path in a message

    def test_a_body_over_max_body_bytes_is_accepted(self, api, keys, settings):
        settings.MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # limits of other bodies

        _, job = train_through_api(api, keys["admin"], SAMPLE_CSV.read_bytes())

        assert job["status"] == "succeeded", job


class TestRefusals:
    def test_over_the_limit_is_413_and_starts_nothing(self, api, keys, settings, mongo_db, private_temp_dir):
        settings.MODEL_TRAINING_MAX_BYTES = 1000

        response = post_csv(api, SAMPLE_CSV.read_bytes(), keys["admin"])

        message = assert_error_envelope(response, 413)["_error"]["message"]
        assert "1,000 bytes" in message and "MODEL_TRAINING_MAX_BYTES" in message
        assert mongo_db[job_store.COLLECTION].count_documents({}) == 0
        assert list(private_temp_dir.iterdir()) == []

    def test_without_a_key_401_with_a_write_key_403(self, api, keys, mongo_db):
        body = SAMPLE_CSV.read_bytes()

        assert "admin" in assert_error_envelope(post_csv(api, body, None), 401)["_error"]["message"]
        assert_error_envelope(post_csv(api, body, "sek_forged"), 401)
        response = post_csv(api, body, keys["write"])
        assert "'write-client' has 'write'" in assert_error_envelope(response, 403)["_error"]["message"]
        assert mongo_db[job_store.COLLECTION].count_documents({}) == 0
        assert [m["version"] for m in model_registry().list()] == [1]

    @pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
    def test_another_content_type_is_415(self, api, keys, content_type):
        response = post_csv(api, b'{"csv": "no"}', keys["admin"], content_type=content_type)

        message = assert_error_envelope(response, 415)["_error"]["message"]
        assert message == MSG_SEND_CSV  # said once: no ": send text/csv." repeated after it
        assert message.count("text/csv") == 2 and message.endswith("--data-binary @my_sales.csv.")

    def test_an_empty_body_is_400(self, api, keys):
        assert "empty" in assert_error_envelope(post_csv(api, b"", keys["admin"]), 400)["_error"]["message"]

    @pytest.mark.parametrize(
        ("query", "named"),
        [
            ("?activate=maybe", "'activate'"),
            ("?skip_bad_rows=yes please", "'skip_bad_rows'"),
            ("?seed=-1", "'seed'"),
            ("?seed=99999999999", "'seed'"),
            ("?seed=%C2%B2", "'seed'"),
            ("?seed=%D9%A5", "'seed'"),
            ("?name=", "'name'"),
            ("?activate_=false", "'activate_'"),
        ],
    )
    def test_a_bad_parameter_is_400_before_the_body_is_read(self, api, keys, mongo_db, query, named):
        response = post_csv(api, SAMPLE_CSV.read_bytes(), keys["admin"], query)

        assert named in assert_error_envelope(response, 400)["_error"]["message"]
        assert mongo_db[job_store.COLLECTION].count_documents({}) == 0
