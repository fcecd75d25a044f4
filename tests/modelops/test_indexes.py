"""Index roll-out (modelops/indexes.py, manage.py ensure_indexes): builds are bounded or deferred, and a
failure never stops the API (docs/operations.md). Conflicting indexes: tests/core/test_index_sync.py."""

from __future__ import annotations

import io
import logging
import os
import struct
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import bson
import mongomock
import pymongo
import pytest
from django.core.management import CommandError, call_command
from pymongo.errors import ExecutionTimeout, OperationFailure

from core import index_sync, mongo
from estimations.store import EstimationStore
from estimations.store_indexes import RetentionNotChanged
from modelops import indexes
from tests.deploy import dockerfile
from tests.deploy.netns import StoreRelay
from tests.helpers import run_django
from tests.live import free_port, request, stop_process

ROOT = Path(__file__).resolve().parent.parent.parent
UNAUTHORIZED = {"ok": 0, "code": 13, "codeName": "Unauthorized", "errmsg": "not authorized on db to execute command"}


def refuse_on(name: str, failure: Exception):
    """Make every index build on collection ``name`` (the embedded store) fail with ``failure``."""
    create_index = mongomock.collection.Collection.create_index

    def refused(self, *args, **kwargs):
        if self.name == name:
            raise failure
        return create_index(self, *args, **kwargs)

    return refused


@pytest.fixture
def embedded(settings):
    """A fresh embedded store served by this process, with no index yet."""
    settings.MONGO_URI = ""
    settings.MONGO_DB_NAME = f"test_{uuid.uuid4().hex[:8]}"
    mongo.reset()
    mongo.serve_embedded_store()
    indexes.forget_check()
    yield mongo.get_database()
    mongo.reset()
    indexes.forget_check()


def run(*args) -> str:
    out = io.StringIO()
    call_command("ensure_indexes", *args, stdout=out)
    return out.getvalue()


def test_a_build_timeout_at_start_is_one_log_line_and_the_rest_is_built(embedded, monkeypatch, caplog):
    timeout = ExecutionTimeout("operation exceeded time limit", 50, {"codeName": "MaxTimeMSExpired"})
    monkeypatch.setattr(mongomock.collection.Collection, "create_index", refuse_on("estimations", timeout))

    with caplog.at_level(logging.ERROR, logger="modelops.indexes"):
        out = run("--at-start")

    assert "Indexes in place" not in out
    [line] = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert line.startswith("Index build at start failed on estimations: it did not finish within ")
    assert "INDEX_BUILD_TIMEOUT_MS=60000 ms (ExecutionTimeout)" in line
    assert "The API starts all the same" in line and "python manage.py ensure_indexes" in line
    assert "rank" not in embedded["estimations"].index_information()
    assert "version" in embedded["models"].index_information()  # the other collections were indexed


def test_the_operators_run_fails_on_the_same_timeout_and_says_so(embedded, monkeypatch):
    timeout = ExecutionTimeout("operation exceeded time limit", 50, {"codeName": "MaxTimeMSExpired"})
    monkeypatch.setattr(mongomock.collection.Collection, "create_index", refuse_on("estimations", timeout))

    with pytest.raises(CommandError, match=r"failed on estimations: it did not finish within INDEX_BUILD_TIMEOUT_MS="):
        run("--timeout-ms", "900000")


# --- defer ----------------------------------------------------------------------------------------


def test_deferred_the_start_builds_nothing_and_says_what_to_run(embedded, settings, caplog):
    settings.ENSURE_INDEXES = "defer"

    with caplog.at_level(logging.WARNING, logger="modelops.indexes"):
        run("--at-start")

    assert list(embedded["estimations"].index_information()) in ([], ["_id_"])
    [line] = [record.getMessage() for record in caplog.records if record.name == "modelops.indexes"]
    assert line.startswith("ENSURE_INDEXES=defer: no index built at start")
    assert "estimations.rank: missing" in line and line.endswith("Build them with: python manage.py ensure_indexes")
    with pytest.raises(CommandError, match="indexes missing or differing"):
        run("--check")

    run()  # the operator's run builds them, whatever ENSURE_INDEXES says

    assert "rank" in embedded["estimations"].index_information()
    assert "Indexes in place" in run("--check")


