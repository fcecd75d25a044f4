"""A CSV export through gunicorn while the database freezes: resumed, or cut short where the client sees it.

The export streams a chunked body (HTTP/1.1). When it cannot go on (a batch failed past its resumes,
estimations/store.py), the server closes the connection without the body's last chunk: the client's
HTTP library reports a truncated transfer (requests: ChunkedEncodingError; curl: exit 18), never a
complete-looking CSV. Each test has its own nx-27017 server (frozen with SIGSTOP) and gunicorn.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import threading
import time

import pymongo
import pytest
import requests

from core import mongo
from estimations.documents import stamp
from tests.conftest import own_wire_server
from tests.live import LiveServer

pytestmark = pytest.mark.integration

SIGNING_KEY = "export-signing-key-not-a-secret"
ROWS = 6_000  # the export's batches of 1,000: all but the first are read while the answer streams


@pytest.fixture
def own_database(tmp_path, settings):
    with own_wire_server(tmp_path, settings, "exports", SIGNING_KEY) as server:
        mongo.get_database()["estimations"].insert_many(
            [stamp({"bestseller_rank": rank, "category": "books", "estimated_sales": 1}) for rank in range(1, ROWS + 1)]
        )
        yield server


@pytest.fixture
def live(own_database, tmp_path):
    server = LiveServer(
        {
            "MONGO_URI": own_database.uri,
            "MONGO_DB_NAME": "exports",
            "MODEL_SIGNING_KEY": SIGNING_KEY,
            # A frozen server fails a batch within a second, and each resume within about a second more
            "MONGO_SOCKET_TIMEOUT_MS": "1000",
            "MONGO_SERVER_SELECTION_TIMEOUT_MS": "500",
            "WEB_CONCURRENCY": "1",
        },
        tmp_path / "server.log",
    )
    server.start()
    yield server
    server.stop()


def export_url(live) -> str:
    return live.url + "/estimations?format=csv&sort=bestseller_rank"


def read_first_chunk(live):
    response = requests.get(export_url(live), stream=True, timeout=60)
    assert response.status_code == 200 and response.headers["Transfer-Encoding"] == "chunked"
    chunks = response.iter_content(chunk_size=None)
    return response, chunks, next(chunks)


def test_an_export_the_database_stops_answering_is_cut_short_where_the_client_sees_it(own_database, live):
    response, chunks, first = read_first_chunk(live)
    os.kill(own_database.process.pid, signal.SIGSTOP)
    try:
        received = [first]
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in chunks:
                received.append(chunk)
    finally:
        os.kill(own_database.process.pid, signal.SIGCONT)

    text = b"".join(received).decode()
    assert text.count("\r\n") - 1 < ROWS  # what came is a part, and the client was told so
    assert "Error handling request" in live.log.read_text() and "ExportIncomplete" in live.log.read_text()

    # And curl says the same: exit 18, "transfer closed with outstanding read data remaining"
    saved = live.log.parent / "export.csv"
    curl = subprocess.Popen(["curl", "-sS", "-o", str(saved), export_url(live)])
    while not saved.exists() or saved.stat().st_size == 0:  # the first rows came: the rest is being read
        assert curl.poll() is None, "curl ended before the database was frozen"
        time.sleep(0.001)
    os.kill(own_database.process.pid, signal.SIGSTOP)
    try:
        assert curl.wait(timeout=60) == 18
    finally:
        os.kill(own_database.process.pid, signal.SIGCONT)


def test_an_export_resumes_after_the_database_comes_back(own_database, live):
    response, chunks, first = read_first_chunk(live)
    assert response.headers["X-Total-Count"] == str(ROWS)  # what matched as it started
    os.kill(own_database.process.pid, signal.SIGSTOP)
    threading.Timer(1.5, os.kill, (own_database.process.pid, signal.SIGCONT)).start()

    text = (first + b"".join(chunks)).decode()

    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["bestseller_rank"]) for row in rows] == list(range(1, ROWS + 1))
    assert "resuming after the last row sent" in live.log.read_text()
    assert pymongo.MongoClient(own_database.uri).exports.estimations.estimated_document_count() == ROWS
