"""The fit's mathematics against brute force: the Poisson-lognormal CDF, the spread's likelihood fit, the
quantile thresholds, and the monotone fit on a curve no single power law describes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaincc

from ml import curve

GRID = np.linspace(-9.0, 9.0, 40_001)
DENSITY = np.exp(-GRID * GRID / 2) / math.sqrt(2 * math.pi) * (GRID[1] - GRID[0])


def brute_cdf(k: int, log_rate: float, sigma: float) -> float:
    """P(units <= k) by a dense sum over the log-normal factor."""
    return float(np.sum(gammaincc(k + 1, np.exp(log_rate + sigma * GRID)) * DENSITY))


@pytest.mark.parametrize("sigma", [0.05, 0.2, 0.4, 0.8, 1.5, 2.5])
def test_the_cdf_matches_a_dense_integral_from_0_to_400_units(sigma):
    worst = 0.0
    for k in (0, 1, 2, 5, 10, 50, 200, 400):
        for log_rate in (math.log(max(k, 0.3)) + shift for shift in (-0.5, 0.0, 0.4)):
            got = float(curve._cdf(np.array([k]), np.array([log_rate]), sigma)[0])
            worst = max(worst, abs(got - brute_cdf(k, log_rate, sigma)))

    assert worst < 1e-5, worst


@pytest.mark.parametrize("sigma", [0.1, 0.4, 0.8, 1.5])
def test_the_spread_is_recovered_from_counts_at_every_scale(sigma):
    rng = np.random.default_rng(5)
    median_rate = np.exp(rng.uniform(-1.0, 8.0, 20_000))
    units = rng.poisson(median_rate * np.exp(rng.normal(0.0, sigma, len(median_rate)))).astype(float)

    fitted = curve.fit_sigma(units, np.log(median_rate) + sigma * sigma / 2, seed=0)

    assert fitted == pytest.approx(sigma, rel=0.05)


def test_the_thresholds_give_the_median_and_the_nearest_10_and_90_percent_points():
    sigma = 0.4
    table = curve.quantile_thresholds(sigma)
    rng = np.random.default_rng(9)
    for log_rate in (math.log(0.7), math.log(3.0), math.log(12.5), math.log(150.0)):
        draws = rng.poisson(np.exp(log_rate + rng.normal(0.0, sigma, 400_000)))
        low, median, high = (int(np.searchsorted(row, log_rate, side="right")) for row in table)
        assert median == int(np.median(draws))
        assert abs(np.mean(draws < low) - 0.10) <= abs(np.mean(draws < low + 1) - 0.10) + 1e-3
        assert abs(np.mean(draws <= high) - 0.90) <= abs(np.mean(draws <= high - 1) - 0.90) + 1e-3


def test_the_fit_follows_a_convex_then_steep_curve_and_never_rises():
    rng = np.random.default_rng(2)
    ranks = np.floor(np.exp(rng.uniform(0, math.log(1e6), 20_000)))
    x = np.log(ranks)
    truth = np.where(x < math.log(300), 12.0 - 0.4 * x, 12.0 - 0.4 * math.log(300) - 1.2 * (x - math.log(300)))
    units = rng.poisson(np.exp(truth + rng.normal(0, 0.3, len(x)))).astype(float)
    segments = curve.segments_for(math.log(1e6))

    knots = curve.fit_curve(x, units, segments, dispersion=0.1)

    places = np.arange(segments + 1) * curve.KNOT_STEP
    expected = np.interp(places, x[np.argsort(x)], truth[np.argsort(x)]) + 0.3**2 / 2  # the mean, not the median
    inside = np.exp(places) < 3e5  # where the truth still sells a unit or more
    assert np.all(np.diff(knots) <= 0)
    assert np.max(np.abs(knots[inside] - expected[inside])) < 0.1
    assert np.allclose(curve.fit_curve(x, units, segments, dispersion=0.1, start=curve.knot_parameters(knots)), knots)
