"""`make bench-switches`: CPU per request with every speed switch on (A) against one switch off (B).

    python -m bench.switches [--duration 3] [--rounds 5] [--connections 8] [--mongo-uri URI] [--switches a,b]

Kept: B costs >= 5% more CPU per request on a load the switch touches. Results: bench/results/switches.md, .json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from .load import GET_IDS_LUA, POST_LUA, lua_list, run_wrk, seed_via_api, wait_idle
from .measure import cpu_per_request, workers_of
from .setup import RESULTS, Services, ensure_wrk, log, start_nx

KEEP_AT = 0.05  # the least a kept switch buys: 5% less CPU per request on one of its loads
CONTROL = "(none: A against A again)"  # every switch on in both: how far two equal servers differ
LOADS = ("post", "get_item", "list")
TITLES = {"post": "POST one", "get_item": "GET one", "list": "list page"}


# The loads whose requests run a switch's code (any other switch: all three)
TOUCHES = {
    "expires_per_second": ("get_item", "list"),
    "absolute_uri": ("post",),
    "predictor_lists": ("post",),
    "group_insert": ("post",),
}


def switch_loads() -> dict[str, tuple[str, ...]]:
    """Each switch core/runtime/__init__.py names, with the loads it is measured on."""
    from core import runtime

    return {name: TOUCHES.get(name, LOADS) for name in runtime.SWITCHES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=3, help="seconds of load per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="A/B pairs per switch and load (default 5; odd)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections on the one worker (8)")
    parser.add_argument("--switches", default="", help="comma-separated names (default: every switch)")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated, of {', '.join(LOADS)} (all)")
    parser.add_argument("--mongo-uri", default=os.environ.get("BENCH_MONGO_URI", ""))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    known = switch_loads()
    chosen = [name for name in args.switches.split(",") if name] or list(known)
    wanted = [load for load in LOADS if load in args.loads.split(",")]
    loads_of = {
        name: tuple(load for load in loads if load in wanted)
        for name, loads in {CONTROL: LOADS, **{name: known.get(name, LOADS) for name in chosen}}.items()
    }
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="switches-"))
    on_nx = not args.mongo_uri
    nx, mongo_uri = start_nx(workdir) if on_nx else (None, args.mongo_uri)
    # One worker per variant, all on one database: every variant serves the same documents.
    services = Services(mongo_uri, on_nx, 1, 1, workdir, "switches")
    try:
        services.prepare()
        off = {"A": "", CONTROL: "", **{name: name for name in chosen}}
        urls = {variant: services.start_ours(None, {"SPEED_SWITCHES_OFF": names}) for variant, names in off.items()}
        workers = {variant: workers_of(process) for variant, process in zip(off, services.processes, strict=True)}
        ids = seed_via_api(urls["A"], 300)
        scripts = {
            "post": (POST_LUA, "/estimations"),
            "get_item": (GET_IDS_LUA % lua_list(ids), "/"),
            "list": (None, "/estimations?max_results=25"),
        }
        log(f"warming up {len(urls)} variants")
        for url in urls.values():
            for script, path in scripts.values():
                run_wrk(wrk, url + path, duration=1, connections=args.connections, script=script, workdir=workdir)

        def measure(variant: str, load: str) -> dict:
            script, path = scripts[load]
            wait_idle(mongo_uri)  # the database's CPU is counted too: nothing else may run on it
            return cpu_per_request(
                wrk, urls[variant] + path, script, workers[variant], nx, workdir,
                seconds=args.duration, connections=args.connections,
            )  # fmt: skip

        pairs: dict[str, dict[str, list[tuple[dict, dict]]]] = {name: {} for name in loads_of}
        for round_ in range(args.rounds):
            log(f"round {round_ + 1} of {args.rounds}")
            for name, loads in loads_of.items():
                for load in loads:
                    # A and B back to back, so the machine's drift hits both; which goes first alternates
                    if round_ % 2:
                        b, a = measure(name, load), measure("A", load)
                    else:
                        a, b = measure("A", load), measure(name, load)
                    pairs[name].setdefault(load, []).append((a, b))
    finally:
        services.stop()
        if nx:
            nx.stop()
    results = summarise(pairs, vars(args) | {"mongo": "nx-27017" if on_nx else "given"})
    return report(results)


def _total(sample: dict) -> float:
    """The CPU a request cost the machine: the worker's, and the database server's when it was measured."""
    return sample["worker_ms"] + (sample["database_ms"] or 0.0)


def summarise(pairs: dict[str, dict[str, list[tuple[dict, dict]]]], config: dict) -> dict:
    """Per switch and load: medians of A and B, and the median of the pairs' B/A; the verdict per switch."""
    switches: dict = {}
    for name, by_load in pairs.items():
        loads = {}
        for load, measured in by_load.items():
            loads[load] = {
                "a_worker_ms": statistics.median(a["worker_ms"] for a, _ in measured),
                "b_worker_ms": statistics.median(b["worker_ms"] for _, b in measured),
                "a_total_ms": statistics.median(_total(a) for a, _ in measured),
                "b_total_ms": statistics.median(_total(b) for _, b in measured),
                "worker_ratio": statistics.median(b["worker_ms"] / a["worker_ms"] for a, b in measured),
                "total_ratio": statistics.median(_total(b) / _total(a) for a, b in measured),
                "total_ratios": [_total(b) / _total(a) for a, b in measured],
            }
        best = max(loads, key=lambda load: loads[load]["total_ratio"])
        switches[name] = {"loads": loads, "best_load": best, "kept": loads[best]["total_ratio"] >= 1 + KEEP_AT}
    control = switches.pop(CONTROL)
    return {"config": config, "switches": switches, "control": control}


def _row(name: str, switch: dict, verdict: str) -> str:
    cells = []
    for load in LOADS:
        figures = switch["loads"].get(load)
        cells.append(
            f"{figures['a_total_ms']:.2f} / {figures['b_total_ms']:.2f} = **{figures['total_ratio']:.3f}** "
            f"(worker {figures['worker_ratio']:.3f})"
            if figures
            else "-"
        )
    return f"| {name} | {' | '.join(cells)} | {verdict} |"


def report(results: dict) -> int:
    rows = [
        "| switch off in B | " + " | ".join(f"{TITLES[load]}: ms A / B = B/A" for load in LOADS) + " | verdict |",
        "| --- | " + " | ".join("---:" for _ in LOADS) + " | --- |",
    ]
    for name, switch in results["switches"].items():
        verdict = f"kept ({TITLES[switch['best_load']]})" if switch["kept"] else "removed"
        rows.append(_row(name, switch, verdict))
    rows.append(_row(CONTROL, results["control"], "the noise"))
    config = results["config"]
    spread = {
        load: f"{min(figures['total_ratios']):.3f} to {max(figures['total_ratios']):.3f}"
        for load, figures in results["control"]["loads"].items()
    }
    rows += [
        "",
        f"- CPU ms per request (from /proc): one gevent worker per variant, plus the database server when "
        f"the run started it (MongoDB: {config['mongo']}); medians of {config['rounds']} A/B pairs of "
        f"{config['duration']} s each at {config['connections']} connections, A and B back to back. B/A is "
        f"the median of the pairs' ratios; kept when it is >= {1 + KEEP_AT:.2f} on one load.",
        "- The noise, A against A again, pair by pair: "
        + "; ".join(f"{TITLES[load]} {text}" for load, text in spread.items())
        + ".",
    ]
    table = "\n".join(rows)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "switches.md").write_text(table + "\n")
    (RESULTS / "switches.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
