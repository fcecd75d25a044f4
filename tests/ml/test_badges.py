"""Issue 21, point 4: a curve is recovered from "bought in past month" badges alone by their censored
likelihood, where taking each badge's lower bound as the value misses. The truth is the generator's own
median, by simulation, as in tests/ml/test_curve_shapes.py."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from django.core.management import call_command

from ml.badges import badge_of
from ml.pipeline import MonotoneCountCurve
from ml.serving import model_registry

SIGMA = 0.4
ROWS = 24_000
# Amazon's badges: 50+, 100+, 200+, ..., 900+, 1K+, 2K+, ..., 9K+, 10K+, 20K+, ..., 90K+, 100K+.
BADGES = np.array([50] + [m * 10**e for e in range(2, 5) for m in range(1, 10)] + [100_000], dtype=np.float64)
GRID = np.unique(np.geomspace(1, 1e6, 40).astype(np.int64))


def truth(ranks):  # ln of the rate's median: 36,000 a month at rank 1, 50 near rank 5,000
    x = np.log(ranks)
    return 10.5 - 0.5 * x - 0.03 * x * x


def true_median(ranks, draws=200_000, scale=1.0):
    rng = np.random.default_rng(7)
    spread = rng.normal(0.0, SIGMA, draws)
    return np.array([np.median(rng.poisson(scale * np.exp(truth(np.array([rank]))[0] + spread))) for rank in ranks])


def badge_ranges(units):
    """[min, max] of each month as its badge tells it: the badge's bucket up to the next badge (the page
    would show that one had it been reached); no badge: fewer than 50; the highest badge: open."""
    place = np.searchsorted(BADGES, units, side="right") - 1
    low = np.where(place >= 0, BADGES[np.maximum(place, 0)], 0.0)
    following = np.append(BADGES[1:] - 1, np.inf)
    return low, np.where(place >= 0, following[np.maximum(place, 0)], 49.0)


@pytest.fixture(scope="module")
def months():
    rng = np.random.default_rng(21)
    ranks = np.floor(np.exp(rng.uniform(0, math.log(1e6), ROWS)))
    units = rng.poisson(np.exp(truth(ranks) + rng.normal(0.0, SIGMA, ROWS))).astype(np.float64)
    return np.column_stack([np.zeros(ROWS), np.log(ranks)]), units


@pytest.fixture(scope="module")
def judged():
    median = true_median(GRID)
    kept = median >= 50

    def median_error(model) -> float:
        estimate = model.predict(np.column_stack([np.zeros(len(GRID)), np.log(GRID)]))
        return float(np.median(np.abs(estimate[kept] - median[kept]) / median[kept]))

    return median_error


def test_badges_alone_recover_the_curve_where_the_lower_bound_as_the_value_misses(months, judged):
    X, units = months
    low, high = badge_ranges(units)
    assert not (low == high).any()  # every row a range: badges alone

    censored = judged(MonotoneCountCurve().fit(X, np.column_stack([low, high])))
    lower_bound = judged(MonotoneCountCurve().fit(X, low))

    assert censored <= 0.20, censored
    assert lower_bound > 0.20 and lower_bound > 5 * censored, (lower_bound, censored)


def test_open_ranges_from_lists_of_products_with_at_least_a_badge_recover_the_curve(months, judged):
    """A list of the products showing at least one badge (a filter "1K+ bought in past month") tells of
    each product either [badge, open] or [0, badge - 1]: every badge row is an open range."""
    X, units = months
    threshold = BADGES[np.random.default_rng(4).integers(0, len(BADGES), len(units))]
    reached = units >= threshold
    low, high = np.where(reached, threshold, 0.0), np.where(reached, np.inf, threshold - 1)

    assert judged(MonotoneCountCurve().fit(X, np.column_stack([low, high]))) <= 0.20


def test_exact_months_and_badges_mixed(months, judged):
    X, units = months
    low, high = badge_ranges(units)
    exact = np.arange(len(units)) % 4 == 0  # a quarter of the months known to the unit, as a seller's own
    y = np.column_stack([np.where(exact, units, low), np.where(exact, units, high)])

    assert judged(MonotoneCountCurve().fit(X, y)) <= 0.10


def test_reading_every_badge_as_open_ended_cannot_recover_the_curve(months, judged):
    """A badge below the highest also says the next was not reached; without that, the likelihood of
    "at least N" rows grows with the curve, which the fit can then only bound by its limits."""
    X, units = months
    low, high = badge_ranges(units)

    assert judged(MonotoneCountCurve().fit(X, np.column_stack([low, np.where(high > 49, np.inf, high)]))) > 1.0


@pytest.mark.parametrize("store_kind", ["mongomock"])  # the registry's stores are tested elsewhere
def test_a_spreadsheet_of_badges_trains_a_served_model_per_marketplace(tmp_path, mongo_db):
    """End to end: a sheet with a badge column, badges_to_csv, train_model, the served estimate."""
    rng = np.random.default_rng(5)
    lines = ["asin,marketplace,category,bestseller_rank,bought_in_past_month"]
    for marketplace, scale in (("us", 0.0), ("uk", math.log(0.25))):
        ranks = np.floor(np.exp(rng.uniform(0, math.log(1e6), 6_000))).astype(np.int64)
        units = rng.poisson(np.exp(truth(ranks) + scale + rng.normal(0.0, SIGMA, len(ranks))))
        for index, (rank, sold) in enumerate(zip(ranks, units, strict=True)):
            badge = badge_of(sold) and badge_of(sold) + " bought in past month"
            lines.append(f"B{index},{marketplace},books,{rank},{badge}")
    (sheet := tmp_path / "sheet.csv").write_text("\n".join(lines) + "\n")
    out = io.StringIO()
    call_command("badges_to_csv", str(sheet), str(tmp_path / "train.csv"), stdout=out)
    assert "Wrote 12,000 rows" in out.getvalue()

    trained = io.StringIO()
    call_command("train_model", "--csv", str(tmp_path / "train.csv"), stdout=trained, stderr=io.StringIO())
    # The holdout of badges has no exact units to score: the run says how it was checked instead.
    assert "Held-out range rows (badges): 2,400, of which " in trained.getvalue()

    registry = model_registry()
    served = registry.load_predictor(registry.active_version())
    kept = GRID[true_median(GRID) >= 200]  # >= 50 a month in uk too
    for marketplace, scale in (("us", 1.0), ("uk", 0.25)):
        median = true_median(kept, scale=scale)
        estimate = np.array([served.estimate(int(rank), "books", marketplace).sales for rank in kept])
        assert np.median(np.abs(estimate - median) / median) <= 0.20, marketplace
