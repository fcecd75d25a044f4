"""A running server picks up a newly activated model within seconds, without a restart or a failed request."""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from core import mongo
from ml import serving
from tests.helpers import SAMPLE_CSV
from tests.live import LiveServer, request

pytestmark = pytest.mark.integration

SIGNING_KEY = "live-test-signing-key-not-a-secret"


@pytest.fixture
def live_db(wire_server, settings):
    settings.MONGO_URI = wire_server.uri
    settings.MONGO_DB_NAME = f"test_live_{uuid.uuid4().hex[:8]}"
    # The server and this process (which trains) must sign and verify with the same key.
    settings.MODEL_SIGNING_KEY = SIGNING_KEY
    mongo.reset()
    serving.reset()
    yield settings.MONGO_DB_NAME
    mongo.get_client().drop_database(settings.MONGO_DB_NAME)
    mongo.reset()
    serving.reset()


@contextlib.contextmanager
def posting(env: dict[str, str], log) -> Iterator[list[tuple[int, int | None]]]:
    """A live server with ``env``, and a client POSTing to it without pause; yields the answers so far,
    (status, model_version), and stops both after the block."""
    server = LiveServer(env, log)
    server.start()
    answers: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def keep_posting():
        while not stop.is_set():
            status, body, _ = request("POST", server.url + "/estimations", {"bestseller_rank": 1234})
            answers.append((status, (body or {}).get("model_version")))

    client = threading.Thread(target=keep_posting)
    client.start()
    try:
        time.sleep(1)
        yield answers
    finally:
        stop.set()
        client.join(timeout=30)
        server.stop()


def test_activation_reaches_every_worker_without_a_failed_request(wire_server, live_db, tmp_path):
    # Given a server with two workers serving version 1
    call_command("train_model", "--csv", str(SAMPLE_CSV), stdout=io.StringIO())
    env = {
        "MONGO_URI": wire_server.uri,
        "MONGO_DB_NAME": live_db,
        "MODEL_SIGNING_KEY": SIGNING_KEY,
        "MODEL_REFRESH_SECONDS": "0.5",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
    }
    with posting(env, tmp_path / "server.log") as answers:
        # When version 2 is trained and activated from another process
        call_command("train_model", "--csv", str(SAMPLE_CSV), "--no-activate", stdout=io.StringIO())
        call_command("activate_model", "2", stdout=io.StringIO())
        switched_at = len(answers)

        # Then, within a few seconds, every answer comes from version 2
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            recent = answers[-20:]
            if len(answers) > switched_at + 20 and all(version == 2 for _, version in recent):
                break
            time.sleep(0.2)

    assert answers, "the client got no answers"
    assert all(status == 201 for status, _ in answers), sorted({s for s, _ in answers})
    assert answers[0][1] == 1
    assert all(version == 2 for _, version in answers[-20:]), answers[-20:]


def test_a_corrupt_active_version_fails_no_request_and_heals_on_activation(wire_server, live_db, tmp_path):
    """The review's reproduction under gunicorn: with `active` pointing at a version whose artifact lost a
    chunk, about one POST per worker every refresh answered 500. Now every POST answers from the model
    each worker had, and once the artifact is mended and the version activated, every worker serves it."""
    from tests.helpers import delete_a_chunk, file_id, point_active_at, reupload

    call_command("train_model", "--csv", str(SAMPLE_CSV), stdout=io.StringIO())
    call_command("train_model", "--csv", str(SAMPLE_CSV), "--no-activate", stdout=io.StringIO())
    registry = serving.model_registry()
    good = registry.bucket.open_download_stream(file_id(registry, 2)).read()
    delete_a_chunk(registry, 2)
    env = {
        "MONGO_URI": wire_server.uri,
        "MONGO_DB_NAME": live_db,
        "MODEL_SIGNING_KEY": SIGNING_KEY,
        "MODEL_REFRESH_SECONDS": "0.2",
        "WEB_CONCURRENCY": "2",
    }
    with posting(env, tmp_path / "server.log") as answers:
        point_active_at(registry, 2)
        time.sleep(3)  # 15 refresh intervals with the corrupt version active
        corrupt_phase = len(answers)
        reupload(registry, 2, good)
        call_command("activate_model", "2", stdout=io.StringIO())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            len(answers) > corrupt_phase + 20 and all(version == 2 for _, version in answers[-20:])
        ):
            time.sleep(0.2)

    assert all(status == 201 for status, _ in answers), sorted({s for s, _ in answers})
    assert {version for _, version in answers[:corrupt_phase]} == {1}
    assert all(version == 2 for _, version in answers[-20:]), answers[-20:]
