"""The embedded default (`make run` without MONGO_URI): one server process holding an in-memory store.

It must behave like a server: a silent or slow client never holds up the others; it prints an admin key
for the run, so the admin pages work without MongoDB; and a management command, which runs in a process of
its own and so cannot reach that store, says so and fails instead of reporting a success nobody sees.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import io
import logging
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pymongo
import pytest
from django.core.management import CommandError, call_command

from core import mongo
from core.api_keys import api_key_store
from modelops.startup import RUN_KEY_NAME, RUN_KEY_NOTICE, on_server_start
from tests.helpers import SAMPLE_CSV, run_python
from tests.live import LiveServer, request

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
    from tests.live import served

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


# --- The admin key of the run -----------------------------------------------------------------------


def admin_key(server: LiveServer) -> str:
    [key] = KEY.findall(server.log.read_text())  # printed once
    return key


def test_the_server_prints_one_admin_key_that_opens_the_admin_pages(embedded_server):
    output = embedded_server.log.read_text()
    key = admin_key(embedded_server)
    auth = {"Authorization": f"Api-Key {key}"}

    # Printed beside the line that says what it is for
    assert RUN_KEY_NOTICE + "\n    " + key in output
    # Without it the admin pages are closed; with it, open
    assert request("GET", embedded_server.url + "/audit")[0] == 401
    status, audit, _ = request("GET", embedded_server.url + "/audit?action=api_key.create", headers=auth)
    assert status == 200
    assert [(entry["actor"], entry["target"]) for entry in audit["_items"]] == [
        ({"name": "service", "via": "startup"}, {"key_name": RUN_KEY_NAME})
    ]
    page = urllib.request.urlopen(urllib.request.Request(embedded_server.url + "/inspect/", headers=auth), timeout=10)
    assert page.status == 200 and b"Active model" in page.read()
    # It activates models too (here the active version again)
    assert request("POST", embedded_server.url + "/models/1/activate", headers=auth)[0] == 200


def test_the_login_form_takes_the_printed_key(embedded_server):
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = browser.open(embedded_server.url + "/inspect/login", timeout=10).read().decode()
    assert "the admin key the server printed when it started" in form
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)

    body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "key": admin_key(embedded_server)}).encode()
    page = browser.open(embedded_server.url + "/inspect/login", data=body, timeout=10)

    assert page.status == 200 and page.url == embedded_server.url + "/inspect/"
    assert b"Active model" in page.read()


def test_the_key_goes_to_standard_output_only_and_is_stored_as_a_hash(settings, capsys, caplog):
    settings.MONGO_URI = ""
    mongo.reset()
    try:
        with caplog.at_level(logging.DEBUG):
            on_server_start()

        printed = capsys.readouterr()
        [key] = KEY.findall(printed.out)
        assert key not in printed.err and key not in caplog.text
        record = api_key_store().find(key)
        assert record["name"] == RUN_KEY_NAME and record["scope"] == "admin"
        assert key not in str(list(mongo.get_database()["api_keys"].find()))
        assert key not in str(list(mongo.get_database()["audit"].find()))
    finally:
        mongo.reset()


def test_no_key_is_made_with_mongodb(settings, capsys):
    settings.MONGO_URI = "mongodb://127.0.0.1:1/never-contacted"
    mongo.reset()
    try:
        on_server_start()

        assert not KEY.findall(capsys.readouterr().out)
    finally:
        mongo.reset()


# --- Management commands beside the embedded server -------------------------------------------------

MSG_BESIDE = "MONGO_URI is not set: the embedded store lives inside the running server (make run)"


@pytest.fixture
def beside_the_server(settings):
    """A command as `manage.py` runs it with no MONGO_URI: in a process of its own, whose embedded store
    (this one, fresh) no server serves."""
    settings.MONGO_URI = ""
    mongo.reset()
    yield mongo.get_database()
    mongo.reset()


@pytest.mark.parametrize(
    ("args", "instead"),
    [
        (["create_api_key", "--name", "me", "--scope", "admin"], "Use the admin key the server printed"),
        (["revoke_api_key", "me"], "stopping it revokes them"),
        (["train_model", "--csv", str(SAMPLE_CSV)], "POST /models with the CSV as the body"),
        (["train_model"], "POST /models with the CSV as the body"),
        (["train_model", "--if-no-active", "--csv", str(SAMPLE_CSV)], "POST /models with the CSV as the body"),
        (["train_model", "--if-no-active", "--no-activate"], "POST /models with the CSV as the body"),
        (["activate_model", "1"], "POST /models/1/activate with the admin key the server printed"),
        (["replay_model", "1", "--no-progress"], "POST /models/1/replay with the admin key the server printed"),
        (["list_models"], "GET /models"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_a_command_that_would_use_the_store_says_it_cannot_and_fails(beside_the_server, args, instead):
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as failed:
        call_command(*args, stdout=out, stderr=err)

    message = str(failed.value)
    assert message.startswith(MSG_BESIDE) and instead in message and "set MONGO_URI=" in message
    assert out.getvalue() == err.getvalue() == ""  # no success, no key, no table
    assert beside_the_server.list_collection_names() == []  # and nothing was written anywhere


@pytest.mark.parametrize(
    ("args", "server_does"),
    [(["ensure_indexes"], "the server indexes"), (["train_model", "--if-no-active"], "the server trains")],
)
def test_the_start_up_steps_of_make_run_leave_it_to_the_server(beside_the_server, args, server_does):
    out = io.StringIO()

    call_command(*args, stdout=out, stderr=io.StringIO())

    assert out.getvalue().startswith("Nothing to do here: MONGO_URI is not set, and " + server_does)
    assert beside_the_server.list_collection_names() == []


def test_a_command_without_the_store_keeps_working(beside_the_server, tmp_path):
    call_command("make_sample_data", "--rows", "10", "--out", str(tmp_path / "s.csv"), stdout=io.StringIO())

    assert len((tmp_path / "s.csv").read_text().splitlines()) == 11


def test_run_as_manage_py_it_exits_non_zero_with_the_message_only():
    result = run_python(
        "from django.core.management import execute_from_command_line; "
        f"execute_from_command_line(['manage.py', 'train_model', '--csv', {str(SAMPLE_CSV)!r}])",
        {"SECRET_KEY": "x" * 50},
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("CommandError: " + MSG_BESIDE), result.stderr


@pytest.mark.integration
def test_the_start_up_steps_use_mongo_uri_from_the_env_file(wire_server, tmp_path):
    """`make run` runs them unconditionally: with MONGO_URI in .env (not in the environment) they do the
    work, since the commands read .env as the server does."""
    database = f"test_embedded_{uuid.uuid4().hex[:8]}"
    env_file = tmp_path / ".env"
    env_file.write_text(f"SECRET_KEY={'x' * 50}\nMONGO_URI={wire_server.uri}\nMONGO_DB_NAME={database}\n")
    try:
        result = run_python(
            "from django.core.management import execute_from_command_line; "
            "execute_from_command_line(['manage.py', 'train_model', '--if-no-active'])",
            {"DJANGO_ENV_FILE": str(env_file)},
        )

        assert result.returncode == 0, result.stderr
        assert "Model version 1 active." in result.stdout and "Nothing to do" not in result.stdout
    finally:
        pymongo.MongoClient(wire_server.uri).drop_database(database)
