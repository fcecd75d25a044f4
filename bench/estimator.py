"""`make bench-estimator`: in-process estimation speed, the fast path against the scikit-learn Pipeline.

    python -m bench.estimator [--rows 1000000]

Exits 1 when a target is missed: one estimate <= 50 us median, bulk >= 1M rows/s, the Pipeline's results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_ONE_US = 50.0
TARGET_BULK_ROWS_PER_S = 1_000_000


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estimator_project.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    import django

    django.setup()


def per_call_us(function, calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time of one call in a batch of ``calls``."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


def rows_per_second(function, rows: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return rows / statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the bulk runs")
    args = parser.parse_args(argv)
    _setup()
    from ml.data import read_training_csv
    from ml.pipeline import model_input
    from ml.predictor import Predictor
    from ml.train import train

    trained = train(read_training_csv(ROOT / "data" / "sample_sales.csv", progress=False))
    pipeline = trained.pipeline
    fast = Predictor.from_metadata(pipeline, version=1, metadata=trained.metadata)

    rng = np.random.default_rng(0)
    ranks = np.exp(rng.uniform(0, np.log(5_000_000), args.rows)).astype(np.int64) + 1
    categories = rng.choice(fast.categories, args.rows)
    category_list = categories.tolist()
    X_one = model_input(["books"], np.array([1234]))
    X_all = model_input(categories, ranks)

    results = {
        "one_pipeline_us": per_call_us(lambda: pipeline.predict(X_one), calls=50, repeats=11),
        "one_fast_us": per_call_us(lambda: fast.estimate(1234, "books"), calls=20_000, repeats=11),
        "bulk_pipeline_rows_per_s": rows_per_second(lambda: pipeline.predict(X_all), args.rows, repeats=3),
        "bulk_fast_rows_per_s": rows_per_second(
            lambda: fast.estimate_arrays(ranks.astype(np.float64), category_list), args.rows, repeats=5
        ),
    }
    expected = np.maximum(pipeline.predict(X_all), 0.0)
    sales, _, _, _ = fast.estimate_arrays(ranks.astype(np.float64), category_list)
    undecided = np.abs(expected - np.floor(expected) - 0.5) < 1e-6
    results["rows_compared"] = int(args.rows)
    results["rows_equal"] = int(np.sum(sales[~undecided] == np.rint(expected[~undecided]))) + int(undecided.sum())

    checks = {
        "one estimate <= 50 us median": results["one_fast_us"] <= TARGET_ONE_US,
        "bulk >= 1,000,000 rows/s": results["bulk_fast_rows_per_s"] >= TARGET_BULK_ROWS_PER_S,
        "equal to the Pipeline on every row": results["rows_equal"] == results["rows_compared"],
    }
    table = "\n".join(
        [
            "| measure | scikit-learn Pipeline | fast path | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| one estimate (median) | {results['one_pipeline_us']:,.1f} us | {results['one_fast_us']:,.2f} us | "
            f"{results['one_pipeline_us'] / results['one_fast_us']:,.0f}x faster |",
            f"| bulk, {args.rows:,} rows | {results['bulk_pipeline_rows_per_s']:,.0f} rows/s | "
            f"{results['bulk_fast_rows_per_s']:,.0f} rows/s | "
            f"{results['bulk_fast_rows_per_s'] / results['bulk_pipeline_rows_per_s']:,.1f}x |",
            "",
            f"Equal to the Pipeline: {results['rows_equal']:,} of {results['rows_compared']:,} rows.",
            "",
            *[f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()],
        ]
    )
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = {"when": stamp, "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    (RESULTS / "estimator.md").write_text(table + "\n")
    (RESULTS / "estimator.json").write_text(json.dumps({**meta, **results, "checks": checks}, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
