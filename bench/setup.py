"""Set-up for the benchmarks: wrk, Eve's virtualenv, an nx-27017 server, and both services under gunicorn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pymongo
from bson import ObjectId

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EVE_DIR = ROOT / "bench" / "eve_baseline"
EVE_VENV = ROOT / ".venv-eve"
BIN = Path(sys.executable).parent
SIGNING_KEY = "bench-signing-key-not-a-secret"


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is missing: sudo apt-get install wrk")
    log("installing wrk (apt-get)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or sys.exit("wrk did not install")


def ensure_eve() -> Path:
    """Eve lives in its own virtualenv: a benchmark-only dependency, never beside the service's pins."""
    stamp = EVE_VENV / ".installed"
    requirements = EVE_DIR / "requirements.txt"
    if not stamp.exists() or stamp.stat().st_mtime < requirements.stat().st_mtime:
        log("creating the Eve baseline's virtualenv")
        subprocess.run([sys.executable, "-m", "venv", str(EVE_VENV)], check=True)
        subprocess.run([str(EVE_VENV / "bin/pip"), "install", "-q", "-r", str(requirements)], check=True)
        stamp.touch()
    return EVE_VENV / "bin/gunicorn"


def start_nx(workdir: Path) -> tuple[Process, str]:
    """A local nx-27017 wire-protocol server on a free port, data under workdir; (process, URI)."""
    port = free_port()
    (workdir / "nx").mkdir()
    argv = [str(BIN / "nx-27017"), "--data-dir", str(workdir / "nx"), "-p", str(port),
            "--log-file", str(workdir / "nx.log"), "--pid-file", str(workdir / "nx.pid")]  # fmt: skip
    process = Process(argv, {"PATH": os.environ.get("PATH", "")}, ROOT, workdir / "nx.out")
    uri = f"mongodb://127.0.0.1:{port}/"
    wait_mongo(uri, timeout=30)
    return process, uri


def wait_mongo(uri: str, timeout: float = 300) -> None:
    """Until the server answers a ping (it may still be working through an earlier scenario's queries)."""
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.admin.command("ping")
                return
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    raise
                log("waiting for MongoDB to answer")
    finally:
        client.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path):
        self.handle = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.handle.poll() is None:
            self.handle.terminate()
            try:
                self.handle.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.handle.kill()


