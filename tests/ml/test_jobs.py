"""Training jobs (ml/jobs.py): the job API's answers, the runner, the upload's limits, and the store as the
only module that touches the jobs collection."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.audit import Actor
from ml import job_store, jobs
from ml.job_store import training_jobs
from ml.jobs import Abandoned, JobRunner, TrainingUpload
from ml.serving import model_registry
from tests.helpers import SAMPLE_CSV, assert_error_envelope

pytestmark = pytest.mark.usefixtures("private_temp_dir")


class TestJobs:
    def test_an_unknown_job_is_404(self, api, keys):
        admin = {"HTTP_AUTHORIZATION": f"Api-Key {keys['admin']}"}

        message = assert_error_envelope(api.get("/models/jobs/6b0aa8a7e49da0a6640161ec", **admin), 404)
        assert "POST a training CSV to /models" in message["_error"]["message"]
        assert_error_envelope(api.get("/models/jobs/not-an-id", **admin), 404)

    def test_a_job_needs_an_admin_key(self, api, keys):
        job = training_jobs().create(request=_request(), actor=Actor("admin-client", "api"))

        assert_error_envelope(api.get(f"/models/jobs/{job['_id']}"), 401)
        assert_error_envelope(api.get(f"/models/jobs/{job['_id']}", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}"), 403)

    @pytest.mark.parametrize("status", ["queued", "running"])
    def test_a_job_whose_worker_died_reads_failed_with_that_reason(self, api, keys, mongo_db, status):
        store = training_jobs()
        job = store.create(request=_request(), actor=Actor("admin-client", "api"))
        if status == "running":
            store.start(job["_id"])
        silent_since = datetime.now(UTC) - timedelta(seconds=job_store.STALE_SECONDS + 5)
        collection = mongo_db[job_store.COLLECTION]
        collection.replace_one(
            {"_id": job["_id"]}, {**collection.find_one({"_id": job["_id"]}), "heartbeat": silent_since}
        )

        shown = api.get(f"/models/jobs/{job['_id']}", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}").json()

        assert shown["status"] == "failed" and shown["finished"]
        assert shown["_error"]["code"] == 500
        assert "no heartbeat for 60 s" in shown["_error"]["message"]
        assert mongo_db[job_store.COLLECTION].find_one({"_id": job["_id"]})["status"] == "failed"  # recorded
        assert store.beat(job["_id"], {"phase": "fitting"}) is False  # its runner, if alive, stops

    def test_a_job_with_a_recent_heartbeat_keeps_running(self, api, keys):
        store = training_jobs()
        job = store.create(request=_request(), actor=Actor("admin-client", "api"))
        store.start(job["_id"])

        shown = api.get(f"/models/jobs/{job['_id']}", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}").json()

        assert shown["status"] == "running" and shown["_links"] == {
            "self": {"title": "model job", "href": f"models/jobs/{job['_id']}"}
        }


class TestRunner:
    def test_a_runner_whose_job_was_marked_failed_stops_waiting_for_its_work(self, active_model, monkeypatch):
        monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.01)
        store = training_jobs()
        job = store.create(request=_request(), actor=Actor("admin-client", "api"))
        store.start(job["_id"])
        store.fail(job["_id"], code=500, message="given up")
        runner = JobRunner(store, job["_id"], TrainingUpload(SAMPLE_CSV.parent, 0), _options())

        with pytest.raises(Abandoned):
            runner.run_cpu(lambda: time.sleep(0.5))

    def test_a_runner_whose_job_was_marked_failed_stores_nothing(self, active_model, tmp_path):
        store = training_jobs()
        job = store.create(request=_request(), actor=Actor("admin-client", "api"))
        store.fail(job["_id"], code=500, message="given up")
        (tmp_path / jobs.UPLOAD_NAME).write_bytes(SAMPLE_CSV.read_bytes())

        JobRunner(store, job["_id"], TrainingUpload(tmp_path, 1), _options()).run(Actor("admin-client", "api"))

        assert [m["version"] for m in model_registry().list()] == [1]
        assert store.get(job["_id"])["error"]["message"] == "given up"
        assert not tmp_path.exists()  # the upload is removed all the same


class TestUpload:
    def test_the_body_is_copied_in_bounded_chunks(self):
        body = b"category,bestseller_rank,monthly_sales\n" + b"books,1,2\n" * 500_000  # 5 MB
        stream = _RecordingStream(body)

        upload = TrainingUpload.receive(stream, limit=len(body), too_large=RuntimeError)

        try:
            assert upload.path.read_bytes() == body and upload.bytes == len(body)
            assert len(stream.asked) > 1 and max(stream.asked) <= jobs.CHUNK
        finally:
            upload.discard()

    def test_past_the_limit_it_stops_and_keeps_nothing(self, private_temp_dir):
        class TooLarge(Exception):
            pass

        with pytest.raises(TooLarge):
            TrainingUpload.receive(io.BytesIO(b"x" * (3 * jobs.CHUNK)), limit=jobs.CHUNK, too_large=TooLarge)

        assert list(private_temp_dir.iterdir()) == []


def test_only_the_store_touches_the_jobs_collection():
    root = SAMPLE_CSV.parent.parent
    users = [
        path.relative_to(root).as_posix()
        for package in ("ml", "estimations", "estimator_project")
        for path in (root / package).rglob("*.py")
        if "model_jobs" in path.read_text() or "job_store.COLLECTION" in path.read_text()
    ]

    assert users == ["ml/job_store.py"]


def test_a_body_shorter_than_its_content_length_trains_nothing(private_temp_dir):
    from types import SimpleNamespace

    from rest_framework.exceptions import ParseError

    from ml.training_api import TrainingCsvParser

    request = SimpleNamespace(META={"CONTENT_LENGTH": "5000"})
    with pytest.raises(ParseError, match="ended after 100 of the 5,000 bytes"):
        TrainingCsvParser().parse(io.BytesIO(b"x" * 100), "text/csv", {"request": request})

    assert list(private_temp_dir.iterdir()) == []


class _RecordingStream:
    def __init__(self, body: bytes):
        self.body = io.BytesIO(body)
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        return self.body.read(size)


def _options() -> dict:
    return {"activate": True, "skip_bad_rows": False, "seed": 0, "name": "upload.csv"}


def _request() -> dict:
    return {**_options(), "bytes": 10}


class HeldLock:
    """A collection that records whether each call ran while this process held the job store's lock."""

    def __init__(self, job: dict):
        self.job, self.calls = job, []

    def find_one(self, filter_):
        self.calls.append(("find_one", job_store.STORE_LOCK._is_owned()))
        return dict(self.job)

    def replace_one(self, filter_, replacement):
        self.calls.append(("replace_one", job_store.STORE_LOCK._is_owned()))
        self.job = dict(replacement)
        return type("Result", (), {"matched_count": 1})()


def test_every_job_store_call_holds_the_lock_the_runner_thread_shares():
    stored = {"_id": job_store.ObjectId(), "status": job_store.RUNNING, "heartbeat": datetime.now(UTC)}
    collection = HeldLock(stored)
    jobs_ = job_store.TrainingJobs(collection)  # type: ignore[arg-type]

    assert jobs_.beat(stored["_id"], {"phase": "reading"}) is True
    assert jobs_.get(stored["_id"])["progress"] == {"phase": "reading"}
    assert collection.calls == [("find_one", True), ("replace_one", True), ("find_one", True)]
