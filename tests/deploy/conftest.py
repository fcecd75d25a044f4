"""Fixtures of the deployment tests: the image, built from the Dockerfile (cached layers), and a store
reachable as the compose file's ``db`` service."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pymongo
import pytest
from pymongo.uri_parser import parse_uri

from tests.deploy import builder, dockerfile
from tests.deploy.image import Image
from tests.deploy.netns import Endpoint, StoreRelay
from tests.deploy.topology import Topology


def needs(what: str) -> None:
    """Skip, or in CI (CI=true) fail: these tests must run where the project is tested."""
    message = f"the deployment tests need {what} (make test installs what is missing when run as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def check_machine() -> None:
    if os.geteuid() != 0:
        needs("root: they make namespaces and mounts, as a container engine does")
    for tool in ("ip", "nsenter", "setpriv", "mount", "git"):
        if not shutil.which(tool):
            needs(f"the '{tool}' command")
    if not dockerfile.IMAGE_PYTHON.exists() or not Path("/usr/lib/python3.11/ensurepip").exists():
        needs(f"Debian's {dockerfile.IMAGE_PYTHON} with venv (apt-get install python3.11-venv)")


@pytest.fixture(scope="session")
def image_build(tmp_path_factory):
    """The image built from the working tree's tracked files: (Image, None), or (None, the failure)."""
    check_machine()
    scratch = tmp_path_factory.mktemp("image")
    started = time.monotonic()
    steps: list[str] = []
    try:
        image = builder.build(scratch=scratch, progress=steps.append)
    except dockerfile.DockerfileError as exc:
        return None, str(exc)
    image.log.insert(0, f"built in {time.monotonic() - started:.0f}s: " + "; ".join(steps))
    return image, None


@pytest.fixture(scope="session")
def image(image_build, tmp_path_factory) -> Image:
    built, failure = image_build
    if failure:
        pytest.fail(f"the image does not build:\n{failure}", pytrace=False)
    return built


@pytest.fixture
def container_scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("containers")


def store_relay(wire_server, endpoint: Endpoint, database: str) -> StoreRelay:
    """The compose file's ``db`` service: the test store, reached as db:27017 from the network."""
    host, port = parse_uri(wire_server.uri)["nodelist"][0]
    return StoreRelay(
        endpoint.netns, endpoint.address, (host, port), {"estimations": database}, nx_27017=wire_server.managed
    ).start()


def fresh_database_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def drop_database(wire_server, name: str) -> None:
    client = pymongo.MongoClient(wire_server.uri, serverSelectionTimeoutMS=3000)
    try:
        client.drop_database(name)
    except pymongo.errors.PyMongoError:
        pass
    finally:
        client.close()


# What the shell or .env gives compose: the required key, and one worker per host (two hosts are what
# is tested here, not the workers of one).
ENVIRONMENT = {"SECRET_KEY": "compose-test-secret-key-" + "c" * 30, "WEB_CONCURRENCY": "1"}


@pytest.fixture(scope="module")
def topology(image, wire_server, tmp_path_factory):
    """docker compose up --scale api=2, as processes (tests/deploy/topology.py), for any test module here: one
    per module. Reach it with topology.request / request_json / run at http://localhost:8000; writes
    need topology.admin_key (the compose file sets ALLOW_ANONYMOUS_WRITES=false)."""
    if not shutil.which("nginx") and not shutil.which("/usr/sbin/nginx"):
        needs("Debian's nginx")
    running = Topology(image, wire_server, tmp_path_factory.mktemp("compose"), ENVIRONMENT).start()
    yield running
    running.stop()
