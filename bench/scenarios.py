"""The benchmark's scenarios: HTTP against Eve, in-process work, CPU per request, and the list at size."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

import pymongo

from .load import (
    GET_IDS_LUA,
    POST_LUA,
    alternate,
    lua_list,
    post_json,
    run_wrk,
    script_file,
    seed_direct,
    seed_via_api,
    wait_idle,
)
from .measure import (
    cpu_per_request,
    database_insert_seconds,
    database_page_ms,
    export_figures,
    page_latency_ms,
    workers_of,
    workers_rss_kb,
)
from .setup import RESULTS, ROOT, Services, ensure_wrk, log, wait_mongo


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
            lambda: run_wrk(wrk, services.ours + "/", script=GET_IDS_LUA % lua_list(ours_ids), **load),
            lambda: run_wrk(wrk, services.eve + "/", script=GET_IDS_LUA % lua_list(eve_ids), **load),
            lambda: run_wrk(wrk, reference + "/", script=GET_IDS_LUA % lua_list(ours_ids), **load),
            lambda: run_wrk(wrk, eve_gevent + "/", script=GET_IDS_LUA % lua_list(eve_ids), **load),
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
            ("get_item", GET_IDS_LUA % lua_list(ours_ids), GET_IDS_LUA % lua_list(eve_ids), "/"),
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


def process_scenarios(mongo_uri, on_nx, args, workdir) -> dict:
    out: dict = {}
    wait_mongo(mongo_uri)
    log("in-process estimation speed")
    estimator = subprocess.run(
        [sys.executable, "-m", "bench.estimator", "--rows", "1000000", "--train-rows", "0"],
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

        def post_load(seconds: int) -> subprocess.CompletedProcess:
            """wrk's single-POST script against our service: one thread, four connections."""
            argv = [ensure_wrk(), "-t1", "-c4", f"-d{seconds}s", "-s", str(script_file(workdir, POST_LUA))]
            return subprocess.run([*argv, single.ours + "/estimations"], capture_output=True, text=True)

        warm = post_load(3)
        before = workers_rss_kb(server)
        done = 0
        while done < args.soak_requests:
            result = post_load(5).stdout
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
