"""`make bench-models` (python -m bench.model_choice): candidate fits on three curve shapes (docs/model.md).

10,000 rows per category, sigma 0.4 and Poisson; errors of the median estimate at 26 ranks from 10 to
1,000,000 where the true median is at least 3 a month. Prints a table and writes bench/results/models.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression

from ml.data import Dataset
from ml.legacy import build_legacy_pipeline
from ml.pipeline import model_input
from ml.train import train

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA, ROWS, MAX_RANK = 0.4, 10_000, 1_000_000
GRID = np.unique(np.geomspace(10, MAX_RANK, 26).astype(np.int64))


def _convex(x):
    knee = math.log(10_000)
    return np.where(x < knee, 11.0 - x, 11.0 - knee - 0.6 * (x - knee))


def _kinked(x):
    knee = math.log(300)
    return np.where(x < knee, 13.0 - 1.3 * x, 13.0 - 1.3 * knee - 0.8 * (x - knee))


SHAPES = {"convex": _convex, "kinked": _kinked, "concave": lambda x: 10.5 - 0.5 * x - 0.03 * x * x}


def _data(rng):
    parts = {}
    for name, shape in SHAPES.items():
        ranks = np.clip(np.floor(np.exp(rng.uniform(0, math.log(MAX_RANK + 1), ROWS))), 1, MAX_RANK).astype(np.int64)
        parts[name] = (ranks, rng.poisson(np.exp(shape(np.log(ranks)) + rng.normal(0, SIGMA, ROWS))).astype(float))
    return parts


def _true_median(shape, ranks, rng):
    spread = rng.normal(0.0, SIGMA, 200_000)
    return np.array([np.median(rng.poisson(np.exp(shape(math.log(r)) + spread))) for r in ranks])


def _boosting() -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(loss="poisson", monotonic_cst=[-1], random_state=0)


def main() -> int:
    rng = np.random.default_rng(20)
    parts = _data(rng)
    names = list(SHAPES)
    dataset = Dataset(
        categories=np.concatenate([np.full(ROWS, name) for name in names]),
        ranks=np.concatenate([parts[name][0] for name in names]),
        sales=np.concatenate([parts[name][1] for name in names]),
        sha256="0" * 64,
        source="shapes",
    )
    X = model_input(dataset.categories, dataset.ranks)
    chosen = train(dataset).pipeline
    before = build_legacy_pipeline().fit(X, dataset.sales)
    median_factor = math.exp(-SIGMA * SIGMA / 2)  # a mean fit's median, given the true sigma (in its favour)

    def per_shape(name, fit_mean):
        ranks, sales = parts[name]
        return fit_mean(np.log(ranks)[:, None], sales)

    candidates = {
        "the concave fit before (log1p target)": lambda name: before.predict(model_input([name] * len(GRID), GRID)),
        "isotonic regression in ln rank (counts)": lambda name: (
            median_factor
            * per_shape(
                name, lambda x, y: IsotonicRegression(increasing=False, out_of_bounds="clip").fit(x[:, 0], y)
            ).predict(np.log(GRID))
        ),
        "HistGradientBoosting, monotonic, Poisson loss": lambda name: (
            median_factor
            * per_shape(
                name,
                lambda x, y: HistGradientBoostingRegressor(loss="poisson", monotonic_cst=[-1], random_state=0).fit(
                    x, y
                ),
            ).predict(np.log(GRID)[:, None])
        ),
        "monotone piecewise-linear count model (chosen)": lambda name: chosen.predict(
            model_input([name] * len(GRID), GRID)
        ),
    }
    truths = {name: _true_median(SHAPES[name], GRID, np.random.default_rng(7)) for name in names}
    lines = [
        "| candidate | " + " | ".join(f"{name}: median / worst" for name in names) + " |",
        "| --- |" + " ---: |" * 3,
    ]
    for label, predict in candidates.items():
        cells = []
        for name in names:
            truth, estimate = truths[name], np.rint(np.maximum(predict(name), 0))
            counted = truth >= 3
            miss = np.abs(estimate[counted] - truth[counted]) / truth[counted]
            cells.append(f"{np.median(miss):.1%} / {miss.max():.0%}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "models.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
