"""Measurements beside the load: CPU and memory of a server's workers, page and database latencies, export."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pymongo
from bson import ObjectId

from .load import run_wrk
from .setup import Process


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
            # As prepare_store built them: without _id on nx-27017 (see setup.prepare_store)
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
    default_sort = _default_sort()
    timings = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            list(collection.find({}).sort(list(default_sort)).limit(25))
            collection.estimated_document_count()
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return statistics.median(timings)


def _default_sort() -> tuple:
    """The list's default order, from the service's own code (which needs Django set up to import)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estimator_project.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    import django

    django.setup()
    from estimations.query import DEFAULT_SORT

    return DEFAULT_SORT


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


def cpu_per_request(
    wrk: str,
    url: str,
    script: str | None,
    workers: list[int],
    database: Process | None,
    workdir: Path,
    *,
    seconds: int = CPU_SECONDS,
    connections: int = 2,
) -> dict:
    """CPU ms per request in the service's worker(s) and in the database server, over ``seconds`` of load
    from ``connections`` (the CPU ticks counted, divided by the requests answered), and the requests/s."""
    before = sum(cpu_seconds(pid) for pid in workers)
    database_before = cpu_seconds(database.handle.pid) if database else 0.0
    result = run_wrk(wrk, url, duration=seconds, connections=connections, script=script, workdir=workdir)
    requests = max(result["rps"] * seconds, 1.0)
    worker_ms = (sum(cpu_seconds(pid) for pid in workers) - before) / requests * 1000
    database_ms = (cpu_seconds(database.handle.pid) - database_before) / requests * 1000 if database else None
    return {"worker_ms": worker_ms, "database_ms": database_ms, "rps": result["rps"]}
