"""The image, run as images run: the Dockerfile built and its CMD started without a container engine.

tests/deploy/dockerfile.py builds the image's filesystem from the tracked files (minus .dockerignore) and
runs every build step for real; here a container of it starts the CMD's chain with exactly the
image's environment and a `docker run -e`'s worth more (the store, the key), as the image's user, on a
network where ``db`` is the wire-protocol test store. A Dockerfile line that breaks a build step, the
CMD or a command fails these tests.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.deploy import dockerfile
from tests.deploy.conftest import drop_database, fresh_database_name, store_relay
from tests.deploy.netns import Network, request

pytestmark = pytest.mark.integration

SECRET = "image-test-secret-key-" + "k" * 30


def test_every_dockerfile_instruction_is_run(image):
    ran = [i.op for i in dockerfile.parse((dockerfile.ROOT / "Dockerfile").read_text())]

    assert ran[0] == "FROM" and "RUN" in ran and "CMD" in ran
    assert image.user not in ("", "root", "0") and image.ids(image.user)[0] != 0
    assert image.cmd and image.workdir == "/app"
    # The base image's own environment is under the Dockerfile's.
    assert image.env["PATH"].startswith("/usr/local/bin:") and image.env["LANG"] == "C.UTF-8"
    sent = dockerfile.context_files()
    assert "manage.py" in sent and "data/sample_sales.csv" in sent
    assert not [path for path in sent if path.startswith(("tests/", ".git/", ".venv/")) or path == ".env"]


def test_an_unknown_instruction_is_refused_not_skipped():
    with pytest.raises(dockerfile.DockerfileError, match="HEALTHCHECK is not run"):
        dockerfile.parse("FROM python:3.11-slim\nHEALTHCHECK CMD true\n")


def test_the_dockerfile_is_read_as_the_engine_reads_it():
    steps = dockerfile.parse(
        '# comment\nFROM python:3.11-slim\nENV A=1 \\\n    # a comment inside\n    B="two words"\n'
        'ENV OLD form value\nRUN echo $A \\\n && true\nCMD ["sh", "-c", "x"]\n'
    )
    env: dict[str, str] = {}
    for step in steps:
        if step.op == "ENV":
            env.update(dockerfile.env_pairs(step, env))

    assert [step.op for step in steps] == ["FROM", "ENV", "ENV", "RUN", "CMD"]
    assert env == {"A": "1", "B": "two words", "OLD": "form value"}
    assert steps[3].text == "echo $A && true" and steps[4].json_form == ["sh", "-c", "x"]
    assert dockerfile.substitute("${A:-x}/${NONE:-y}/${A:+z}/$A", env) == "1/y/z/1"


@pytest.fixture(scope="module")
def running(image, wire_server, tmp_path_factory):
    """The image's CMD in a container on a network whose ``db`` is the test store."""
    database = fresh_database_name("image")
    network = Network("img").create()
    relay = None
    scratch = tmp_path_factory.mktemp("image-run")
    try:
        db = network.attach("db")
        api = network.attach("api")
        relay = store_relay(wire_server, db, database)
        hosts = f"127.0.0.1\tlocalhost\n{api.address}\t{api.hostname}\n{db.address}\tdb\n"
        env = {"MONGO_URI": "mongodb://db:27017/estimations", "SECRET_KEY": SECRET}
        with image.container(scratch, env=env, netns=api.netns, hosts=hosts, hostname=api.hostname) as box:
            deadline = time.monotonic() + 120
            ready = None
            while time.monotonic() < deadline and box.process.poll() is None:
                try:
                    ready = request(api.netns, "GET", "http://127.0.0.1:8000/health/ready", timeout=5)
                    if ready[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            yield box, api, ready
    finally:
        if relay:
            relay.stop()
        network.remove()
        drop_database(wire_server, database)


def test_the_cmd_chain_serves_ready_as_the_image_user(running):
    box, api, ready = running

    assert box.process.poll() is None, f"the container exited with {box.process.returncode}:\n{box.output()[-5000:]}"
    assert ready and ready[0] == 200, f"/health/ready: {ready}\n{box.output()[-5000:]}"
    log = box.output()
    assert "Indexes in place on 'estimations'" in log  # ensure_indexes ran, against db:27017
    assert re.search(r"Model version \d+ active", log), log[-3000:]  # train_model --if-no-active trained
    # The server and the metrics folder it shares belong to the image's user, not root.
    owners = box.exec(["sh", "-c", "stat -c '%u %n' /proc/1 /tmp/prometheus"])
    assert owners.returncode == 0, owners.stderr
    uid = image_uid(box)
    assert all(line.split()[0] == str(uid) for line in owners.stdout.splitlines()), owners.stdout


def image_uid(box) -> int:
    return box.image.ids(box.image.user)[0]


def test_metrics_add_up_the_workers_in_the_shared_folder(running):
    box, api, _ = running
    for _ in range(4):
        assert request(api.netns, "GET", "http://127.0.0.1:8000/health/live")[0] == 200

    status, _, body = request(api.netns, "GET", "http://127.0.0.1:8000/metrics")

    assert status == 200
    assert re.search(rb'http_requests_total\{[^}]*route="health-live"[^}]*\} ([0-9.]+)', body), body[:2000]


# Each project command, run for real in the running container as `docker compose exec api ...` runs it
# (the CMD's chain has already run ensure_indexes and train_model --if-no-active). The groups run side
# by side; the commands of a group one after another.
COMMAND_GROUPS = [
    [["list_models"], ["ensure_indexes"]],
    [["create_api_key", "--name", "image-test", "--scope", "admin"], ["revoke_api_key", "image-test"]],
    [
        ["make_sample_data", "--rows", "2000", "--seed", "3", "--out", "/tmp/sales.csv"],
        ["train_model", "--csv", "/tmp/sales.csv", "--no-activate"],
        ["replay_model", "2", "--no-progress"],
        ["activate_model", "2"],
    ],
]


def test_every_management_command_works_in_the_image(running):
    box, api, _ = running
    listed = box.exec(["sh", "-c", "ls /app/*/management/commands/*.py"])
    assert listed.returncode == 0, listed.stderr
    names = sorted(path.rsplit("/", 1)[1][:-3] for path in listed.stdout.split() if not path.endswith("/__init__.py"))
    tried = {command[0] for group in COMMAND_GROUPS for command in group}
    assert tried <= set(names)  # the table names real commands
    # A command added later is at least loaded (settings, logging, its imports) until it gets a real run here.
    groups = [*COMMAND_GROUPS, [[name, "--help"] for name in names if name not in tried]]

    def run(group: list[list[str]]) -> list[str]:
        for command in group:
            result = box.exec(["python", "manage.py", *command])
            if result.returncode != 0:
                output = (result.stdout + result.stderr)[-2000:]
                return [f"manage.py {' '.join(command)} -> {result.returncode}\n{output}"]
        return []

    with ThreadPoolExecutor(len(groups)) as pool:
        failures = [failure for found in pool.map(run, groups) for failure in found]

    assert not failures, "\n\n".join(failures)
    # The version activated by the command reaches the running server (it checks every 2 s).
    deadline = time.monotonic() + 20
    while True:
        status, _, body = request(api.netns, "GET", "http://127.0.0.1:8000/health/ready")
        model = json.loads(body)["checks"]["model"] if status == 200 else body
        if model == "version 2" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (status, model) == (200, "version 2")


def test_a_stop_ends_the_server_and_every_process_cleanly(running):
    """SIGTERM to the container's PID 1 (docker stop): gunicorn ends with status 0, and so does every process."""
    box, _, _ = running
    pid = box.first_pid()

    assert box.stop() == 0, box.output()[-3000:]
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