# --- TTL ------------------------------------------------------------------------------------------


def refuse_collmod(monkeypatch):
    def command(self, spec, *args, **kwargs):
        raise OperationFailure(UNAUTHORIZED["errmsg"], 13, UNAUTHORIZED)

    monkeypatch.setattr(mongomock.database.Database, "command", command)


def test_a_refused_collmod_keeps_the_expiry_and_names_the_role(monkeypatch):
    store = EstimationStore(mongomock.MongoClient().db.estimations)
    store.ensure_retention(30)
    refuse_collmod(monkeypatch)

    with pytest.raises(RetentionNotChanged) as refused:
        store.ensure_retention(7)

    assert refused.value.code == 13
    assert "needs the dbAdmin role on 'db' (readWrite lacks collMod)" in str(refused.value)
    assert "keeps its expiry of 30 days, not ESTIMATION_TTL_DAYS=7" in str(refused.value)
    assert store.retention_index()[1]["expireAfterSeconds"] == 30 * 86_400


def test_a_refused_collmod_at_start_is_logged_and_does_not_stop_it(embedded, settings, monkeypatch, caplog):
    settings.ESTIMATION_TTL_DAYS = 30
    run()
    settings.ESTIMATION_TTL_DAYS = 7
    refuse_collmod(monkeypatch)

    with caplog.at_level(logging.ERROR, logger="modelops.indexes"):
        run("--at-start")  # no CommandError: the start goes on

    [line] = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert "estimations: MongoDB refused it: the TTL index estimations.retention keeps its expiry of 30 days" in line
    assert "dbAdmin" in line and "(code 13)" in line
    assert indexes.readiness() == "differs: estimations.retention (run: python manage.py ensure_indexes)"
    store = EstimationStore(embedded["estimations"])
    assert store.index_differences(ttl_days=7) == [
        "estimations.retention: differs (expireAfterSeconds 2592000 -> 604800)"
    ]


@pytest.mark.parametrize(
    ("days", "starts"), [("0", True), ("24855", True), ("24856", False), ("-1", False), ("100000", False)]
)
def test_the_ttl_setting_is_checked_at_start(days, starts):
    result = run_django({"SECRET_KEY": "x" * 50, "ESTIMATION_TTL_DAYS": days})

    assert (result.returncode == 0) is starts, result.stderr[-2000:]
    if not starts:
        assert f"ESTIMATION_TTL_DAYS={days}: give the days an estimation is kept, from 1 to 24,855" in result.stderr


def test_an_unknown_ensure_indexes_mode_stops_start_up():
    result = run_django({"SECRET_KEY": "x" * 50, "ENSURE_INDEXES": "later"})

    assert result.returncode != 0 and "ENSURE_INDEXES='later': 'on'" in result.stderr


# --- readiness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", ["mongomock"])
def test_ready_stays_ready_and_says_which_indexes_are_missing(api, settings):
    indexes.forget_check()
    indexes.ensure_all_indexes()
    assert api.get("/health/ready").json()["checks"]["indexes"] == "ok"
    mongo.get_database()["estimations"].drop_index("sales")
    settings.INDEX_CHECK_SECONDS = 0

    response = api.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["indexes"] == "missing: estimations.sales (run: python manage.py ensure_indexes)"


@pytest.mark.parametrize("store_kind", ["mongomock"])
def test_readiness_lists_the_indexes_once_per_interval(api, settings, monkeypatch):
    indexes.forget_check()
    settings.INDEX_CHECK_SECONDS = 60
    listed = []
    check = index_sync.check
    monkeypatch.setattr(index_sync, "check", lambda *args: listed.append(1) or check(*args))

    assert api.get("/health/ready").status_code == 200
    once = len(listed)
    for _ in range(4):
        assert api.get("/health/ready").status_code == 200

    assert once == len(indexes._ensurers()) and len(listed) == once  # one pass over every collection
    indexes.forget_check()


# --- the start chain ------------------------------------------------------------------------------


