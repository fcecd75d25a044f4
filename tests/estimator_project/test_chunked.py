"""Bodies sent with ``Transfer-Encoding: chunked`` (no Content-Length): read like any other, within MAX_BODY_BYTES.

Against the production server (gunicorn, which decodes the chunks), with http.client writing the chunks.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable

import pymongo
import pytest

from core.api_keys import api_key_create
from core.audit import command_actor
from tests.helpers import SAMPLE_CSV
from tests.live import LiveServer, request, trained_database

pytestmark = pytest.mark.integration

SIGNING_KEY = "chunked-signing-key-not-a-secret"
LIMIT = 64 * 1024  # MAX_BODY_BYTES for this server, so the test sends little


@pytest.fixture(scope="module")
def server(wire_server, tmp_path_factory):
    with trained_database(wire_server, "test_chunked", SIGNING_KEY) as database:
        live = LiveServer(
            {
                "MONGO_URI": wire_server.uri,
                "MONGO_DB_NAME": database,
                "MODEL_SIGNING_KEY": SIGNING_KEY,
                "MAX_BODY_BYTES": str(LIMIT),
                "WEB_CONCURRENCY": "1",
            },
            tmp_path_factory.mktemp("chunked") / "server.log",
        )
        live.start()
        live.database = pymongo.MongoClient(wire_server.uri)[database]
        live.admin_key = api_key_create(name="chunked-admin", scope="admin", actor=command_actor())
        yield live
        live.database.client.close()
        live.stop()


def post_chunked(
    server: LiveServer, content_type: str, chunks: Iterable[bytes], path: str = "/estimations", headers=None
) -> tuple[int, dict, dict]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        # No Content-Length: http.client frames each chunk as "<size in hex>\r\n<bytes>\r\n", then "0\r\n\r\n".
        connection.request(
            "POST",
            path,
            body=iter(chunks),
            headers={"Content-Type": content_type, "Transfer-Encoding": "chunked", **(headers or {})},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


def test_a_chunked_json_post_is_read(server):
    body = json.dumps({"bestseller_rank": 4321, "category": "books", "sku": "chunked-json"}).encode()

    status, answer, _ = post_chunked(server, "application/json", [body[:10], body[10:25], body[25:]])

    assert status == 201, answer
    assert answer["bestseller_rank"] == 4321 and answer["sku"] == "chunked-json"
    assert server.database["estimations"].count_documents({"sku": "chunked-json"}) == 1


def test_a_chunked_csv_post_is_read(server):
    lines = [b"bestseller_rank,category,sku\r\n"] + [f"{rank},books,chunked-csv\r\n".encode() for rank in (10, 20, 30)]

    status, answer, _ = post_chunked(server, "text/csv", lines)

    assert status == 201, answer
    assert [item["bestseller_rank"] for item in answer["_items"]] == [10, 20, 30]
    assert server.database["estimations"].count_documents({"sku": "chunked-csv"}) == 3


@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_a_chunked_body_over_the_limit_is_a_413_and_stores_nothing(server, content_type):
    before = server.database["estimations"].count_documents({})
    header = b'{"bestseller_rank": 5, "sku": "' if content_type == "application/json" else b"bestseller_rank,sku\r\n5,"
    chunks = [header] + [b"a" * 4096] * (LIMIT // 4096 + 1) + [b'"}' if content_type == "application/json" else b"\r\n"]

    status, answer, headers = post_chunked(server, content_type, chunks)

    assert status == 413
    assert answer == {
        "_status": "ERR",
        "_error": {"code": 413, "message": f"The request body is larger than the {LIMIT} bytes this service accepts."},
    }
    assert server.database["estimations"].count_documents({}) == before


def test_a_chunked_body_at_the_limit_is_read(server):
    body = json.dumps({"bestseller_rank": 77, "sku": "at-limit"}).encode()
    body = body[:-1] + b" " * (LIMIT - len(body)) + b"}"  # exactly LIMIT bytes
    assert len(body) == LIMIT

    status, answer, _ = post_chunked(server, "application/json", [body[i : i + 5000] for i in range(0, LIMIT, 5000)])

    assert status == 201, answer
    assert answer["sku"] == "at-limit"


def test_a_chunked_training_csv_is_read_up_to_the_training_limit_not_max_body_bytes(server):
    # POST /models takes CSVs up to MODEL_TRAINING_MAX_BYTES (100 MiB); the sample data is 6 times LIMIT.
    data = SAMPLE_CSV.read_bytes()
    assert len(data) > 5 * LIMIT
    auth = {"Authorization": f"Api-Key {server.admin_key}"}

    status, job, headers = post_chunked(
        server, "text/csv", [data[i : i + 50_000] for i in range(0, len(data), 50_000)], "/models?activate=false", auth
    )

    assert status == 202, job
    assert job["progress"]["bytes_total"] == len(data)
    deadline = time.monotonic() + 60
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = request("GET", headers["Location"], headers=auth)[1]
    assert job["status"] == "succeeded", job
    assert job["progress"]["rows_read"] == len(data.splitlines()) - 1
