"""Fixtures: a store per test (mongomock, or a real MongoDB wire connection), and an API client.

Integration tests speak the MongoDB wire protocol. With TEST_MONGO_URI set they use that server (a
real MongoDB 7); otherwise a session fixture starts ``nx-27017`` (a wire-protocol server on SQLite)
on a free port with a temporary data directory. The code under test has no branch for either.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymongo
import pytest
from openapi_schema_validator import OAS30Validator
from pymongo.errors import PyMongoError
from rest_framework.test import APIClient

from core import mongo
from core.api_keys import api_key_store
from core.audit import COLLECTION as AUDIT
from core.audit import INDEXES as AUDIT_INDEXES
from estimations.store import COLLECTION as ESTIMATIONS
from estimations.store import INDEXES
from ml import serving
from ml.data import read_training_csv
from ml.train import TrainedModel, train
from tests.helpers import SAMPLE_CSV
from tests.live import free_port, stop_process

STORES = ["mongomock", pytest.param("wire", marks=pytest.mark.integration)]


def _nx_executable() -> str:
    beside_python = Path(sys.executable).parent / "nx-27017"
    found = str(beside_python) if beside_python.exists() else shutil.which("nx-27017")
    if not found:
        pytest.fail("nx-27017 is not installed: pip install -r requirements-dev.txt")
    return found


def _wait_for(uri: str, process: subprocess.Popen | None, log: Path | None) -> None:
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=500)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                if process is not None and process.poll() is not None:
                    pytest.fail(f"nx-27017 exited with {process.returncode}: {log.read_text() if log else ''}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no MongoDB wire-protocol server answered at {uri}")
                time.sleep(0.1)
    finally:
        client.close()


class WireServer:
    """A wire-protocol server the tests can stop and start again (fault tests)."""

    def __init__(self, uri: str, data_dir: Path | None, port: int | None):
        self.uri = uri
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def managed(self) -> bool:
        return self.data_dir is not None

    def start(self) -> None:
        assert self.data_dir is not None and self.port is not None
        log = self.data_dir / "server.log"
        self.process = subprocess.Popen(
            [
                _nx_executable(),
                "--data-dir",
                str(self.data_dir / "data"),
                "--host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--log-file",
                str(log),
                "--pid-file",
                str(self.data_dir / "server.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(self.uri, self.process, log)

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory) -> Iterator[WireServer]:
    uri = os.environ.get("TEST_MONGO_URI")
    if uri:
        _wait_for(uri, None, None)
        yield WireServer(uri, None, None)
        return
    data_dir = tmp_path_factory.mktemp("nx27017")
    (data_dir / "data").mkdir()
    port = free_port()
    server = WireServer(f"mongodb://127.0.0.1:{port}/", data_dir, port)
    server.start()
    yield server
    server.stop()


def ensure_test_indexes(database, *, on_nx_27017: bool) -> None:
    """The production indexes (estimations, audit), adapted where the test server departs from MongoDB.

    nx-27017 cannot index ``_id`` inside a compound index (MongoDB can, and the sort indexes end in
    ``_id``): it accepts createIndexes and then fails every insert. On that server only, the same
    indexes are built without ``_id``; on mongomock and on a real MongoDB (TEST_MONGO_URI) they are
    created exactly as in production.
    """
    for collection, indexes in ((database[ESTIMATIONS], INDEXES), (database[AUDIT], AUDIT_INDEXES)):
        if not on_nx_27017:
            collection.create_indexes(indexes)
            continue
        for index in indexes:
            keys = [(field, direction) for field, direction in index.document["key"].items() if field != "_id"]
            options = {name: value for name, value in index.document.items() if name != "key"}
            collection.create_index(keys, **options)


@contextlib.contextmanager
def own_wire_server(tmp_path: Path, settings, database: str, signing_key: str) -> Iterator[WireServer]:
    """A test's own nx-27017 server (to stop or freeze without disturbing the suite's), the settings
    pointed at ``database`` on it, its indexes made and the sample model trained and active."""
    if os.environ.get("TEST_MONGO_URI"):
        pytest.skip("stopping or freezing the database needs the test's own nx-27017 server")
    from django.core.management import call_command

    (tmp_path / "data").mkdir()
    port = free_port()
    server = WireServer(f"mongodb://127.0.0.1:{port}/", tmp_path, port)
    server.start()
    settings.MONGO_URI, settings.MONGO_DB_NAME, settings.MODEL_SIGNING_KEY = server.uri, database, signing_key
    mongo.reset()
    serving.reset()
    try:
        ensure_test_indexes(mongo.get_database(), on_nx_27017=True)
        call_command("train_model", "--csv", str(SAMPLE_CSV), stdout=io.StringIO())
        yield server
    finally:
        server.stop()
        mongo.reset()
        serving.reset()


@pytest.fixture(params=STORES)
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def mongo_db(store_kind, settings, request):
    """A fresh, indexed database on the chosen store, dropped afterwards."""
    server = request.getfixturevalue("wire_server") if store_kind == "wire" else None
    settings.MONGO_URI = server.uri if server else ""
    settings.MONGO_DB_NAME = f"test_{uuid.uuid4().hex[:12]}"
    mongo.reset()
    serving.reset()
    database = mongo.get_database()
    if not server:
        mongo.serve_embedded_store()  # the tests' API client serves from this process's embedded store
    ensure_test_indexes(database, on_nx_27017=bool(server and server.managed))
    yield database
    try:
        mongo.get_client().drop_database(settings.MONGO_DB_NAME)
    except PyMongoError:
        pass  # a fault test may have stopped the server
    mongo.reset()
    serving.reset()


@pytest.fixture(scope="session")
def trained_model() -> TrainedModel:
    """One model trained on the shipped sample data, shared by the session (training takes ~0.1 s)."""
    return train(read_training_csv(SAMPLE_CSV, progress=False))


@pytest.fixture
def active_model(mongo_db, trained_model) -> dict:
    """The session's model stored and activated in this test's database; its metadata."""
    registry = serving.model_registry()
    registry.ensure_indexes()
    metadata = registry.save(trained_model)
    registry.activate(metadata["version"])
    return metadata


@pytest.fixture
def on_nx_27017(store_kind, request) -> bool:
    return store_kind == "wire" and request.getfixturevalue("wire_server").managed


@pytest.fixture(scope="session")
def openapi_spec(trained_model) -> dict:
    """The schema the service publishes at /api/schema/ while the session's model is active."""
    mongo.reset()
    serving.reset()
    registry = serving.model_registry()  # the embedded store, default database: tests/settings.py
    registry.activate(registry.save(trained_model)["version"])
    try:
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == 200, response.content
        return json.loads(response.content)
    finally:
        mongo.get_client().drop_database(mongo.database_name())
        mongo.reset()
        serving.reset()


