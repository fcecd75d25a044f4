"""Training through the API on the production server: its worker keeps serving while it trains."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from core.api_keys import api_key_store
from ml.sample_data import write_csv
from tests.live import LiveServer, request, trained_database

SIGNING_KEY = "training-live-signing-key-not-a-secret"
ROWS = 600_000  # about 12 MB: several seconds of reading and fitting, whatever the machine


def post_csv(server: LiveServer, body: bytes, key: str, query: str = "") -> tuple[int, dict, dict]:
    host, port = urlsplit(server.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(
            "POST",
            "/models" + query,
            body=body,
            headers={"Content-Type": "text/csv", "Authorization": f"Api-Key {key}"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.headers)
    finally:
        connection.close()


@pytest.mark.integration
@pytest.mark.parametrize("worker", ["gevent", "gthread"])  # the production default, and the alternative
def test_the_worker_keeps_answering_while_it_trains(wire_server, tmp_path, worker):
    csv = tmp_path / "big_sales.csv"
    write_csv(csv, ROWS, seed=3)
    body = csv.read_bytes()
    with trained_database(wire_server, "test_training_live", SIGNING_KEY) as database:
        store = api_key_store()
        store.ensure_indexes()
        key = store.create(name="live-trainer", scope="admin")
        admin = {"Authorization": f"Api-Key {key}"}
        server = LiveServer(
            {
                "MONGO_URI": wire_server.uri,
                "MONGO_DB_NAME": database,
                "MODEL_SIGNING_KEY": SIGNING_KEY,
                "WEB_CONCURRENCY": "1",  # the one worker that trains must answer everything else too
                "GUNICORN_WORKER_CLASS": worker,
            },
            tmp_path / "server.log",
        )
        server.start()
        try:
            assert f"Using worker: {worker}" in server.log.read_text()
            # Given a training job on the worker (its body far over MAX_BODY_BYTES' 2 MiB)
            status, job, headers = post_csv(server, body, key, "?name=big_sales.csv")
            assert status == 202, job
            job_url = server.url + urlsplit(headers["Location"]).path

            # When other clients ask while it trains
            seen: list[dict] = []
            waits: list[float] = []  # of the requests sent while the job was queued or running
            deadline = time.monotonic() + 300
            rank = 0
            while time.monotonic() < deadline:
                seen.append(request("GET", job_url, headers=admin, timeout=30)[1])
                if seen[-1]["status"] in ("succeeded", "failed"):
                    break
                rank += 1
                for method, path, payload in (
                    ("GET", "/health/live", None),
                    ("POST", "/estimations", {"bestseller_rank": rank}),
                    ("GET", "/estimations?max_results=1", None),
                ):
                    began = time.monotonic()
                    answered = request(method, server.url + path, payload, timeout=30)[0]
                    waits.append(time.monotonic() - began)
                    assert answered in (200, 201), (method, path, answered)
                time.sleep(0.05)

            # Then each was answered within 2 s: a worker whose CPU work blocked it would hold every request
            # for the whole read and fit, several seconds of CPU. (Seen: 0.2-0.5 s at most on 2 quiet cores,
            # most in 10-20 ms; up to 1.3 s with the machine's load at 3 times its cores.)
            assert len(waits) >= 30, f"only {len(waits)} requests were sent while the job trained: raise ROWS"
            assert max(waits) < 2.0, sorted(waits)[-5:]
            # And the job finished with a new active version, its progress visible meanwhile
            final = seen[-1]
            assert final["status"] == "succeeded", final
            assert (final["version"], final["active"]) == (2, True)
            assert final["progress"]["rows_read"] == ROWS
            phases = {state["progress"]["phase"] for state in seen}
            assert phases & {"reading", "fitting"}, phases
            model = request("GET", server.url + "/models/2")[1]
            assert model["training_data"]["source"] == "big_sales.csv"
            assert model["training_data"]["rows"] == ROWS
        finally:
            server.stop()
