"""Load for the benchmarks: wrk runs and their figures, alternating rounds, and seeding the collections."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
from bson import ObjectId

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


def lua_list(ids: list[str]) -> str:
    return ", ".join(f'"{value}"' for value in ids)


def script_file(workdir: Path, text: str) -> Path:
    path = workdir / "post.lua"
    path.write_text(text)
    return path