class SchemaCheckingClient(APIClient):
    """An API client that checks every answer against the published OpenAPI schema.

    A status code the schema does not list for the operation, or a JSON body that does not match
    the documented schema, fails the test that made the request: what the tests exercise is what a
    client generated from the schema will meet.
    """

    def __init__(self, spec: dict, **defaults):
        super().__init__(**defaults)
        self.spec = spec
        self.routes = [
            (re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "/?$"), path) for path in spec["paths"]
        ]
        self.checked = 0

    def request(self, **kwargs):
        response = super().request(**kwargs)
        self._check(kwargs["REQUEST_METHOD"].lower(), kwargs["PATH_INFO"], response)
        return response

    def _validate(self, schema: dict, body, where: str) -> None:
        validator = OAS30Validator({**schema, "components": self.spec["components"]})
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, f"{where}: body does not match the schema: {errors[0].message}\n{body}"
        self.checked += 1

    def _check(self, method: str, path: str, response) -> None:
        if method in ("options", "head"):
            return
        is_json = response.get("Content-Type", "").startswith("application/json")
        operation = next(
            (self.spec["paths"][template].get(method) for pattern, template in self.routes if pattern.match(path)),
            None,
        )
        if operation is None:
            if response.status_code >= 400 and is_json:
                self._validate({"$ref": "#/components/schemas/Error"}, response.json(), f"{method} {path}")
            return
        where = f"{method.upper()} {path} -> {response.status_code}"
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, f"{where}: status not in the schema ({sorted(operation['responses'])})"
        if is_json and response.content:
            schema = documented.get("content", {}).get("application/json", {}).get("schema")
            assert schema is not None, f"{where}: the schema documents no JSON body"
            self._validate(schema, response.json(), where)


@pytest.fixture
def keys(mongo_db) -> dict[str, str]:
    """A 'write' and an 'admin' API key in this test's database (named write-client, admin-client)."""
    store = api_key_store()
    store.ensure_indexes()
    return {scope: store.create(name=f"{scope}-client", scope=scope) for scope in ("write", "admin")}


@pytest.fixture
def api(mongo_db, active_model, openapi_spec) -> SchemaCheckingClient:
    """An API client on a fresh database with an active model, checking answers against the schema."""
    return SchemaCheckingClient(openapi_spec)


@pytest.fixture
def api_without_model(mongo_db, openapi_spec) -> SchemaCheckingClient:
    return SchemaCheckingClient(openapi_spec)
