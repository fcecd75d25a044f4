"""The benchmark's report: the targets checked, a markdown table and JSON in bench/results/."""

from __future__ import annotations

import json

from .measure import page_one_beyond_the_store
from .setup import RESULTS


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
        "one estimate <= 5 us": results["estimator"].get("checks", {}).get("one estimate <= 5 us median", False),
        "bulk estimation >= 5M rows/s": results["estimator"].get("checks", {}).get("bulk >= 5,000,000 rows/s", False),
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
