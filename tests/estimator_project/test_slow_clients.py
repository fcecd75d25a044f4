"""Slow and silent clients are bounded: hundreds of them hold no worker, and each is cut off in a stated time.

gunicorn (gevent workers, the production config and the embedded default alike) closes a connection whose
request head has not come within its ``keepalive`` (5 s); a body that falls behind ``CLIENT_BODY_TIMEOUT``
(plus its size at ``CLIENT_BODY_MIN_RATE``) answers 408 in the error envelope (core/deadlines.py).
Behind nginx, nginx's own timeouts and buffering come first (deploy/nginx.conf, tests/deploy/).
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.live import LiveServer, request

HEAD_TIMEOUT = 5.0  # gunicorn's keepalive (estimator_project/gunicorn.conf.py)
BODY_TIMEOUT = 3.0  # CLIENT_BODY_TIMEOUT of the servers here
IDLE, SLOW = 150, 150  # sockets of each kind
MARGIN = 3.0  # seconds past the stated time a cut-off may take on a loaded 2-core machine
BODY = b'{"bestseller_rank": 70}'


def timed(method: str, url: str, body=None) -> tuple[int | None, float]:
    started = time.monotonic()
    try:
        status: int | None = request(method, url, body, timeout=10)[0]
    except OSError:
        status = None
    return status, time.monotonic() - started


class Stalling:
    """``IDLE`` sockets that send nothing (every other one a request line and no end of head) and ``SLOW``
    POSTs whose body comes a byte a second; each one's end (when the server answered or closed it) is
    recorded as seconds after it was opened, with what it got."""

    def __init__(self, host: str, port: int):
        self.address = (host, port)
        self.opened: dict[socket.socket, tuple[str, float]] = {}
        self.ended: dict[socket.socket, tuple[float, bytes]] = {}
        self.received: dict[socket.socket, bytes] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def open(self) -> None:
        for n in range(IDLE):
            sock = socket.create_connection(self.address, timeout=10)
            if n % 2:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.opened[sock] = ("idle", time.monotonic())
        for _ in range(SLOW):
            sock = socket.create_connection(self.address, timeout=10)
            sock.sendall(
                b"POST /estimations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(BODY)
            )
            self.opened[sock] = ("slow", time.monotonic())
        self.threads = [threading.Thread(target=self._trickle), threading.Thread(target=self._watch)]
        for thread in self.threads:
            thread.start()

    def _trickle(self) -> None:
        sent = 0
        while not self.stop.wait(1.0) and sent < len(BODY) - 1:
            for sock, (kind, _) in self.opened.items():
                with self.lock:
                    if kind != "slow" or sock in self.ended:
                        continue
                with contextlib.suppress(OSError):
                    sock.send(BODY[sent : sent + 1])
            sent += 1

    def _watch(self) -> None:
        selector = selectors.DefaultSelector()
        for sock in self.opened:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while not self.stop.is_set() and len(self.ended) < len(self.opened):
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                self.received[sock] = self.received.get(sock, b"") + data
                if not data:  # closed by the server: the end of this client
                    selector.unregister(sock)
                    with self.lock:
                        self.ended[sock] = (time.monotonic() - self.opened[sock][1], self.received[sock])
        selector.close()

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while len(self.ended) < len(self.opened) and time.monotonic() < deadline:
            time.sleep(0.2)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        for sock in self.opened:
            sock.close()

    def ends(self, kind: str) -> list[tuple[float, bytes]]:
        return [self.ended.get(sock, (float("inf"), b"")) for sock, (k, _) in self.opened.items() if k == kind]


@contextlib.contextmanager
def stalling(host: str, port: int) -> Iterator[Stalling]:
    clients = Stalling(host, port)
    try:
        clients.open()
        yield clients
    finally:
        clients.close()


def check_bounded(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with stalling(host, int(port)) as clients:
        time.sleep(1.5)  # all of them connected, the POSTs a byte into their bodies
        # While 300 sockets stall, the others are answered at once, again and again
        answers = []
        for _ in range(3):
            answers.append(("live", *timed("GET", url + "/health/live")))
            answers.append(("post", *timed("POST", url + "/estimations", {"bestseller_rank": 500})))
        assert [(kind, status) for kind, status, _ in answers] == [("live", 200), ("post", 201)] * 3, answers
        assert max(seconds for *_, seconds in answers) < 1.0, answers

        clients.wait(max(HEAD_TIMEOUT, BODY_TIMEOUT) + MARGIN + 1)

        # And each stalling client was cut off in its stated time: a silent one closed after the head
        # timeout, a trickling body answered 408 in the envelope after the body timeout
        idle, slow = clients.ends("idle"), clients.ends("slow")
    late_idle = [seconds for seconds, _ in idle if not HEAD_TIMEOUT - 0.5 <= seconds <= HEAD_TIMEOUT + MARGIN]
    assert not late_idle, f"{len(late_idle)} of {IDLE} silent clients not closed in time: {sorted(late_idle)[:5]}"
    late_slow = [seconds for seconds, _ in slow if not BODY_TIMEOUT - 0.5 <= seconds <= BODY_TIMEOUT + MARGIN]
    assert not late_slow, f"{len(late_slow)} of {SLOW} trickling bodies not cut off in time: {sorted(late_slow)[:5]}"
    for _, answer in slow:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer[:300]
        error = json.loads(body)
        assert error["_status"] == "ERR" and error["_error"]["code"] == 408, error
        assert error["_error"]["message"].startswith("The request body did not arrive in time"), error
    # The service is still whole afterwards
    assert timed("POST", url + "/estimations", {"bestseller_rank": 501})[0] == 201


def test_the_embedded_default_bounds_hundreds_of_slow_and_silent_clients(tmp_path):
    server = LiveServer({"LOG_LEVEL": "WARNING", "CLIENT_BODY_TIMEOUT": str(BODY_TIMEOUT)}, tmp_path / "server.log")
    server.start(timeout=60)
    try:
        check_bounded(server.url)
    finally:
        server.stop()


@pytest.mark.integration
def test_production_gunicorn_reached_directly_bounds_hundreds_of_slow_and_silent_clients(wire_server, tmp_path):
    from tests.live import served

    with served(wire_server, tmp_path, CLIENT_BODY_TIMEOUT=str(BODY_TIMEOUT)) as (host, port):
        check_bounded(f"http://{host}:{port}")


def test_a_body_cut_off_says_how_much_of_it_came_and_closes_the_connection(tmp_path):
    server = LiveServer({"LOG_LEVEL": "WARNING", "CLIENT_BODY_TIMEOUT": "1"}, tmp_path / "server.log")
    server.start(timeout=60)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
            sock.sendall(
                b"POST /estimations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )
            time.sleep(0.2)
            sock.sendall(b'{"bestseller')  # 12 of the 100 bytes, then nothing
            answer = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        headers = {line.split(b":")[0].lower(): line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]}
        assert head.startswith(b"HTTP/1.1 408"), answer[:300]
        assert headers[b"connection"] == b"close", head
        message = json.loads(body)["_error"]["message"]
        assert "and 12 bytes came" in message, message
    finally:
        server.stop()
