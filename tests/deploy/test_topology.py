"""The compose topology, run as processes: the store, two API hosts from the image, Debian's nginx with
deploy/nginx.conf, as docker-compose.yml declares them (tests/deploy/topology.py), reached as a client of the
published port reaches them: http://localhost:8000."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.parse
import uuid

import pytest

from tests.deploy import netns
from tests.deploy import topology as compose
from tests.deploy.conftest import ENVIRONMENT

pytestmark = pytest.mark.integration


def key(topology) -> dict[str, str]:
    return {"Authorization": f"Api-Key {topology.admin_key}"}


def test_the_compose_file_is_what_runs(topology):
    env = topology.apis[0].env

    assert env["MONGO_URI"] == "mongodb://db:27017/estimations" and env["NUM_PROXIES"] == "1"
    assert env["ALLOW_ANONYMOUS_WRITES"] == "false" and env["SECRET_KEY"] == ENVIRONMENT["SECRET_KEY"]
    assert env["ALLOWED_HOSTS"] == "localhost,127.0.0.1,api"  # the ${ALLOWED_HOSTS:-...} default
    assert len({box.first_pid() for box in topology.apis}) == 2  # two gunicorn masters, two hosts
    assert "api" in topology.dns.queries  # nginx found the replicas through the engine's DNS name


def test_a_post_through_the_proxy_is_located_at_the_clients_host_and_port(topology):
    status, body, headers = topology.request_json("POST", "/estimations", {"bestseller_rank": 70}, key(topology))

    assert status == 201, (body, topology.logs())
    assert headers["Location"] == f"http://localhost:8000/estimations/{body['_id']}"
    status, again, _ = topology.request_json("GET", headers["Location"].removeprefix(topology.url))
    assert status == 200 and again["_id"] == body["_id"]


def test_writes_need_a_key_behind_the_proxy(topology):
    status, body, _ = topology.request_json("POST", "/estimations", {"bestseller_rank": 70})

    assert status == 401 and body["_status"] == "ERR"


def test_requests_are_spread_over_both_hosts(topology):
    marks = {f"spread-{uuid.uuid4().hex[:8]}-{n}" for n in range(16)}
    for mark in marks:
        assert topology.request("GET", "/estimations", headers={"X-Request-ID": mark})[0] == 200

    served = topology.requests_by_host(marks)

    assert sum(served.values()) == len(marks) and all(served.values()), served


def test_the_declared_healthchecks_pass(topology):
    argv = compose.healthcheck_argv("api")

    assert "http://127.0.0.1:8000/health/ready" in " ".join(argv)
    for box in topology.apis:
        result = topology.healthcheck(box)
        assert result.returncode == 0, result.stderr


def test_both_hosts_share_one_sign_in_budget(topology):
    """The compose file's defaults: THROTTLE_LOGIN_RATE=10/min per address, counted in the store both API
    hosts use, so 14 sign-in attempts spread over the two hosts get exactly 10 answers before the 429s."""
    status, headers, _ = topology.request("GET", "/inspect/login")
    assert status == 200
    token = re.search(r"csrftoken=([^;]+)", headers["Set-Cookie"]).group(1)
    marks = [f"sign-in-{uuid.uuid4().hex[:8]}-{n}" for n in range(14)]

    statuses = []
    for n, mark in enumerate(marks):
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "key": f"sek_guess_{n}"})
        form_headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={token}",
            "X-Request-ID": mark,
        }
        statuses.append(topology.request("POST", "/inspect/login", form, form_headers)[0])

    assert statuses == [401] * 10 + [429] * 4, (statuses, topology.logs())
    served = topology.requests_by_host(set(marks))
    assert sum(served.values()) == len(marks) and all(served.values()), served


def test_the_proxy_holds_trickling_bodies_away_from_the_api_and_times_them_out(topology):
    """deploy/nginx.conf: a body reaches an API worker only once it is all in (proxy_request_buffering on),
    and nginx closes a client whose body stops coming after client_body_timeout (10 s; its log says 408)."""
    head = (
        b"POST /estimations HTTP/1.1\r\nHost: localhost:8000\r\nContent-Type: application/json\r\n"
        b"Content-Length: 23\r\nX-Request-ID: %s\r\n\r\n{"
    )
    marks = {f"trickle-{uuid.uuid4().hex[:8]}-{n}" for n in range(40)}
    clients = []
    for mark in marks:
        sock = netns.in_netns(topology.proxy.netns, lambda: socket.create_connection(("localhost", 8000), timeout=30))
        sock.sendall(head % mark.encode())  # the head and one byte of the body, then nothing
        clients.append(sock)
    opened = time.monotonic()
    try:
        # Meanwhile the service answers at once
        started = time.monotonic()
        assert topology.request("GET", "/health/live")[0] == 200
        status, body, _ = topology.request_json("POST", "/estimations", {"bestseller_rank": 71}, key(topology))
        assert status == 201, body
        assert time.monotonic() - started < 2.0
        # And nginx closes each trickling client after its 10 s, none of them having reached an API host
        answers = []
        for sock in clients:
            sock.settimeout(max(1.0, opened + 20 - time.monotonic()))
            answers.append((sock.recv(4096), time.monotonic() - opened))
    finally:
        for sock in clients:
            sock.close()
    assert all(answer == b"" for answer, _ in answers), answers[0]  # closed, nothing sent
    assert all(9.0 <= seconds <= 16.0 for _, seconds in answers), sorted(seconds for _, seconds in answers)
    assert sum(topology.requests_by_host(marks).values()) == 0


def test_training_uploads_pass_the_proxy_up_to_the_trainings_limit(topology):
    """/models takes bodies up to a little over MODEL_TRAINING_MAX_BYTES, streamed to the API, which answers
    itself (here 401: no key); every other URL keeps the 3m limit, answered by nginx in the error envelope."""
    big = b"bestseller_rank,category,monthly_sales\n" + b"1,books,10\n" * 400_000  # 4.4 MB

    status, _, raw = topology.request("POST", "/models", big, {"Content-Type": "text/csv"}, timeout=30)
    assert status == 401 and json.loads(raw)["_status"] == "ERR", raw[:300]
    status, _, raw = topology.request("POST", "/estimations", big, {"Content-Type": "text/csv"}, timeout=30)
    assert status == 413, raw[:300]
    answer = json.loads(raw)  # nginx's own answer (deploy/nginx.conf's @too_large), in the API's envelope
    assert answer["_error"]["code"] == 413 and "send a smaller body" in answer["_error"]["message"], answer


def test_https_behind_a_tls_terminator(topology):
    """HTTPS=true (docker compose up -d recreates the api containers): the healthchecks on each container's
    plain-HTTP port pass, a request the terminator marks https is served and located at https, and a
    plain-http one is redirected. Last in the module: it leaves the API in HTTPS mode."""
    topology.start_api({**ENVIRONMENT, "HTTPS": "true", "CSRF_TRUSTED_ORIGINS": "https://localhost:8000"})
    assert all(box.env["HTTPS"] == "true" for box in topology.apis)
    for box in topology.apis:  # start_api waited for each one to be healthy; once more, to say so here
        assert topology.healthcheck(box).returncode == 0
    tls = {"X-Forwarded-Proto": "https", **key(topology)}

    status, body, headers = topology.request_json("POST", "/estimations", {"bestseller_rank": 900}, tls)

    assert status == 201, (body, topology.logs())
    assert headers["Location"] == f"https://localhost:8000/estimations/{body['_id']}"
    assert "max-age=" in headers.get("Strict-Transport-Security", "")
    status, headers, _ = topology.request("GET", "/health/ready", headers={"X-Forwarded-Proto": "https"})
    assert status == 200
    status, headers, _ = topology.request("GET", "/estimations")  # plain http reached the proxy
    assert status == 301 and headers["Location"] == "https://localhost:8000/estimations"
    status, headers, _ = topology.request("GET", "/estimations", headers={"X-Forwarded-Proto": "gopher"})
    assert status == 301  # a value that is no scheme is not passed on


def test_compose_refuses_to_start_without_a_secret_key_and_nothing_is_left(image, wire_server, tmp_path):
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    attempt = compose.Topology(image, wire_server, tmp_path, {"WEB_CONCURRENCY": "1"})

    with pytest.raises(ValueError, match="compose refuses to start: SECRET_KEY: Set SECRET_KEY"):
        attempt.start()

    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    assert not {name for name in after - before if name.startswith("dt-")}
    assert not attempt.apis and not attempt.nginx_dir.exists()
