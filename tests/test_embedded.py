"""The embedded default (`make run` without MONGO_URI): one server process holding an in-memory store.

It must behave like a server: a silent or slow client never holds up the others; it prints an admin key
for the run, so the admin pages work without MongoDB; and a management command, which runs in a process of
its own and so cannot reach that store, says so and fails instead of reporting a success nobody sees.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from .live import LiveServer, request

KEY = re.compile(r"^\s*(sek_[A-Za-z0-9_-]{40,})\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory) -> Iterator[LiveServer]:
    """The production server as `make run` starts it with no MONGO_URI (LiveServer sets none)."""
    server = LiveServer({"LOG_LEVEL": "WARNING"}, tmp_path_factory.mktemp("embedded") / "server.log")
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


def timed(method: str, url: str, body=None, headers: dict | None = None) -> tuple[int | None, float]:
    """(status, seconds) of one request on a new connection; no status if none came within 10 s."""
    started = time.monotonic()
    try:
        status: int | None = request(method, url, body, headers, timeout=10)[0]
    except OSError:
        status = None
    return status, time.monotonic() - started


@contextlib.contextmanager
def stalling_clients(host: str, port: int, idle: int = 4) -> Iterator[dict[str, bytes]]:
    """Clients that hold connections without finishing a request: ``idle`` that send nothing, one that
    sends a request line and never the blank line that ends the head, and a POST whose body comes a byte
    a second. The POST's rest is sent when the block ends; its answer is then put in what was yielded."""
    opened = [socket.create_connection((host, port), timeout=30) for _ in range(idle)]
    partial = socket.create_connection((host, port), timeout=30)
    partial.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    opened.append(partial)
    body = b'{"bestseller_rank": 70}'
    slow = socket.create_connection((host, port), timeout=30)
    slow.sendall(
        b"POST /estimations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    opened.append(slow)
    done = threading.Event()

    def trickle() -> None:
        sent = 0
        while not done.wait(1.0) and sent < len(body) - 1:
            slow.sendall(body[sent : sent + 1])
            sent += 1
        slow.sendall(body[sent:])

    trickler = threading.Thread(target=trickle)
    trickler.start()
    outcome = {"slow_post": b""}
    try:
        time.sleep(1.5)  # every one of them connected and (the POST) a byte into its body
        yield outcome
    finally:
        done.set()
        trickler.join()
        slow.settimeout(10)
        with contextlib.suppress(OSError):
            outcome["slow_post"] = slow.recv(4096)
        for sock in opened:
            sock.close()


def test_silent_and_slow_clients_never_hold_up_the_others(embedded_server):
    host, port = embedded_server.url.removeprefix("http://").split(":")
    url = embedded_server.url

    with stalling_clients(host, int(port)) as outcome:
        # While all of them stall, each kind of request is still answered at once, again and again
        answers = []
        for _ in range(3):
            answers.append(("live", *timed("GET", url + "/health/live")))
            answers.append(("get", *timed("GET", url + "/estimations")))
            answers.append(("post", *timed("POST", url + "/estimations", {"bestseller_rank": 500})))

    assert [(kind, status) for kind, status, _ in answers] == [("live", 200), ("get", 200), ("post", 201)] * 3, answers
    slowest = max(seconds for _, _, seconds in answers)
    assert slowest < 1.0, answers
    # And the slow POST, once its body is in, is answered too
    assert outcome["slow_post"].startswith(b"HTTP/1.1 201"), outcome["slow_post"][:300]


@pytest.mark.integration
def test_in_production_too_silent_and_slow_clients_never_hold_up_the_others(wire_server, tmp_path):
    from .test_server import served

    with served(wire_server, tmp_path) as (host, port), stalling_clients(host, port) as outcome:
        url = f"http://{host}:{port}"
        answers = [
            ("live", *timed("GET", url + "/health/live")),
            ("get", *timed("GET", url + "/estimations")),
            ("post", *timed("POST", url + "/estimations", {"bestseller_rank": 500})),
        ]

    assert [(kind, status) for kind, status, _ in answers] == [("live", 200), ("get", 200), ("post", 201)], answers
    assert max(seconds for _, _, seconds in answers) < 1.0, answers
    assert outcome["slow_post"].startswith(b"HTTP/1.1 201"), outcome["slow_post"][:300]
