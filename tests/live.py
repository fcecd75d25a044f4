"""A real server process for end-to-end tests: gunicorn with the production config, on a free port."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 10):
    """(status, parsed JSON or None, headers) for one HTTP request; errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None, dict(exc.headers)


class LiveServer:
    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DJANGO_ENV_FILE": os.devnull,
            "SECRET_KEY": "live-test-only-key-" + "x" * 30,
            "PORT": str(self.port),
            "LOG_LEVEL": "INFO",
            # As `make run`: anonymous writes, and no throttling to slow a test's request loop.
            "ALLOW_ANONYMOUS_WRITES": "true",
            "THROTTLE_ANON_RATE": "",
            # nx-27017 is far slower than MongoDB at bulk inserts (tests/settings.py); fault tests set less.
            "MONGO_TIMEOUT_MS": "30000",
            **env,
        }
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.process = subprocess.Popen(
            [str(gunicorn), "--config", "estimator_project/gunicorn.conf.py", "estimator_project.wsgi"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                if request("GET", self.url + "/", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.process)


def counts_by_worker(metrics: Path, *parts: str) -> dict[str, float]:
    """Per worker (its metrics file), the sum of the counter samples whose key holds every one of
    ``parts``, read from a server's PROMETHEUS_MULTIPROC_DIR; workers with none are left out."""
    from prometheus_client.mmap_dict import MmapedDict

    found: dict[str, float] = {}
    for path in metrics.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if value and all(part in key for part in parts):
                found[path.stem] = found.get(path.stem, 0) + value
    return found


def stop_process(process: subprocess.Popen | None) -> None:
    """Terminate, and kill if it will not go within 15 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def trained_database(wire_server, prefix: str, signing_key: str):
    """A fresh database on the wire server, indexed and with the sample model active, for a live server.

    This process's settings point at it meanwhile (to train, create keys, inspect); they are restored after.
    """
    import io as _io
    import uuid

    from django.conf import settings
    from django.core.management import call_command

    from core import mongo
    from ml import serving
    from tests.conftest import ensure_test_indexes
    from tests.helpers import SAMPLE_CSV

    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    saved = (settings.MONGO_URI, settings.MONGO_DB_NAME, settings.MODEL_SIGNING_KEY)
    settings.MONGO_URI, settings.MONGO_DB_NAME, settings.MODEL_SIGNING_KEY = wire_server.uri, database, signing_key
    mongo.reset()
    serving.reset()
    try:
        ensure_test_indexes(mongo.get_database(), on_nx_27017=wire_server.managed)
        call_command("train_model", "--csv", str(SAMPLE_CSV), stdout=_io.StringIO())
        yield database
    finally:
        mongo.get_client().drop_database(database)
        settings.MONGO_URI, settings.MONGO_DB_NAME, settings.MODEL_SIGNING_KEY = saved
        mongo.reset()
        serving.reset()


@contextlib.contextmanager
def served(wire_server, tmp_path: Path, **env: str) -> Iterator[tuple[str, int]]:
    """The production server on a fresh trained database of the wire server, with ``env``; (host, port)."""
    signing_key = "server-signing-key-not-a-secret"
    with trained_database(wire_server, "test_server", signing_key) as database:
        server = LiveServer(
            {
                "MONGO_URI": wire_server.uri,
                "MONGO_DB_NAME": database,
                "MODEL_SIGNING_KEY": signing_key,
                "LOG_LEVEL": "WARNING",
                **env,
            },
            tmp_path / "server.log",
        )
        server.start()
        try:
            host, port = server.url.removeprefix("http://").split(":")
            yield host, int(port)
        finally:
            server.stop()
