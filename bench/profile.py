"""`make profile`: where our workers' time goes under each benchmark load, py-spy samples summed by package.

    python -m bench.profile [--duration 10] [--mongo-uri URI] [--gil]

Writes bench/results/profile.md and each load's collapsed stacks; how to read them: docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import load, measure, setup

OUR_PACKAGES = ("estimations", "estimator_project", "ml")
REQUEST_FRAME = "WSGIHandler.__call__"
WAITING = "(waiting for the database's reply)"


def package_of(frame: str) -> str:
    """The package of a py-spy frame, 'function (package/module.py:line)': its first path part, or
    'stdlib:<module>' for Python's own library."""
    match = re.search(r"\((.*?):\d+\)$", frame)
    path = (match.group(1) if match else frame).split("site-packages/")[-1]
    top = path.split("/", 1)[0].removesuffix(".py")
    return f"stdlib:{top}" if top in sys.stdlib_module_names or top.startswith("<") else top


def _self_bucket(frame: str) -> str:
    # A thread blocked in PyMongo's socket read is the database's time, not PyMongo's
    if frame.startswith(("NetworkingInterface.recv_into", "receive_data", "_receive_data_on_socket")):
        return WAITING
    return package_of(frame)


def summarise(collapsed: str, *, top: int = 12) -> dict:
    """From py-spy's collapsed stacks: request samples, self share per package, total share per function
    of ours."""
    by_package: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        at = next((i for i, frame in enumerate(frames) if frame.startswith(REQUEST_FRAME)), None)
        if at is None:
            continue  # not serving a request: gunicorn's loop, PyMongo's monitors
        samples = int(count)
        total += samples
        by_package[_self_bucket(frames[-1])] += samples
        names = {frame.split(" (")[0] for frame in frames[at:] if package_of(frame) in OUR_PACKAGES}
        for name in names - {"RequestMiddleware.__call__"}:  # wraps every request: 100% says nothing
            ours[name] += samples
    share = (lambda n: n / total) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "packages": [(name, share(n)) for name, n in by_package.most_common(top)],
        "ours": [(name, share(n)) for name, n in ours.most_common(top)],
    }


def render(path: str, summary: dict) -> str:
    lines = [f"## {path}: {summary['samples']:,} samples in requests", ""]
    lines += ["| package (self) | share |", "| --- | ---: |"]
    lines += [f"| {name} | {value:.1%} |" for name, value in summary["packages"]]
    lines += ["", "| our function (with what it calls) | share |", "| --- | ---: |"]
    lines += [f"| {name} | {value:.1%} |" for name, value in summary["ours"]]
    return "\n".join(lines) + "\n"


def ensure_py_spy() -> str:
    found = shutil.which("py-spy") or str(setup.BIN / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is missing: pip install -r requirements-dev.txt")
    return found


def record(py_spy: str, pids: list[str], seconds: int, out: Path, *, gil: bool) -> list[subprocess.Popen]:
    """One py-spy per worker, in the background, writing collapsed stacks to out.<pid>."""
    options = ["--rate", "200", "--format", "raw", "--duration", str(seconds), "--nonblocking"]
    if gil:
        options.append("--gil")  # only samples holding the GIL: CPU work, no waiting
    return [
        subprocess.Popen(
            [py_spy, "record", *options, "--pid", pid, "--output", f"{out}.{pid}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load and sampling per path")
    parser.add_argument("--mongo-uri", default=os.environ.get("BENCH_MONGO_URI", ""))
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL: CPU work, no waiting")
    args = parser.parse_args(argv)
    py_spy, wrk = ensure_py_spy(), setup.ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="profile-"))
    nx = None
    mongo_uri = args.mongo_uri
    if not mongo_uri:
        nx, mongo_uri = setup.start_nx(workdir)
    services = setup.Services(mongo_uri, nx is not None, 2, 4, workdir, "profile")
    setup.RESULTS.mkdir(parents=True, exist_ok=True)
    report = []
    try:
        services.prepare()
        services.start()
        ids = load.seed_via_api(services.ours, 1000)
        workers = [str(pid) for pid in measure.workers_of(services.processes[0])]
        wrk_load = {"duration": args.duration, "connections": 16, "workdir": workdir}
        bulk = [{"bestseller_rank": 1 + i, "category": "books"} for i in range(10_000)]
        paths = {
            "post": lambda: load.run_wrk(wrk, services.ours + "/estimations", script=load.POST_LUA, **wrk_load),
            "get-item": lambda: load.run_wrk(
                wrk, services.ours + "/", script=load.GET_IDS_LUA % load.lua_list(ids), **wrk_load
            ),
            "list": lambda: load.run_wrk(wrk, services.ours + "/estimations?max_results=25", script=None, **wrk_load),
            "bulk": lambda: [load.post_json(services.ours + "/estimations", bulk) for _ in range(3)],
        }
        for name, load_it in paths.items():
            setup.log(f"profiling {name}")
            out = setup.RESULTS / f"profile-{name}.txt"
            spies = record(py_spy, workers, args.duration + 2, workdir / name, gil=args.gil)
            time.sleep(1)  # py-spy attached
            load_it()
            for spy in spies:
                spy.wait(timeout=args.duration + 60)
            collapsed = "".join(p.read_text() for p in workdir.glob(f"{name}.*"))
            out.write_text(collapsed)
            report.append(render(name, summarise(collapsed)))
    finally:
        services.stop()
        if nx is not None:
            nx.stop()
    text = "\n".join(report)
    (setup.RESULTS / "profile.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
