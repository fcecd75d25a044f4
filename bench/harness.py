"""`make bench`: this service side by side with the tutorial's Eve service, same machine, same MongoDB.

    python -m bench [--duration 10] [--connections 16] [--rounds 3] [--mongo-uri URI]

How it measures, and every run's figures: docs/performance.md. Results: bench/results/harness.md, .json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .report import report
from .scenarios import cpu_scenario, http_scenarios, list_scenario, process_scenarios
from .setup import ensure_eve, ensure_wrk, log, start_nx


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    # Odd, so a figure is a median one round slowed by the shared machine cannot move (docs/performance.md)
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


if __name__ == "__main__":
    sys.exit(main())
