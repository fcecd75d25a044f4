"""The production gunicorn config: how the workers share the listening port."""

from __future__ import annotations

import http.client
import os
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "estimator_project" / "gunicorn.conf.py"


def load_config(monkeypatch, **env) -> dict:
    monkeypatch.setenv("DJANGO_ENV_FILE", os.devnull)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_each_worker_listens_on_its_own_socket_by_default(monkeypatch):
    monkeypatch.delenv("GUNICORN_REUSE_PORT", raising=False)

    assert load_config(monkeypatch)["reuse_port"] is True


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("0", False), ("true", True), ("1", True)])
def test_reuse_port_follows_the_setting(monkeypatch, value, expected):
    assert load_config(monkeypatch, GUNICORN_REUSE_PORT=value)["reuse_port"] is expected


@pytest.mark.integration
def test_a_burst_of_keep_alive_clients_is_spread_over_both_workers(wire_server, tmp_path):
    from .live import LiveServer, counts_by_worker, trained_database

    signing_key = "server-signing-key-not-a-secret"
    metrics = tmp_path / "metrics"
    with trained_database(wire_server, "test_server", signing_key) as database:
        server = LiveServer(
            {
                "MONGO_URI": wire_server.uri,
                "MONGO_DB_NAME": database,
                "MODEL_SIGNING_KEY": signing_key,
                "WEB_CONCURRENCY": "2",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                "LOG_LEVEL": "WARNING",
            },
            tmp_path / "server.log",
        )
        server.start()
        try:
            host, port = server.url.removeprefix("http://").split(":")
            # Given 64 clients connecting at once, each keeping its connection open
            connections = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(64)]
            for connection in connections:
                connection.connect()
            # When each asks once
            for connection in connections:
                connection.request("GET", "/health/live")
            for connection in connections:
                assert connection.getresponse().read()
            for connection in connections:
                connection.close()
        finally:
            server.stop()

    # Then each worker answered a fair share (by chance alone, under 16 of 64 happens once in 30,000)
    answered = counts_by_worker(metrics, '"http_requests_total"', '"health-live"')
    assert sum(answered.values()) == 64, answered
    assert len(answered) == 2 and min(answered.values()) >= 16, answered