@dataclass
class RefusingRelay(StoreRelay):
    """The test store on 127.0.0.1, with the deployment relay's nx-27017 adaptation, answering every
    createIndexes on the ``refused`` collection with ``answer`` (a real server's error document)."""

    refused: str = ""
    answer: dict | None = None

    def start(self) -> RefusingRelay:
        import socket

        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((self.address, self.port))
        self._server.listen(64)
        self._sockets = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="refusing-relay").start()
        return self

    def _reply_instead(self, message: bytes) -> dict | None:
        if message[20] != 0:  # not a command body first
            return None
        size = struct.unpack("<i", message[21:25])[0]
        body = bson.decode(message[21 : 21 + size])
        return (self.answer or {}) if body.get("createIndexes") == self.refused else None


@pytest.mark.integration
def test_the_image_start_chain_serves_when_the_index_build_times_out(wire_server, tmp_path):
    """The Dockerfile's CMD, run as it is, on a store whose every index build on estimations times out."""
    [cmd] = [step.json_form for step in dockerfile.parse((ROOT / "Dockerfile").read_text()) if step.op == "CMD"]
    host, port = pymongo.uri_parser.parse_uri(wire_server.uri)["nodelist"][0]
    timeout = {"ok": 0, "code": 50, "codeName": "MaxTimeMSExpired", "errmsg": "operation exceeded time limit"}
    relay = RefusingRelay(
        "", "127.0.0.1", (host, port), {}, wire_server.managed, free_port(), refused="estimations", answer=timeout
    ).start()
    database = f"test_chain_{uuid.uuid4().hex[:8]}"
    http = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DJANGO_ENV_FILE": os.devnull,
        "SECRET_KEY": "chain-test-only-key-" + "x" * 30,
        "MONGO_URI": f"mongodb://127.0.0.1:{relay.port}/{database}",
        "HOST": "127.0.0.1",
        "PORT": str(http),
        "WEB_CONCURRENCY": "1",
        "ALLOW_ANONYMOUS_WRITES": "true",
        "THROTTLE_ANON_RATE": "",
        "MONGO_TIMEOUT_MS": "30000",
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "chain.log"
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"
    try:
        ready = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = request("GET", url + "/health/ready", timeout=5)
                if ready[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        output = log.read_text()
        assert process.poll() is None, f"the chain exited with {process.returncode}:\n{output[-4000:]}"
        assert ready and ready[0] == 200, f"{ready}\n{output[-4000:]}"
        [line] = [line for line in output.splitlines() if "Index build at start failed" in line]
        assert "on estimations: it did not finish within INDEX_BUILD_TIMEOUT_MS=60000 ms (ExecutionTimeout)" in line
        assert "Build them with: python manage.py ensure_indexes" in line
        assert "estimations.rank" in ready[1]["checks"]["indexes"]
        assert ready[1]["checks"]["indexes"].endswith("(run: python manage.py ensure_indexes)")
        # and it serves: an estimate is made, stored and listed
        created = request("POST", url + "/estimations", {"bestseller_rank": 1500, "category": "books"})
        assert created[0] == 201, created
        listed = request("GET", url + "/estimations")
        assert listed[0] == 200 and listed[1]["_meta"]["total"] == 1, listed
    finally:
        stop_process(process)
        relay.stop()
        client = pymongo.MongoClient(wire_server.uri)
        client.drop_database(database)
        client.close()


def test_no_server_at_start_is_one_line_after_one_wait_and_no_password(settings, caplog):
    settings.MONGO_URI = "mongodb://user:s3cret@127.0.0.1:9/x"
    settings.MONGO_SERVER_SELECTION_TIMEOUT_MS = 200
    mongo.reset()
    try:
        with caplog.at_level(logging.ERROR, logger="modelops.indexes"):
            run("--at-start")  # no CommandError
    finally:
        mongo.reset()

    [line] = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert line.startswith("Index build at start failed on estimations: cannot reach MongoDB at 127.0.0.1:9")
    assert "audit:" not in line  # the first collection's wait is the only one: the others would say the same
    assert "s3cret" not in line and "python manage.py ensure_indexes" in line
