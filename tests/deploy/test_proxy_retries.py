"""deploy/nginx.conf never sends a write to a second API host once one host has it, and GETs fail over.

Debian's nginx runs deploy/nginx.conf in a network namespace, as the compose topology runs it
(tests/deploy/topology.py), in front of two tiny API hosts of its own: each answers 200 and counts what
reaches it, except that the first request to reach either for a path that starts ``/hang`` gets no
answer, and for one that starts ``/drop`` has its connection closed once its request is read (a host
that hangs, and one that dies mid-request). A write may have been applied in both cases, so it must
reach one host only and be answered by nginx, in the API's error envelope; a GET must be answered by
the other host.

The one change to the file: ``proxy_read_timeout 60s`` becomes 2 s, so a hang is seen in 2 s, not 60.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.deploy import netns
from tests.deploy.conftest import needs
from tests.deploy.dockerfile import ROOT
from tests.deploy.topology import start_nginx, stop_nginx

pytestmark = pytest.mark.integration

READ_TIMEOUT = "proxy_read_timeout 60s;"


class Hosts:
    """What the two API hosts saw: (host, method, path, body), in order; and the hanging ones' release."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str, bytes]] = []
        self.release = threading.Event()

    def arrived(self, host: str, method: str, path: str, body: bytes) -> bool:
        """Record an arrival; whether it is the first for its path (which hangs or drops)."""
        with self.lock:
            first = not any(seen_path == path for _, _, seen_path, _ in self.seen)
            self.seen.append((host, method, path, body))
            return first

    def of(self, path: str) -> list[tuple[str, str, str, bytes]]:
        with self.lock:
            return [seen for seen in self.seen if seen[2] == path]


def handler_for(host: str, hosts: Hosts) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            first = hosts.arrived(host, self.command, self.path, body)
            if first and self.path.startswith("/hang"):
                hosts.release.wait(20)  # no answer: nginx gives up after its read timeout
                self.close_connection = True
                return
            if first and self.path.startswith("/drop"):
                self.close_connection = True  # the request was read; the host dies before it answers
                return
            if self.path.startswith(("/cut", "/whole")):  # a streamed answer (an export) in chunks
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for row in (b"_id,bestseller_rank\n", b"1,70\n"):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(row), row))
                    self.wfile.flush()
                if self.path.startswith("/whole"):
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True  # /cut: the host ends it without the last chunk
                return
            payload = json.dumps({"host": host, "method": self.command, "body": body.decode()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    return Handler


@pytest.fixture(scope="module")
def proxy():
    """(send, hosts): send(method, path, body) -> (status, headers, body) through nginx on localhost:8000."""
    if os.geteuid() != 0:
        needs("root: they make network namespaces")
    for tool in ("ip", "setpriv", "unshare"):
        if not shutil.which(tool):
            needs(f"the '{tool}' command")
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        needs("Debian's nginx")
    conf = (ROOT / "deploy/nginx.conf").read_text()
    assert conf.count(READ_TIMEOUT) == 1, "the test shortens deploy/nginx.conf's proxy_read_timeout"
    hosts = Hosts()
    network = netns.Network("retry").create()
    servers: list[http.server.ThreadingHTTPServer] = []
    nginx = None
    prefix = Path(tempfile.mkdtemp(prefix="retry-proxy-"))
    os.chmod(prefix, 0o755)
    try:
        apis = [network.attach(f"api-{n}") for n in (1, 2)]
        front = network.attach("proxy")
        netns.DnsResponder(front.netns, {"api": [api.address for api in apis]}).start()
        for api in apis:
            server = netns.in_netns(
                api.netns,
                lambda api=api: http.server.ThreadingHTTPServer((api.address, 8000), handler_for(api.hostname, hosts)),
            )
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
        nginx = start_nginx(front.netns, prefix, conf.replace(READ_TIMEOUT, "proxy_read_timeout 2s;"))

        def send(method: str, path: str, body: bytes | None = None, extra: dict | None = None):
            headers = {"Content-Type": "application/json"} if body is not None else {}
            headers.update(extra or {})
            return netns.request(front.netns, method, "http://localhost:8000" + path, body, headers, timeout=30)

        deadline = time.monotonic() + 20
        while True:
            assert nginx.poll() is None, (prefix / "error.log").read_text()[-3000:]
            try:
                if send("GET", "/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (prefix / "error.log").read_text()[-3000:]
            time.sleep(0.2)
        yield send, hosts
    finally:
        hosts.release.set()
        if nginx is not None:
            stop_nginx(nginx)
        for server in servers:
            server.shutdown()
            server.server_close()
        network.remove()
        shutil.rmtree(prefix, ignore_errors=True)


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:8]}"


def envelope(raw: bytes, code: int) -> str:
    body = json.loads(raw)
    assert set(body) == {"_status", "_error"} and body["_status"] == "ERR" and body["_error"]["code"] == code, body
    return body["_error"]["message"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST", "PATCH"])
@pytest.mark.parametrize("fault", ["hang", "drop"])
def test_a_write_that_reached_a_host_is_never_sent_to_the_other(proxy, method, fault):
    send, hosts = proxy
    path = unique(f"/{fault}/{method.lower()}")

    status, headers, raw = send(method, path, b'{"bestseller_rank": 5}')

    # nginx answers it itself, in the envelope, saying the write may have been applied and how to check
    expected = 504 if fault == "hang" else 502
    assert status == expected, raw
    assert headers["Content-Type"].startswith("application/json")
    message = envelope(raw, expected)
    assert "may have been applied" in message and "If-Match" in message and "Idempotency-Key" in message
    # And only one host ever saw it
    time.sleep(0.5)  # long enough for a resend to arrive, were there one
    arrivals = hosts.of(path)
    assert [(method_seen, body) for _, method_seen, _, body in arrivals] == [(method, b'{"bestseller_rank": 5}')]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("fault", ["hang", "drop"])
def test_a_read_fails_over_to_the_other_host(proxy, method, fault):
    send, hosts = proxy
    path = unique(f"/{fault}/{method.lower()}")

    status, _, raw = send(method, path)

    assert status == 200, raw
    arrivals = hosts.of(path)
    assert len(arrivals) == 2 and arrivals[0][0] != arrivals[1][0], arrivals  # one each
    if method == "GET":
        assert json.loads(raw)["host"] == arrivals[1][0]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "POST"])