def wait_http(url: str, timeout: float = 30, *, any_answer: bool = False) -> float:
    """Seconds until ``url`` answers 2xx (or anything at all, with ``any_answer``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            urllib.request.urlopen(url, timeout=2)
            return time.monotonic() - started
        except urllib.error.HTTPError:
            if any_answer:
                return time.monotonic() - started
            time.sleep(0.05)
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def service_env(mongo_uri: str, database: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_ENV_FILE": os.devnull,
        "SECRET_KEY": "bench-only-" + "x" * 40,
        "MODEL_SIGNING_KEY": SIGNING_KEY,
        "MONGO_URI": mongo_uri,
        "MONGO_DB_NAME": database,
        "ALLOW_ANONYMOUS_WRITES": "true",  # Eve's tutorial service has no keys either
        "THROTTLE_ANON_RATE": "",
        "THROTTLE_KEY_RATE": "",
        "LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


class Services:
    """Our service and Eve, each on its own database of the same MongoDB server."""

    def __init__(self, mongo_uri: str, on_nx: bool, workers: int, threads: int, workdir: Path, suffix: str):
        self.mongo_uri, self.on_nx, self.workers, self.threads = mongo_uri, on_nx, workers, threads
        self.workdir = workdir
        self.ours_db, self.eve_db = f"bench_ours_{suffix}", f"bench_eve_{suffix}"
        self.ours_port, self.eve_port = free_port(), free_port()
        self.processes: list[Process] = []

    @property
    def ours(self) -> str:
        return f"http://127.0.0.1:{self.ours_port}"

    @property
    def eve(self) -> str:
        return f"http://127.0.0.1:{self.eve_port}"

    def prepare(self) -> None:
        env = service_env(self.mongo_uri, self.ours_db)
        code = f"import django; django.setup(); from bench.setup import prepare_store; prepare_store({self.on_nx!r})"
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "estimator_project.settings", "PYTHONPATH": str(ROOT)},
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start_ours(self, port: int | None = None, extra: dict[str, str] | None = None, *, wait: bool = True) -> str:
        """Our service under gunicorn (on a free port unless ``port``), with ``extra`` in its environment."""
        port = port or free_port()
        env = service_env(
            self.mongo_uri,
            self.ours_db,
            {
                "PORT": str(port),
                "WEB_CONCURRENCY": str(self.workers),
                "GUNICORN_THREADS": str(self.threads),
                # /metrics adds up every worker's counts (the soak reads the writes acknowledged there)
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / f"metrics-{port}"),
                # nx-27017 sorts the export's first batch of 100,000 rows in SQLite, which took past 3 s
                # and then past 30 s (a 503 each time); MongoDB reads it from the index. The budget bounds
                # a hung database, not throughput: on nx it is widened to the export's own time bound.
                **({"MONGO_TIMEOUT_MS": "120000"} if self.on_nx else {}),
                **(extra or {}),
            },
        )
        self.processes.append(
            Process(
                [str(BIN / "gunicorn"), "--config", "estimator_project/gunicorn.conf.py", "estimator_project.wsgi"],
                env,
                ROOT,
                self.workdir / f"ours-{port}.log",
            )
        )
        url = f"http://127.0.0.1:{port}"
        if wait:
            wait_http(url + "/health/ready")
        return url

    def start(self) -> None:
        self.start_ours(self.ours_port, wait=False)
        eve_env = {"PATH": os.environ.get("PATH", ""), "MONGO_URI": _with_database(self.mongo_uri, self.eve_db)}
        self.processes.append(
            Process(
                [
                    str(ensure_eve()),
                    "--workers",
                    str(self.workers),
                    "--threads",
                    str(self.threads),
                    "--bind",
                    f"127.0.0.1:{self.eve_port}",
                    "app:app",
                ],
                eve_env,
                EVE_DIR,
                self.workdir / f"eve-{self.eve_port}.log",
            )
        )
        wait_http(self.ours + "/health/ready")
        wait_http(self.eve + "/estimations")

    def start_reference(self) -> str:
        """bench/reference_app.py on our database, same gunicorn settings; its URL."""
        port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "MONGO_URI": self.mongo_uri, "MONGO_DB_NAME": self.ours_db}
        argv = [str(BIN / "gunicorn"), "--workers", str(self.workers), "--threads", str(self.threads),
                "--bind", f"127.0.0.1:{port}", "bench.reference_app:app"]  # fmt: skip
        self.processes.append(Process(argv, env, ROOT, self.workdir / f"reference-{port}.log"))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/estimations/" + str(ObjectId()), timeout=30, any_answer=True)
        return url

    def start_eve_gevent(self) -> str:
        """A reference, not the baseline: the same Eve app and database under gevent workers, as ours runs
        by default (same worker count); its URL."""
        port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "MONGO_URI": _with_database(self.mongo_uri, self.eve_db)}
        argv = [str(ensure_eve()), "--workers", str(self.workers), "--worker-class", "gevent",
                "--bind", f"127.0.0.1:{port}", "app:app"]  # fmt: skip
        self.processes.append(Process(argv, env, EVE_DIR, self.workdir / f"eve-gevent-{port}.log"))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/estimations")
        return url

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes = []


def _with_database(uri: str, database: str) -> str:
    base, _, query = uri.partition("?")
    scheme, _, rest = base.partition("://")
    hosts = rest.split("/", 1)[0]
    return f"{scheme}://{hosts}/{database}" + (f"?{query}" if query else "")


def prepare_store(on_nx: bool) -> None:
    """Run inside Django: indexes and an active model. On nx-27017 the compound indexes are built without
    ``_id``, which it cannot index inside one (MongoDB can), as the test fixture does."""
    from django.core.management import call_command

    from estimations.services import estimation_store
    from estimations.store import INDEXES

    store = estimation_store()
    if on_nx:
        for index in INDEXES:
            if "partialFilterExpression" in index.document:
                # nx-27017 builds a partial index as a full one. On MongoDB the SKU and actuals indexes
                # hold only documents with a SKU or actuals, which the benchmark's never have: they
                # would cost its writes nothing there, so they are not built here either.
                continue
            keys = [(field, d) for field, d in index.document["key"].items() if field != "_id"]
            options = {name: value for name, value in index.document.items() if name != "key"}
            store.collection.create_index(keys, **options)
    else:
        store.ensure_indexes()
    call_command("train_model", "--if-no-active")
