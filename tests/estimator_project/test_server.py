"""The production gunicorn config: how the workers share the listening port."""

from __future__ import annotations

import http.client
import os
import runpy
from pathlib import Path

import pytest

from core import runtime
from tests.live import served

ROOT = Path(__file__).resolve().parent.parent.parent
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


@pytest.mark.parametrize(
    ("name", "value"),
    [("GUNICORN_REUSE_PORT", "maybe"), ("WEB_CONCURRENCY", "two"), ("GUNICORN_TIMEOUT", "-5")],
)
def test_a_gunicorn_setting_it_cannot_take_stops_the_start_naming_it(monkeypatch, name, value):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("MONGO_URI", "mongodb://db:27017/x")  # WEB_CONCURRENCY is read with a database only
    with pytest.raises(ImproperlyConfigured, match=f"^{name}='{value}': it takes"):
        load_config(monkeypatch, **{name: value})


@pytest.mark.parametrize("value", ["99999", "0", "-1", "80a", "８０"])
def test_a_port_it_cannot_bind_stops_the_start_saying_what_it_takes(monkeypatch, value):
    with pytest.raises(SystemExit, match=r"^PORT=.*: give a port number from 1 to 65535"):
        load_config(monkeypatch, PORT=value)


@pytest.mark.integration
def test_a_burst_of_keep_alive_clients_is_spread_over_both_workers(wire_server, tmp_path):
    from tests.live import counts_by_worker

    metrics = tmp_path / "metrics"
    with served(wire_server, tmp_path, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics)) as (host, port):
        # Given 64 clients connecting at once, each keeping its connection open
        connections = [http.client.HTTPConnection(host, port, timeout=10) for _ in range(64)]
        for connection in connections:
            connection.connect()
        # When each asks once
        for connection in connections:
            connection.request("GET", "/health/live")
        for connection in connections:
            assert connection.getresponse().read()
        for connection in connections:
            connection.close()

    # Then each worker answered a fair share (by chance alone, under 16 of 64 happens once in 30,000)
    answered = counts_by_worker(metrics, '"http_requests_total"', '"health-live"')
    assert sum(answered.values()) == 64, answered
    assert len(answered) == 2 and min(answered.values()) >= 16, answered


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MONGO_URI": "mongodb://db:27017/x"}, ("gevent", 2)),
        ({"MONGO_URI": "mongodb://db:27017/x", "GUNICORN_WORKER_CLASS": "gthread"}, ("gthread", 2)),
        # the embedded store: one process, whatever is asked, and gevent, so no client holds up another
        ({"MONGO_URI": ""}, ("gevent", 1)),
        ({"MONGO_URI": "", "GUNICORN_WORKER_CLASS": "gthread", "WEB_CONCURRENCY": "4"}, ("gevent", 1)),
    ],
)
def test_worker_class_and_count_follow_the_store(monkeypatch, env, expected):
    monkeypatch.delenv("GUNICORN_WORKER_CLASS", raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)

    config = load_config(monkeypatch, **env)

    assert (config["worker_class"], config["workers"]) == expected


def test_the_embedded_stores_one_worker_is_never_restarted_for_being_silent(monkeypatch):
    # A restart would lose the only copy of the data; with MongoDB a silent worker is restarted
    assert load_config(monkeypatch, MONGO_URI="", GUNICORN_TIMEOUT="5")["timeout"] == 0
    assert load_config(monkeypatch, MONGO_URI="mongodb://db:27017/x", GUNICORN_TIMEOUT="5")["timeout"] == 5


def test_each_request_ends_by_giving_way(monkeypatch):

    calls = []
    monkeypatch.setattr(runtime, "give_way", lambda: calls.append("turn"))
    load_config(monkeypatch)["post_request"](None, None)

    assert calls == ["turn"]


