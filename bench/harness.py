"""Side-by-side benchmark: this service against the tutorial's Eve service, same machine, same MongoDB.

    python -m bench.harness [--duration 10] [--connections 16] [--rounds 3] [--mongo-uri URI]

Both services run under gunicorn with the same number of workers, against the same MongoDB: the URI
given, else a local nx-27017 wire-protocol server started here. Each runs as deployed: ours with its
gunicorn.conf.py (gevent workers), Eve with --threads (gthread). Eve under gevent workers is measured
beside them as a reference, so the share of the gain owed to the worker class is on the record. wrk
(installed when missing) loads them in alternating rounds, so machine drift hits both; each figure is
the median of the rounds. Only ratios measured in one run are compared. Results:
bench/results/harness.md and harness.json.

nx-27017 cannot index ``_id`` inside a compound index (MongoDB can; see README), so on a server this
harness starts itself, our indexes are built without ``_id``, as the test fixture does. It also builds
a partial index as a full one; the benchmark's documents fall outside both of ours (no SKU, no
actuals), so on nx-27017 those are left out, as MongoDB would leave the documents out of them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
from bson import ObjectId

from estimations.query import DEFAULT_SORT

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EVE_DIR = ROOT / "bench" / "eve_baseline"
EVE_VENV = ROOT / ".venv-eve"
BIN = Path(sys.executable).parent
SIGNING_KEY = "bench-signing-key-not-a-secret"


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- set-up ---------------------------------------------------------------------------------


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
        code = f"import django; django.setup(); from bench.harness import prepare_store; prepare_store({self.on_nx!r})"
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "estimator_project.settings", "PYTHONPATH": str(ROOT)},
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _start_ours(self, port: int, extra: dict[str, str] | None = None, *, wait: bool = True) -> str:
        env = service_env(
            self.mongo_uri,
            self.ours_db,
            {
                "PORT": str(port),
                "WEB_CONCURRENCY": str(self.workers),
                "GUNICORN_THREADS": str(self.threads),
                # /metrics adds up every worker's counts (the soak reads the writes acknowledged there)
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / f"metrics-{port}"),
                # nx-27017 sorts the export's first batch of 100,000 rows in SQLite, which on a loaded
                # machine took past the 3 s request budget (503, run 25); MongoDB reads it from the index.
                # The budget bounds a hung database, not throughput: on nx it is widened, as in tests/live.py.
                **({"MONGO_TIMEOUT_MS": "30000"} if self.on_nx else {}),
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
        self._start_ours(self.ours_port, wait=False)
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
    """Run inside Django: indexes (adapted on nx-27017, see module docstring) and an active model."""
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


# --- load -----------------------------------------------------------------------------------

POST_LUA = """
wrk.method = "POST"
wrk.body = '{"bestseller_rank": 1234, "category": "books"}'
wrk.headers["Content-Type"] = "application/json"
"""

GET_IDS_LUA = """
local ids = {%s}
math.randomseed(42)
request = function()
  return wrk.format("GET", "/estimations/" .. ids[math.random(#ids)])
end
"""


def run_wrk(wrk: str, url: str, *, duration: int, connections: int, script: str | None, workdir: Path) -> dict:
    argv = [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        path = workdir / f"script-{abs(hash(script))}.lua"
        path.write_text(script)
        argv += ["-s", str(path)]
    output = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    completed = int(re.search(r"(\d+) requests in", output).group(1))
    # No completed request (every one timed out): its latency is unbounded, not wrk's 0.
    p99 = _duration_ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)) if completed else float("inf")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": rate,
        "p99_ms": p99,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def _duration_ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def alternate(rounds: int, *measures, settle=None) -> tuple[dict, ...]:
    """Alternating rounds of each measure (ours, Eve, and any reference); the median of each figure.
    ``settle`` runs before each measure, so one service's backlog is not charged to the next."""
    samples: list[list[dict]] = [[] for _ in measures]
    for _ in range(rounds):
        for collected, measure in zip(samples, measures, strict=True):
            if settle:
                settle()
            collected.append(measure())
    return tuple(_median(collected) for collected in samples)


def wait_idle(uri: str, timeout: float = 600) -> float:
    """Wait until the database answers a ping within 50 ms: the queries a load left queued are done
    (wrk closes its connections at the end of a run; the server still works through what it read)."""
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            sent = time.perf_counter()
            try:
                client.admin.command("ping")
            except pymongo.errors.PyMongoError:
                continue  # so busy it did not even answer the handshake: wait on
            if time.perf_counter() - sent < 0.05:
                return time.monotonic() - started
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        client.close()


def _median(samples: list[dict]) -> dict:
    """The median of each figure over the rounds, and every round's own figures under "rounds"."""
    result: dict = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        result[key] = statistics.median(values) if isinstance(values[0], int | float) else values
    result["rounds"] = [{key: value for key, value in sample.items() if key != "rounds"} for sample in samples]
    return result


def post_json(url: str, body) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def seed_via_api(url: str, count: int) -> list[str]:
    ids = []
    for start in range(0, count, 500):
        items = [{"bestseller_rank": 1 + (start + i) * 7 % 500_000, "category": "books"} for i in range(500)]
        body = post_json(url + "/estimations", items[: count - start])
        ids += [item["_id"] for item in body["_items"]]
    return ids


def seed_direct(mongo_uri: str, database: str, total: int, *, eve: bool) -> None:
    """Fill a collection to ``total`` documents straight through PyMongo (for the 100,000 case)."""
    collection = pymongo.MongoClient(mongo_uri)[database]["estimations"]
    have = collection.estimated_document_count()
    # Each document its own millisecond, as single writes have (the list's default order is by _created)
    start = datetime.now(UTC).replace(microsecond=0)
    while have < total:
        size = min(5000, total - have)
        docs = []
        for i in range(size):
            rank = 1 + (have + i) * 13 % 1_000_000
            now = start + timedelta(milliseconds=have + i)
            doc = {
                "_id": ObjectId(),
                "bestseller_rank": rank,
                "category": "books",
                "_created": now,
                "_updated": now,
                "_etag": f"{have + i:040x}",
            }
            if not eve:
                doc.update(estimated_sales=100, estimated_sales_low=50, estimated_sales_high=200, model_version=1)
            docs.append(doc)
        collection.insert_many(docs, ordered=False)
        have += size


def export_figures(url: str, server: Process) -> dict:
    """Download GET /estimations?format=csv whole, sampling the workers' resident memory meanwhile."""
    import threading

    before = workers_rss_kb(server)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], workers_rss_kb(server))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = lines = 0
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url + "/estimations?format=csv", timeout=600) as response:
            while chunk := response.read(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
    finally:
        done.set()
        sampler.join()
    return {
        "seconds": time.perf_counter() - started,
        "rows": lines - 1,  # the header
        "megabytes": size / 1e6,
        "rss_before_mb": before / 1024,
        "rss_peak_mb": peak[0] / 1024,
    }


def database_insert_seconds(mongo_uri: str, database: str, on_nx: bool) -> float:
    """The database's own time for one insert_many of 10,000 documents shaped like ours, into a scratch
    collection with the estimations indexes: the floor under any bulk POST of 10,000."""
    client = pymongo.MongoClient(mongo_uri)
    try:
        source = client[database]["estimations"]
        sample = source.find_one({}, {"_id": 0})
        scratch = client[database]["bulk_floor"]
        scratch.drop()
        for index in source.list_indexes():
            # As prepare_store built them: without _id on nx-27017 (see the module docstring)
            keys = [(field, direction) for field, direction in index["key"].items() if not (on_nx and field == "_id")]
            if keys != [("_id", 1)] and keys:
                options = {k: v for k, v in index.items() if k in ("unique", "sparse", "partialFilterExpression")}
                scratch.create_index(keys, **options)
        documents = [{**sample, "_id": ObjectId(), "bestseller_rank": i + 1} for i in range(10_000)]
        started = time.perf_counter()
        scratch.insert_many(documents, ordered=True)
        elapsed = time.perf_counter() - started
        scratch.drop()
        return elapsed
    finally:
        client.close()


def page_latency_ms(url: str, samples: int = 40) -> float:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        urllib.request.urlopen(url, timeout=120).read()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def database_page_ms(mongo_uri: str, database: str, samples: int = 40) -> float:
    """The database alone doing what page 1 of the list asks of it (the sorted find of 25 and the
    unfiltered count), median ms: the store's own work, which the page's latency may not add to."""
    client = pymongo.MongoClient(mongo_uri)
    collection = client[database]["estimations"]
    timings = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            list(collection.find({}).sort(list(DEFAULT_SORT)).limit(25))
            collection.estimated_document_count()
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return statistics.median(timings)


def page_one_beyond_the_store(results: dict) -> float:
    """Page 1's latency on the large collection, less what the database's own work on it grew by."""
    growth = max(0.0, results["list_database_large_ms"] - results["list_database_small_ms"])
    return results["list_latency_large_ms"] - growth


def workers_rss_kb(server: Process) -> int:
    """Resident memory of a gunicorn server's worker processes, added up."""
    total = 0
    for pid in workers_of(server):
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(server: Process) -> list[int]:
    """A gunicorn server's worker processes (the server itself, if it has none)."""
    found = subprocess.run(["pgrep", "-P", str(server.handle.pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found] or [server.handle.pid]


CPU_SECONDS = 8  # of load per CPU measurement


def cpu_per_request(wrk: str, url: str, script: str, workers: list[int], database: Process | None, workdir: Path):
    """CPU ms per request in the service's worker(s) and in the database server, over CPU_SECONDS of load
    from 2 connections (the CPU ticks counted, divided by the requests answered)."""
    before = sum(cpu_seconds(pid) for pid in workers)
    database_before = cpu_seconds(database.handle.pid) if database else 0.0
    result = run_wrk(wrk, url, duration=CPU_SECONDS, connections=2, script=script, workdir=workdir)
    requests = max(result["rps"] * CPU_SECONDS, 1.0)
    worker_ms = (sum(cpu_seconds(pid) for pid in workers) - before) / requests * 1000
    database_ms = (cpu_seconds(database.handle.pid) - database_before) / requests * 1000 if database else None
    return {"worker_ms": worker_ms, "database_ms": database_ms}


# --- the run ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    # Three, not two: the median of two rounds is their mean, and one round slowed by the shared machine
    # (Eve's 330 POSTs/s against 531 in the round before, run 16) moved a ratio from 1.47x to 1.94x.
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per scenario (default 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--list-size", type=int, default=100_000)
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    parser.add_argument("--soak-requests", type=int, default=20_000)
    parser.add_argument("--mongo-uri", default=os.environ.get("BENCH_MONGO_URI", ""))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    wrk = ensure_wrk()
    ensure_eve()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    on_nx = not args.mongo_uri
    nx, mongo_uri = start_nx(workdir) if on_nx else (None, args.mongo_uri)
    log(f"MongoDB: {'nx-27017 (started here)' if on_nx else 'the given MONGO_URI'}; work dir {workdir}")
    results: dict = {"config": vars(args) | {"mongo": "nx-27017" if on_nx else "given"}}
    load = {"duration": args.duration, "connections": args.connections, "workdir": workdir}
    try:
        results |= http_scenarios(wrk, mongo_uri, on_nx, args, load, workdir)
        results |= process_scenarios(mongo_uri, on_nx, args, workdir)
        results |= cpu_scenario(wrk, mongo_uri, on_nx, nx, args, workdir)
        results |= list_scenario(wrk, mongo_uri, on_nx, args, load, workdir)
    finally:
        if nx:
            nx.stop()
    return report(results)


def http_scenarios(wrk, mongo_uri, on_nx, args, load, workdir) -> dict:
    out: dict = {}
    services = Services(mongo_uri, on_nx, args.workers, args.threads, workdir, "main")
    services.prepare()
    services.start()
    try:
        eve_gevent = services.start_eve_gevent()
        log("warming up both services (and Eve under gevent)")
        for url in (services.ours, services.eve, eve_gevent):
            run_wrk(wrk, url + "/estimations", script=POST_LUA, **{**load, "duration": 2})
        log("POST /estimations, one document")
        ours, eve, eve_on_gevent = alternate(
            args.rounds,
            lambda: run_wrk(wrk, services.ours + "/estimations", script=POST_LUA, **load),
            lambda: run_wrk(wrk, services.eve + "/estimations", script=POST_LUA, **load),
            lambda: run_wrk(wrk, eve_gevent + "/estimations", script=POST_LUA, **load),
        )
        out["post"] = {"ours": ours, "eve": eve, "eve_gevent": eve_on_gevent}

        log("GET /estimations/{id} (and the no-framework reference)")
        # Started before the seeding, so its workers have finished booting when the first round runs
        reference = services.start_reference()
        ours_ids = seed_via_api(services.ours, 1000)
        eve_ids = seed_via_api(services.eve, 1000)
        ours, eve, bare, eve_on_gevent = alternate(
            args.rounds,
            lambda: run_wrk(wrk, services.ours + "/", script=GET_IDS_LUA % _lua_list(ours_ids), **load),
            lambda: run_wrk(wrk, services.eve + "/", script=GET_IDS_LUA % _lua_list(eve_ids), **load),
            lambda: run_wrk(wrk, reference + "/", script=GET_IDS_LUA % _lua_list(ours_ids), **load),
            lambda: run_wrk(wrk, eve_gevent + "/", script=GET_IDS_LUA % _lua_list(eve_ids), **load),
        )
        out["get_item"] = {"ours": ours, "eve": eve, "reference": bare, "eve_gevent": eve_on_gevent}

        log("bulk POST of 10,000 documents")
        items = [{"bestseller_rank": 1 + i, "category": "books"} for i in range(10_000)]
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            post_json(services.ours + "/estimations", items)
            timings.append(time.perf_counter() - started)
        out["bulk"] = {"docs_per_s": 10_000 / statistics.median(timings), "seconds": statistics.median(timings)}
        out["bulk"]["database_alone_seconds"] = database_insert_seconds(mongo_uri, services.ours_db, on_nx)
    finally:
        services.stop()

    return out


def cpu_scenario(wrk, mongo_uri, on_nx, nx, args, workdir) -> dict:
    """Where the two cores go: CPU per request in each service's worker (1 worker each: ours a gevent
    worker, Eve's 1 thread) and in the database server, for POST and GET one, in alternating rounds."""
    log("CPU per request: each service's worker and the database server")
    wait_idle(mongo_uri)
    services = Services(mongo_uri, on_nx, 1, 1, workdir, "cpu")
    services.prepare()
    services.start()
    try:
        ours_ids, eve_ids = seed_via_api(services.ours, 300), seed_via_api(services.eve, 300)
        ours_workers, eve_workers = workers_of(services.processes[0]), workers_of(services.processes[1])
        out = {}
        for path, ours_script, eve_script, suffix in (
            ("post", POST_LUA, POST_LUA, "/estimations"),
            ("get_item", GET_IDS_LUA % _lua_list(ours_ids), GET_IDS_LUA % _lua_list(eve_ids), "/"),
        ):
            ours, eve = alternate(
                args.rounds,
                lambda s=ours_script, x=suffix: cpu_per_request(wrk, services.ours + x, s, ours_workers, nx, workdir),
                lambda s=eve_script, x=suffix: cpu_per_request(wrk, services.eve + x, s, eve_workers, nx, workdir),
                settle=lambda: wait_idle(mongo_uri),  # the database's CPU is counted: nothing else may run on it
            )
            out[path] = {"ours": ours, "eve": eve}
    finally:
        services.stop()
    return {"cpu": out}


def list_scenario(wrk, mongo_uri, on_nx, args, load, workdir) -> dict:
    """Last: Eve counts the whole collection on every page, which can keep the server busy afterwards."""
    out: dict = {}
    wait_mongo(mongo_uri)
    log(f"GET /estimations?max_results=25 on 1,000 and {args.list_size:,} documents")
    listing = Services(mongo_uri, on_nx, args.workers, args.threads, workdir, "list")
    listing.prepare()
    seed_direct(mongo_uri, listing.ours_db, 1000, eve=False)
    listing.start()
    try:
        page = "/estimations?max_results=25"
        out["list_latency_small_ms"] = page_latency_ms(listing.ours + page)
        out["list_database_small_ms"] = database_page_ms(mongo_uri, listing.ours_db)
        seed_direct(mongo_uri, listing.ours_db, args.list_size, eve=False)
        seed_direct(mongo_uri, listing.eve_db, args.list_size, eve=True)
        out["list_latency_large_ms"] = page_latency_ms(listing.ours + page)
        out["list_database_large_ms"] = database_page_ms(mongo_uri, listing.ours_db)
        ours, eve = alternate(
            args.rounds,
            lambda: run_wrk(wrk, listing.ours + page, script=None, **load),
            lambda: run_wrk(wrk, listing.eve + page, script=None, **load),
            settle=lambda: wait_idle(mongo_uri),
        )
        out["list"] = {"ours": ours, "eve": eve}
        wait_idle(mongo_uri)
        log(f"CSV export of all {args.list_size:,} documents")
        out["export"] = export_figures(listing.ours, listing.processes[0])
    finally:
        listing.stop()
    return out


def _lua_list(ids: list[str]) -> str:
    return ", ".join(f'"{value}"' for value in ids)


def process_scenarios(mongo_uri, on_nx, args, workdir) -> dict:
    out: dict = {}
    wait_mongo(mongo_uri)
    log("in-process estimation speed")
    estimator = subprocess.run(
        [sys.executable, "-m", "bench.estimator", "--rows", "1000000"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_ENV_FILE": os.devnull},
        capture_output=True,
        text=True,
    )
    out["estimator"] = json.loads((RESULTS / "estimator.json").read_text()) if estimator.returncode in (0, 1) else {}

    log(f"training on {args.train_rows:,} CSV rows")
    csv = workdir / "train.csv"
    # Into the benchmark's database: without MONGO_URI, train_model refuses (the embedded store lives in a server).
    env = {
        **os.environ,
        "DJANGO_ENV_FILE": os.devnull,
        "SECRET_KEY": "bench-only",
        "MONGO_URI": mongo_uri,
        "MONGO_DB_NAME": f"bench_training_{uuid.uuid4().hex[:8]}",
    }
    subprocess.run(
        [sys.executable, "manage.py", "make_sample_data", "--rows", str(args.train_rows), "--out", str(csv)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    timed = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "manage.py", "train_model", "--csv", str(csv)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    pymongo.MongoClient(mongo_uri).drop_database(env["MONGO_DB_NAME"])
    elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", timed.stderr)
    hours, minutes, seconds = elapsed.groups()
    out["training"] = {
        "rows": args.train_rows,
        "seconds": int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds),
        "peak_rss_mb": int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timed.stderr).group(1)) / 1024,
        "ok": timed.returncode == 0,
    }

    log("a fresh process's first POST, and a worker's memory over many requests")
    single = Services(mongo_uri, on_nx, 1, 1, workdir, "soak")
    single.prepare()
    started = time.monotonic()
    single.start()
    post_json(single.ours + "/estimations", {"bestseller_rank": 5, "category": "books"})
    out["first_post_seconds"] = time.monotonic() - started
    try:
        server = single.processes[0]
        warm = subprocess.run(
            [ensure_wrk(), "-t1", "-c4", "-d3s", "-s", str(_script(workdir, POST_LUA)), single.ours + "/estimations"],
            capture_output=True,
            text=True,
        )
        before = workers_rss_kb(server)
        done = 0
        while done < args.soak_requests:
            result = subprocess.run(
                [
                    ensure_wrk(),
                    "-t1",
                    "-c4",
                    "-d5s",
                    "-s",
                    str(_script(workdir, POST_LUA)),
                    single.ours + "/estimations",
                ],
                capture_output=True,
                text=True,
            ).stdout
            done += int(re.search(r"(\d+) requests in", result).group(1))
        after = workers_rss_kb(server)
        out["memory"] = {
            "requests": done,
            "rss_before_mb": before / 1024,
            "rss_after_mb": after / 1024,
            "growth": (after - before) / before,
            "warmup": bool(warm.stdout),
        }
    finally:
        single.stop()
    return out


def _script(workdir: Path, text: str) -> Path:
    path = workdir / "post.lua"
    path.write_text(text)
    return path


def _round_lines(results: dict) -> list[str]:
    """Each round's requests/s, ours against Eve: how far the shared machine moved them."""
    parts = []
    for key, title in (("post", "POST"), ("get_item", "GET one"), ("list", "list")):
        ours, eve = results.get(key, {}).get("ours", {}), results.get(key, {}).get("eve", {})
        pairs = zip(ours.get("rounds", []), eve.get("rounds", []), strict=False)
        shown = ", ".join(f"{o['rps']:,.0f}/{e['rps']:,.0f}" for o, e in pairs)
        if shown:
            parts.append(f"{title} {shown}")
    return [f"- Each round, req/s ours/Eve: {'; '.join(parts)}."] if parts else []


def _eve_gevent_lines(results: dict) -> list[str]:
    """Eve under gevent workers (a reference: the baseline is Eve as its tutorial runs, with threads)."""
    figures = [
        f"{title} {results[key]['eve_gevent']['rps']:,.1f} req/s (p99 {results[key]['eve_gevent']['p99_ms']:,.1f} ms; "
        f"ours {results[key]['ours']['rps'] / results[key]['eve_gevent']['rps']:.2f}x that)"
        for key, title in (("post", "POST"), ("get_item", "GET one"))
        if "eve_gevent" in results.get(key, {})
    ]
    return [f"- Reference, not the baseline: Eve under gevent workers: {'; '.join(figures)}."] if figures else []


def _cpu_lines(cpu: dict) -> list[str]:
    lines = []
    for path, title in (("post", "POST one"), ("get_item", "GET one")):
        if path not in cpu:
            continue
        ours, eve = cpu[path]["ours"], cpu[path]["eve"]
        line = (
            f"- CPU per {title} (1 worker each, 2 connections): our worker {ours['worker_ms']:.2f} ms, "
            f"Eve's {eve['worker_ms']:.2f} ms"
        )
        if isinstance(ours["database_ms"], float):  # only for a database server the harness started
            line += f"; the database server {ours['database_ms']:.2f} ms (ours), {eve['database_ms']:.2f} ms (Eve)"
        lines.append(line + ".")
    return lines


def cpu_below_eve(results: dict, path: str) -> bool:
    """Whether our worker spent less CPU per request than Eve's on ``path`` (False when not measured)."""
    measured = results.get("cpu", {}).get(path)
    return bool(measured) and measured["ours"]["worker_ms"] < measured["eve"]["worker_ms"]


def report(results: dict) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "harness-raw.json").write_text(json.dumps(results, indent=2, default=str) + "\n")  # before any maths
    post, item, listing = results["post"], results["get_item"], results["list"]

    def ratio(key: str) -> float:
        ours, eve = results[key]["ours"]["rps"], results[key]["eve"]["rps"]
        return ours / eve if eve else float("inf")  # Eve may answer nothing within wrk's timeout

    single_docs = post["ours"]["rps"]

    def no_worse(scenario: dict) -> bool:
        # A p99 of infinity (nothing completed within wrk's timeout) is never "no worse", even against Eve's.
        ours = scenario["ours"]["p99_ms"]
        return ours != float("inf") and ours <= scenario["eve"]["p99_ms"]

    checks = {
        "POST >= 1.5x Eve": ratio("post") >= 1.5,
        # Every GET one reads the database (no host-local copy, so every host reads its writes): 1.2x.
        "GET item >= 1.2x Eve": ratio("get_item") >= 1.2,
        "CPU per GET item below Eve's (worker)": cpu_below_eve(results, "get_item"),
        "GET list (100k docs) >= 1.0x Eve": ratio("list") >= 1.0,
        # "No work that grows with the collection beyond what the store itself must do": the database's
        # own growth (nx-27017 counts rows for estimated_document_count; MongoDB reads metadata) is not ours.
        "list page 1 at 100k within 2x of 1k (beyond the store's own growth)": page_one_beyond_the_store(results)
        <= 2 * results["list_latency_small_ms"],
        "p99 no worse than Eve (POST)": no_worse(post),
        "p99 no worse than Eve (GET item)": no_worse(item),
        "p99 no worse than Eve (GET list)": no_worse(listing),
        "bulk >= 10x single-POST docs/s": results["bulk"]["docs_per_s"] >= 10 * single_docs,
        "one estimate <= 50 us": results["estimator"].get("checks", {}).get("one estimate <= 50 us median", False),
        "bulk estimation >= 1M rows/s": results["estimator"].get("checks", {}).get("bulk >= 1,000,000 rows/s", False),
        "training 1M rows <= 60 s": results["training"]["ok"] and results["training"]["seconds"] <= 60,
        "training peak memory <= 2 GB": results["training"]["peak_rss_mb"] <= 2048,
        "worker memory growth < 10%": results["memory"]["growth"] < 0.10,
        "first POST within 5 s of start": results["first_post_seconds"] <= 5,
        # Not one of the Eve targets: issue 7's promise that an export streams (the documents as Python
        # objects would take several times the CSV's size; the whole CSV is ~13 MB at 100k rows).
        "CSV export of the list streams (workers +< 50 MB)": results["export"]["rows"] == results["config"]["list_size"]
        and results["export"]["rss_peak_mb"] - results["export"]["rss_before_mb"] < 50,
    }
    rows = [
        "| scenario | ours | Eve | ratio (ours/Eve) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, title in (
        ("post", "POST /estimations (one)"),
        ("get_item", "GET /estimations/{id}"),
        ("list", "GET /estimations?max_results=25, 100k docs"),
    ):
        ours, eve = results[key]["ours"], results[key]["eve"]
        rows.append(f"| {title}: requests/s | {ours['rps']:,.1f} | {eve['rps']:,.1f} | {ratio(key):.2f}x |")
        rows.append(f"| {title}: p99 | {ours['p99_ms']:,.1f} ms | {eve['p99_ms']:,.1f} ms | |")
        if ours["non_2xx"] or eve["non_2xx"]:
            rows.append(f"| {title}: non-2xx | {ours['non_2xx']} | {eve['non_2xx']} | |")
    rows += [
        "",
        *_round_lines(results),
        f"- List page 1: {results['list_latency_small_ms']:.1f} ms at 1,000 documents, "
        f"{results['list_latency_large_ms']:.1f} ms at {results['config']['list_size']:,} "
        f"({results['list_latency_large_ms'] / results['list_latency_small_ms']:.2f}x). The database alone, doing "
        f"the page's find and count: {results['list_database_small_ms']:.1f} ms, then "
        f"{results['list_database_large_ms']:.1f} ms; page 1 less that growth: "
        f"{page_one_beyond_the_store(results):.1f} ms "
        f"({page_one_beyond_the_store(results) / results['list_latency_small_ms']:.2f}x).",
        f"- Bulk POST of 10,000 documents: {results['bulk']['seconds']:.2f} s = "
        f"{results['bulk']['docs_per_s']:,.0f} docs/s "
        f"({results['bulk']['docs_per_s'] / single_docs:.1f}x single POSTs). The database alone takes "
        f"{results['bulk']['database_alone_seconds']:.2f} s for one insert_many of 10,000 such documents with "
        f"the same indexes: at most {10_000 / results['bulk']['database_alone_seconds'] / single_docs:.1f}x "
        "single POSTs for any service.",
        f"- Reference, not a service: a bare WSGI find_one + json.dumps (bench/reference_app.py) under the same "
        f"gunicorn answers GET /estimations/{{id}} at {item['reference']['rps']:,.1f} req/s "
        f"(p99 {item['reference']['p99_ms']:,.1f} ms) = {item['reference']['rps'] / item['eve']['rps']:.2f}x Eve: "
        "the ceiling for any framework reading the database on every request.",
        *_eve_gevent_lines(results),
        *_cpu_lines(results.get("cpu", {})),
        f"- CSV export of {results['export']['rows']:,} rows ({results['export']['megabytes']:.1f} MB): "
        f"{results['export']['seconds']:.1f} s; the workers' memory {results['export']['rss_before_mb']:.0f} MB "
        f"before, {results['export']['rss_peak_mb']:.0f} MB at the most while streaming.",
        f"- One estimate: {results['estimator'].get('one_fast_us', float('nan')):.2f} us median; bulk estimation "
        f"{results['estimator'].get('bulk_fast_rows_per_s', float('nan')):,.0f} rows/s.",
        f"- Training on {results['training']['rows']:,} rows: {results['training']['seconds']:.1f} s, "
        f"peak {results['training']['peak_rss_mb']:,.0f} MB.",
        f"- Worker memory over {results['memory']['requests']:,} requests: "
        f"{results['memory']['rss_before_mb']:.0f} MB -> {results['memory']['rss_after_mb']:.0f} MB "
        f"({results['memory']['growth'] * 100:+.1f}%).",
        f"- A fresh process answered its first POST {results['first_post_seconds']:.1f} s after start.",
        f"- Load: wrk, {results['config']['connections']} connections, {results['config']['duration']} s, "
        f"{results['config']['rounds']} alternating rounds (medians); {results['config']['workers']} workers each: "
        f"ours as deployed (gevent), Eve with {results['config']['threads']} threads (gthread); "
        f"MongoDB: {results['config']['mongo']}.",
        "",
        *[f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()],
    ]
    table = "\n".join(rows)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "harness.md").write_text(table + "\n")
    (RESULTS / "harness.json").write_text(json.dumps({**results, "checks": checks}, indent=2, default=str) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