def test_a_write_reaches_a_host_with_its_method_and_body(proxy, method):
    send, hosts = proxy
    path = unique("/ok")

    status, _, raw = send(method, path, b'{"bestseller_rank": 7}')

    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["method"] == method and answer["body"] == '{"bestseller_rank": 7}'
    assert len(hosts.of(path)) == 1


def test_a_body_over_the_proxy_limit_is_refused_in_the_envelope(proxy):
    send, hosts = proxy
    path = unique("/ok")

    status, headers, raw = send("POST", path, b"[" + b"1," * (2 * 1024 * 1024) + b"1]")  # past client_max_body_size

    assert status == 413, raw[:300]
    assert headers["Content-Type"].startswith("application/json")
    assert "smaller body" in envelope(raw, 413)
    assert hosts.of(path) == []  # refused by nginx: no host saw it


@pytest.mark.parametrize(
    ("path", "headers", "code", "said"),
    [
        ("/ok", {"X-Big": "y" * 9000}, 431, "header is too large"),
    ],
    ids=["big-header"],
)
def test_a_header_too_large_for_the_proxy_is_refused_in_the_envelope(proxy, path, headers, code, said):
    send, hosts = proxy
    before = len(hosts.seen)

    status, response_headers, raw = send("GET", path, None, headers)

    assert status == code, raw[:300]
    assert response_headers["Content-Type"].startswith("application/json")
    assert said in envelope(raw, code)
    assert len(hosts.seen) == before  # refused by nginx: no host saw it


def test_an_answer_cut_short_upstream_reaches_the_client_cut_short(proxy):
    """An export the API ends without its last chunk (docs/api.md) must not look complete through nginx."""
    import http.client

    send, _ = proxy

    status, _, whole = send("GET", unique("/whole"))
    assert status == 200 and whole == b"_id,bestseller_rank\n1,70\n"
    with pytest.raises(http.client.IncompleteRead):
        send("GET", unique("/cut"))
