"""`make bench-estimator` (python -m bench.estimator): in-process estimation speed against the Pipeline.

Exits 1 when a target is missed: one estimate <= 5 us median, bulk >= 5M rows/s, results equal to the
Pipeline's on every row, training 1,000,000 CSV rows in <= 20 s and <= 1 GB (a process of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_ONE_US = 5.0
TARGET_BULK_ROWS_PER_S = 5_000_000
TARGET_TRAIN_SECONDS = 20.0
TARGET_TRAIN_MB = 1024.0
TRAIN_ROWS = 1_000_000
# Reads the CSV and trains as `train_model` does, without a database to save into.
TRAIN_SCRIPT = """
import sys, time
from ml.data import read_training_csv
from ml.train import train
started = time.perf_counter()
train(read_training_csv(sys.argv[1], progress=False))
print(time.perf_counter() - started)
"""


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


def training_run(rows: int, badges: bool = False) -> dict[str, float]:
    """Time and peak memory of reading and training on a generated CSV of ``rows``, in a fresh process
    (``badges``: each month's units turned into the badge it shows, then by badges_to_csv into ranges)."""
    from ml.sample_data import write_csv

    with tempfile.TemporaryDirectory() as directory:
        csv = Path(directory) / "train.csv"
        write_csv(csv, rows, seed=1)
        if badges:
            csv = _as_badges(csv, Path(directory))
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-c", TRAIN_SCRIPT, str(csv)], cwd=ROOT, capture_output=True, text=True, check=True
        )
        seconds = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "rows": rows,
        "seconds": seconds,
        "fit_seconds": float(run.stdout.split()[-1]),
        "peak_rss_mb": peak_kb / 1024,
    }


def _as_badges(path: Path, directory: Path) -> Path:
    import csv

    from ml.badges import badge_of, convert

    sheet = directory / "sheet.csv"
    with open(path, newline="") as source, open(sheet, "w", newline="") as target:
        reader, writer = csv.reader(source), csv.writer(target)
        header = next(reader)
        place = header.index("monthly_sales")
        writer.writerow([*header[:place], "bought_in_past_month", *header[place + 1 :]])
        writer.writerows([*row[:place], badge_of(float(row[place])), *row[place + 1 :]] for row in reader)
    convert(sheet, directory / "badges.csv", "bought_in_past_month")
    return directory / "badges.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the bulk runs")
    parser.add_argument("--train-rows", type=int, default=TRAIN_ROWS, help="CSV rows in the training run")
    parser.add_argument("--train-badges", action="store_true", help="train on badge ranges (no target checked)")
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

    codes = fast.codes(category_list)
    float_ranks = ranks.astype(np.float64)
    results = {
        "one_pipeline_us": per_call_us(lambda: pipeline.predict(X_one), calls=50, repeats=11),
        "one_fast_us": per_call_us(lambda: fast.estimate(1234, "books"), calls=20_000, repeats=11),
        "bulk_pipeline_rows_per_s": rows_per_second(lambda: pipeline.predict(X_all), args.rows, repeats=3),
        "bulk_fast_rows_per_s": rows_per_second(lambda: fast.estimate_codes(float_ranks, codes), args.rows, repeats=5),
        "bulk_names_rows_per_s": rows_per_second(
            lambda: fast.estimate_arrays(float_ranks, category_list), args.rows, repeats=3
        ),
    }
    features, model = pipeline.named_steps["features"], pipeline.named_steps["curve"]
    expected = model.predict_quantiles(features.transform(X_all))
    served = fast.estimate_codes(float_ranks, codes)
    equal = np.ones(args.rows, dtype=bool)
    for mine, theirs in zip((served[1], served[0], served[2], served[3]), expected, strict=True):
        equal &= mine == theirs
    single = [fast.estimate(int(r), str(c)) for r, c in zip(ranks[:20_000], categories[:20_000], strict=True)]
    results["rows_compared"] = int(args.rows)
    results["rows_equal"] = int(equal.sum())
    results["one_by_one_equal"] = sum(
        tuple(one) == (served[0][i], served[1][i], served[2][i], served[3][i]) for i, one in enumerate(single)
    )
    results["training"] = training_run(args.train_rows, args.train_badges) if args.train_rows > 0 else None

    training = results["training"]
    checks = {
        "one estimate <= 5 us median": results["one_fast_us"] <= TARGET_ONE_US,
        "bulk >= 5,000,000 rows/s": results["bulk_fast_rows_per_s"] >= TARGET_BULK_ROWS_PER_S,
        "equal to the Pipeline on every row": results["rows_equal"] == results["rows_compared"],
        "one by one equal to bulk": results["one_by_one_equal"] == len(single),
    }
    if training and not args.train_badges:  # `make bench` times training on its own (--train-rows 0 here)
        checks[f"training {args.train_rows:,} rows <= 20 s"] = training["seconds"] <= TARGET_TRAIN_SECONDS
        checks[f"training {args.train_rows:,} rows <= 1 GB"] = training["peak_rss_mb"] <= TARGET_TRAIN_MB
    table = "\n".join(
        [
            "| measure | scikit-learn Pipeline | fast path | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| one estimate (median) | {results['one_pipeline_us']:,.1f} us | {results['one_fast_us']:,.2f} us | "
            f"{results['one_pipeline_us'] / results['one_fast_us']:,.0f}x faster |",
            f"| bulk, {args.rows:,} rows | {results['bulk_pipeline_rows_per_s']:,.0f} rows/s | "
            f"{results['bulk_fast_rows_per_s']:,.0f} rows/s | "
            f"{results['bulk_fast_rows_per_s'] / results['bulk_pipeline_rows_per_s']:,.1f}x |",
            f"| bulk, from category names | | {results['bulk_names_rows_per_s']:,.0f} rows/s | |",
            "",
            f"Equal to the Pipeline (median, low, high, extrapolated): {results['rows_equal']:,} of "
            f"{results['rows_compared']:,} rows; one by one: {results['one_by_one_equal']:,} of {len(single):,}.",
            f"Training on {args.train_rows:,} CSV rows{' of badges' if args.train_badges else ''} (read and fit, "
            "a process of its own): "
            f"{training['seconds']:.1f} s wall, {training['fit_seconds']:.1f} s in train, "
            f"peak {training['peak_rss_mb']:,.0f} MB."
            if training
            else "Training: not run (--train-rows 0).",
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
