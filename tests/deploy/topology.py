"""The compose topology, run as processes: what ``docker compose up`` starts, without a container engine.

From docker-compose.yml, read here (its ``${VAR:-default}`` interpolated from a given environment, as
compose reads the shell and .env):

- ``db``: the wire-protocol test store, reached as db:27017 (tests/deploy/netns.py's StoreRelay);
- ``api``: N containers of the image (tests/deploy/dockerfile.py), each its own host on the network (its own
  address, its own port 8000), with the compose file's environment, running the image's CMD; each is
  started once the one before it passes the compose file's healthcheck, run in the container as
  compose runs it;
- ``proxy``: Debian's nginx with deploy/nginx.conf unchanged, as the nginx image loads it (from a main
  configuration like the image's), started once the API is healthy. Its ``resolver 127.0.0.11`` is
  answered as the engine's DNS answers: ``api`` is every replica's address.

The client is on the machine that publishes the proxy's port ("8000:8000"): ``request``,
``request_json`` and ``run`` (a command such as curl) send to http://localhost:8000 from there.
Everything is stopped and removed by ``stop``, also after a failed start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pymongo
import yaml
from pymongo.uri_parser import parse_uri

from tests.deploy import netns
from tests.deploy.dockerfile import ROOT
from tests.deploy.image import Container, Image

COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# The official nginx image's /etc/nginx/nginx.conf, in what matters here: it loads conf.d/*.conf in http{}.
NGINX_MAIN = """\
user www-data;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    include {prefix}/conf.d/*.conf;
}}
"""


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str, environment: dict[str, str]) -> str:
    """compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and $$."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group("name"), match.group("op"), match.group("arg") or ""
        current = environment.get(name)
        if operator == ":-":
            return current or argument
        if operator == "-":
            return argument if current is None else current
        if operator in (":?", "?") and not (current if operator == ":?" else current is not None):
            raise ValueError(f"compose refuses to start: {name}: {argument}")
        return current or ""

    return re.sub(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>[^}]*))?\}", replace, value)


def service_environment(service: str, environment: dict[str, str]) -> dict[str, str]:
    declared = compose()["services"][service].get("environment", {})
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared)
    return {name: interpolate(str(value), environment) for name, value in declared.items()}


def healthcheck_argv(service: str) -> list[str]:
    """The service's healthcheck test as the command compose runs in the container."""
    test = compose()["services"][service]["healthcheck"]["test"]
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    raise ValueError(f"healthcheck test {test!r} is not run by tests/deploy/topology.py")


def start_nginx(netns_name: str, prefix: Path, conf: str, name: str = "default.conf") -> subprocess.Popen:
    """Debian's nginx in namespace ``netns_name``, loading ``conf`` as the nginx image loads conf.d/*.conf;
    its files (and its log, error.log) under ``prefix``, a folder nginx's workers (www-data) can reach."""
    (prefix / "conf.d").mkdir(parents=True, exist_ok=True)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / folder).mkdir(parents=True, exist_ok=True)
        shutil.chown(prefix / "temp" / folder, "www-data")
    (prefix / "conf.d" / name).write_text(conf)
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix))
    # In a PID namespace of its own that ends with this process (and this one with the test's):
    # no nginx worker outlives the test, whatever stops it.
    return subprocess.Popen(
        ["ip", "netns", "exec", netns_name, "setpriv", "--pdeathsig", "KILL"]
        + ["unshare", "--pid", "--kill-child=SIGTERM", NGINX, "-e", "stderr", "-p", str(prefix)]
        + ["-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=(prefix / "error.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop_nginx(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # unshare ignores SIGTERM while its child runs; killed, it sends nginx SIGTERM (--kill-child),
    # and nginx's end ends its PID namespace, workers included.
    try:
        master = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        master = None
    process.kill()
    process.wait()
    deadline = time.monotonic() + 15
    while master and Path(f"/proc/{master}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|s|m|h)", text))


class Topology:
    """docker compose up with N api replicas, as processes on a network of namespaces."""

    def __init__(
        self,
        image: Image,
        wire_server,
        scratch: Path,
        environment: dict[str, str],
        replicas: int = 2,
    ):
        self.image = image
        self.wire_server = wire_server
        self.scratch = scratch
        self.environment = environment
        self.replicas = replicas
        self.database = f"compose_{uuid.uuid4().hex[:8]}"
        self.network: netns.Network | None = None
        self.relay: netns.StoreRelay | None = None
        self.dns: netns.DnsResponder | None = None
        self.apis: list[Container] = []
        self.api_endpoints: list[netns.Endpoint] = []
        self.proxy: netns.Endpoint | None = None
        self.nginx: subprocess.Popen | None = None
        # Its own folder under /tmp, which nginx's workers (www-data) can reach; removed by stop().
        self.nginx_dir = Path(tempfile.mkdtemp(prefix="compose-proxy-"))
        os.chmod(self.nginx_dir, 0o755)
        self.url = "http://localhost:8000"
        self.admin_key = ""

    # --- what a client of the published port does ---

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 15):
        """(status, headers, body bytes) from http://localhost:8000 on the publishing machine."""
        return netns.request(self.proxy.netns, method, self.url + path, body, headers, timeout)

    def request_json(self, method: str, path: str, payload=None, headers: dict | None = None, timeout: float = 15):
        return netns.request_json(self.proxy.netns, method, self.url + path, payload, headers, timeout)

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """A command (curl, a shell line) run where the port is published: localhost:8000 is the proxy."""
        return subprocess.run(["ip", "netns", "exec", self.proxy.netns, *argv], **kwargs)

    # --- compose up / down ---

    def start(self) -> Topology:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.network = netns.Network("cmp").create()
        db = self.network.attach("db")
        host, port = parse_uri(self.wire_server.uri)["nodelist"][0]
        self.relay = netns.StoreRelay(
            db.netns, db.address, (host, port), {"estimations": self.database}, nx_27017=self.wire_server.managed
        ).start()
        self.api_endpoints = [self.network.attach(f"deploy-api-{n}") for n in range(1, self.replicas + 1)]
        self.proxy = self.network.attach("deploy-proxy-1")
        self.dns = netns.DnsResponder(
            self.proxy.netns,
            {"api": [e.address for e in self.api_endpoints], "db": [db.address], "proxy": [self.proxy.address]},
        ).start()
        self.start_api(self.environment)
        created = self.apis[0].exec(["python", "manage.py", "create_api_key", "--name", "topology", "--scope", "admin"])
        assert created.returncode == 0, created.stdout + created.stderr
        self.admin_key = created.stdout.split()[-1]
        self._start_nginx()

    def start_api(self, environment: dict[str, str]) -> None:
        """(Re)create the api containers with this environment, as `docker compose up -d` does on a change."""
        for box in self.apis:
            box.remove()
        self.apis = []
        self.environment = environment
        env = service_environment("api", environment)
        db_address = self.network.endpoints[0].address
        for number, endpoint in enumerate(self.api_endpoints):
            hosts = f"127.0.0.1\tlocalhost\n{endpoint.address}\t{endpoint.hostname}\n{db_address}\tdb\n"
            box = Container.start(
                self.image,
                self.scratch,
                env=env,
                netns=endpoint.netns,
                hosts=hosts,
                hostname=endpoint.hostname,
                log=self.scratch / f"{endpoint.hostname}-{uuid.uuid4().hex[:4]}.log",
            )
            self.apis.append(box)
            if number == 0 and not self.admin_key:
                # The first start of all: one replica trains the default model before the others start,
                # so that the rest find it active (compose would start them together, and each would
                # train a version of its own).
                self.wait_healthy(box)
        for box in self.apis:
            self.wait_healthy(box)

    def healthcheck(self, box: Container) -> subprocess.CompletedProcess:
        check = compose()["services"]["api"]["healthcheck"]
        return box.exec(healthcheck_argv("api"), timeout=_seconds(check.get("timeout", "30s")) + 5)

    def wait_healthy(self, box: Container) -> None:
        """compose's depends_on: service_healthy: the healthcheck, every interval, until it passes."""
        check = compose()["services"]["api"]["healthcheck"]
        deadline = (
            time.monotonic()
            + _seconds(check.get("start_period", "0s"))
            + _seconds(check.get("interval", "30s")) * int(check.get("retries", 3))
        )
        while True:
            if box.process.poll() is not None:
                raise RuntimeError(f"the api container exited with {box.process.returncode}:\n{box.output()[-4000:]}")
            result = self.healthcheck(box)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the api container never got healthy: {result.stderr[-2000:]}\n{box.output()[-3000:]}"
                )
            time.sleep(1)

    def _start_nginx(self) -> None:
        mount = next(v for v in compose()["services"]["proxy"]["volumes"] if "nginx" in v).split(":")
        self.nginx_log = self.nginx_dir / "error.log"
        self.nginx = start_nginx(
            self.proxy.netns, self.nginx_dir, (ROOT / mount[0]).read_text(), name=Path(mount[1]).name
        )
        deadline = time.monotonic() + 20
        while True:
            if self.nginx.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.nginx_log.read_text()[-3000:]}")
            try:
                if self.request("GET", "/health/live", timeout=3)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not answer: {self.nginx_log.read_text()[-3000:]}")
            time.sleep(0.2)

    def logs(self) -> str:
        parts = [f"--- {box.log.name}\n{box.output()[-3000:]}" for box in self.apis]
        if self.nginx_dir.exists() and (self.nginx_dir / "error.log").exists():
            parts.append(f"--- nginx\n{(self.nginx_dir / 'error.log').read_text()[-2000:]}")
        return "\n".join(parts)

    def requests_by_host(self, request_ids: set[str]) -> dict[str, int]:
        """How many of these request ids each api container logged (LOG_FORMAT=json: one line per request)."""
        counts = {}
        for box, endpoint in zip(self.apis, self.api_endpoints, strict=True):
            seen = 0
            for line in box.output().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("request_id") in request_ids and "status" in record:
                    seen += 1
            counts[endpoint.hostname] = seen
        return counts

    def stop(self) -> None:
        if self.nginx is not None:
            stop_nginx(self.nginx)
        for box in self.apis:
            box.remove()
        self.apis = []
        for service in (self.dns, self.relay):
            if service is not None:
                service.stop()
        if self.network is not None:
            self.network.remove()
        shutil.rmtree(self.nginx_dir, ignore_errors=True)
        client = pymongo.MongoClient(self.wire_server.uri, serverSelectionTimeoutMS=3000)
        try:
            client.drop_database(self.database)
        except pymongo.errors.PyMongoError:
            pass
        finally:
            client.close()
