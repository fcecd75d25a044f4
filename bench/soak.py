"""`make soak`: a bounded mixed load (single POSTs, list GETs, bulk POSTs) at 16 connections on loopback.

    python -m bench.soak [--duration 60] [--connections 16] [--mongo-uri URI]

Passes with no error answer, exactly the acknowledged documents stored and flat worker memory (< 10%).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pymongo

from .measure import workers_rss_kb
from .setup import RESULTS, Services, ensure_wrk, log, start_nx

BULK = 10
MIX_LUA = (
    """
local threads = {}
local bulk_body = '[' .. string.rep('{"bestseller_rank": 777, "category": "toys_games"},', BULK - 1)
                  .. '{"bestseller_rank": 778, "category": "toys_games"}]'

function setup(thread) table.insert(threads, thread) end
function init(args) created = 0; errors = 0; counter = 0 end

request = function()
  counter = counter + 1
  local kind = counter % 10
  if kind < 5 then
    return wrk.format("POST", "/estimations", {["Content-Type"] = "application/json"},
      '{"bestseller_rank": ' .. (counter % 100000 + 1) .. ', "category": "books"}')
  elseif kind < 9 then
    return wrk.format("GET", "/estimations?max_results=25&sort=-bestseller_rank")
  end
  return wrk.format("POST", "/estimations", {["Content-Type"] = "application/json"}, bulk_body)
end

function response(status, headers, body)
  if status == 201 then
    if string.sub(body, 1, 10) == '{"_status"' then created = created + BULK else created = created + 1 end
  elseif status >= 400 then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local c, e = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("created"); e = e + t:get("errors") end
  io.write(string.format("SOAK created=%d errors=%d\\n", c, e))
end
"""
).replace("BULK", str(BULK))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--mongo-uri", default="")
    args = parser.parse_args(argv)
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    nx, mongo_uri = start_nx(workdir) if not args.mongo_uri else (None, args.mongo_uri)
    services = Services(mongo_uri, not args.mongo_uri, 2, 4, workdir, "soak")
    services.prepare()
    services.start()
    script = workdir / "mix.lua"
    script.write_text(MIX_LUA)
    try:
        log("warm-up (10 s)")
        warm = subprocess.run(
            [wrk, "-t2", f"-c{args.connections}", "-d10s", "-s", str(script), services.ours + "/"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        rss_before = workers_rss_kb(services.processes[0])
        log(f"soak ({args.duration} s at {args.connections} connections)")
        started = time.monotonic()
        output = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{args.connections}",
                f"-d{args.duration}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                str(script),
                services.ours + "/",
            ],
            capture_output=True,
            text=True,
            timeout=args.duration + 120,
        ).stdout
        elapsed = time.monotonic() - started
        rss_after = workers_rss_kb(services.processes[0])
        time.sleep(5)  # requests still in flight when wrk stopped finish (each is at most a bulk insert)
        metrics = urllib.request.urlopen(services.ours + "/metrics", timeout=30).read().decode()
        stored = pymongo.MongoClient(mongo_uri)[services.ours_db]["estimations"].count_documents({})
    finally:
        services.stop()
    if nx:
        nx.stop()
    # wrk stops reading at its deadline while the server finishes what is in flight: the client's count
    # is a lower bound; the server's own count of acknowledged writes is the exact one.
    seen = sum(int(re.search(r"SOAK created=(\d+)", text).group(1)) for text in (warm, output))
    counts = re.findall(r"^estimations_created_total\{[^}]*\} ([\d.e+]+)$", metrics, re.M)
    acknowledged = int(sum(float(value) for value in counts))
    errors = int(re.search(r"errors=(\d+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+\w+)", output).group(1)
    results = {
        "duration_s": round(elapsed, 1),
        "connections": args.connections,
        "requests": requests,
        "errors": errors,
        "acknowledged_documents": acknowledged,
        "client_saw_created": seen,
        "stored_documents": stored,
        "rss_before_mb": rss_before / 1024,
        "rss_after_mb": rss_after / 1024,
        "rss_growth": (rss_after - rss_before) / rss_before,
        "p99": p99,
    }
    checks = {
        "no error answers (5xx or otherwise)": errors == 0,
        "every write the client saw acknowledged is stored": stored >= seen,
        "stored == acknowledged by the server (none lost, none extra)": stored == acknowledged,
        "worker memory growth < 10%": results["rss_growth"] < 0.10,
    }
    print(json.dumps({**results, "checks": checks}, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps({**results, "checks": checks}, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