@pytest.mark.integration
def test_keep_alive_connections_are_served_in_turn_under_gevent(wire_server, tmp_path):
    """A request that never waits on I/O must not let its connection keep the worker: with the client's
    next request already read, gevent would serve that connection again and again (measured: p99 of
    1.4 s for /health/live at 16 connections on one worker, p50 1 ms)."""
    import socket
    import threading

    clients, per_client = 16, 20
    order: list[int] = []  # the client of each response, in the order they arrived
    lock = threading.Lock()

    def read_all(index: int, sock: socket.socket) -> None:
        buffered, seen = b"", 0
        while seen < per_client:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buffered += chunk
            # Every answer of /health/live carries one status line
            while b"HTTP/1.1 200" in buffered:
                _, _, buffered = buffered.partition(b"HTTP/1.1 200")
                seen += 1
                with lock:
                    order.append(index)

    with served(wire_server, tmp_path, WEB_CONCURRENCY="1") as (host, port):
        sockets = [socket.create_connection((host, port), timeout=30) for _ in range(clients)]
        readers = [threading.Thread(target=read_all, args=(i, s)) for i, s in enumerate(sockets)]
        for reader in readers:
            reader.start()
        # Given every client's next requests already waiting (pipelined) when its answer is sent
        request = f"GET /health/live HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        for sock in sockets:
            sock.sendall(request * per_client)
        for reader in readers:
            reader.join(timeout=60)
        for sock in sockets:
            sock.close()

    # Then the worker took the clients in turn: each had its first answer among the first few rounds,
    # not after other clients' whole queues (one connection at a time: up to 15 x 20 answers before it)
    assert len(order) == clients * per_client
    first_answer = {client: order.index(client) for client in range(clients)}
    assert max(first_answer.values()) < 4 * clients, first_answer


def bind_under_make(tmp_path: Path, dotenv: str, **env: str) -> str:
    """The address gunicorn.conf.py binds when `make` runs it with ``env``, and ``dotenv`` as the .env file:
    the Makefile's variables and exports apply, as for `make run`."""
    import subprocess
    import sys

    (tmp_path / ".env").write_text(dotenv)
    show = f"""show-bind: ; @'{sys.executable}' -c 'import runpy; print(runpy.run_path("{CONFIG}")["bind"])'"""
    environment = {key: value for key, value in os.environ.items() if key != "PORT"}
    environment.update(DJANGO_ENV_FILE=str(tmp_path / ".env"), **env)
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "--eval", show, "show-bind"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_make_serves_on_the_port_in_env_file(tmp_path):
    assert bind_under_make(tmp_path, "PORT=8123\n") == "0.0.0.0:8123"


def test_make_serves_on_the_port_of_the_environment_over_the_env_file(tmp_path):
    assert bind_under_make(tmp_path, "PORT=8123\n", PORT="8124") == "0.0.0.0:8124"


def test_make_serves_on_8000_without_a_port_anywhere(tmp_path):
    assert bind_under_make(tmp_path, "DEBUG=false\n") == "0.0.0.0:8000"


def test_make_run_serves_this_machine_only_by_the_env_file_it_writes(tmp_path):
    written = (ROOT / ".env.example").read_text()

    assert bind_under_make(tmp_path, written) == "127.0.0.1:8000"
    assert bind_under_make(tmp_path, written, HOST="0.0.0.0") == "0.0.0.0:8000"


@pytest.mark.integration
def test_a_port_another_server_holds_is_refused_at_start_with_what_to_do(wire_server, tmp_path):
    import socket

    from tests.live import LiveServer

    # Given a port held by another program, and one held by another of our servers (SO_REUSEPORT too)
    with socket.socket() as other:
        other.bind(("0.0.0.0", 0))
        other.listen()
        held = other.getsockname()[1]
        first = LiveServer({"PORT": str(held)}, tmp_path / "taken.log")
        first.port, first.url = held, f"http://127.0.0.1:{held}"
        # When a server starts on it, then it exits at once, saying so (not a worker restarted for ever)
        with pytest.raises(RuntimeError, match=f"Cannot listen on 0.0.0.0:{held} .*set PORT to a free port"):
            first.start(timeout=20)
    ours = LiveServer({}, tmp_path / "ours.log")
    ours.start()
    try:
        second = LiveServer({"PORT": str(ours.port)}, tmp_path / "second.log")
        # (its start() would be answered by the first server: wait for the second's process to end instead)
        with pytest.raises(RuntimeError):
            second.start(timeout=0)
        assert second.process.wait(timeout=20) != 0
        assert "another server holds that port" in second.log.read_text()
    finally:
        ours.stop()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.integration
@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_ctrl_c_stops_the_server_without_a_traceback(wire_server, tmp_path, worker_class):
    """Ctrl-C in a terminal sends SIGINT to every process of the server: the master and its workers."""
    import signal

    from tests.live import LiveServer

    server = LiveServer(
        {"MONGO_URI": wire_server.uri, "WEB_CONCURRENCY": "2", "GUNICORN_WORKER_CLASS": worker_class},
        tmp_path / "server.log",
    )
    server.start()
    try:
        workers = children(server.process.pid)
        assert len(workers) == 2, workers
        for pid in [server.process.pid, *workers]:
            os.kill(pid, signal.SIGINT)
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()

    log = server.log.read_text()
    assert "Shutting down: Master" in log, log[-2000:]
    assert "Traceback" not in log and "SystemExit" not in log, log[-3000:]
