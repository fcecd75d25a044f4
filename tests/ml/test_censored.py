"""The censored likelihood's pieces against brute force, and the fit's contract for y of shape (n, 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import poisson

from ml import censored
from ml.pipeline import MonotoneCountCurve

GRID = np.linspace(-9.0, 9.0, 20_001)
DENSITY = np.exp(-GRID * GRID / 2) / math.sqrt(2 * math.pi) * (GRID[1] - GRID[0])
CASES = [(0.0, 49.0), (50.0, 99.0), (1000.0, 1999.0), (200.0, math.inf), (0.0, math.inf), (7.0, 7.0)]


def brute_mass(low: float, high: float, u: float, sigma: float) -> float:
    rates = np.exp(u + sigma * GRID)
    upper = poisson.cdf(high, rates) if math.isfinite(high) else 1.0
    return float(np.sum((upper - poisson.cdf(low - 1, rates)) * DENSITY))


@pytest.mark.parametrize("sigma", [0.2, 0.5, 1.2])
def test_the_range_probability_matches_a_dense_integral(sigma):
    for low, high in CASES:
        for u in (math.log(max(low, 1.0)) - 0.7, math.log(max(low, 1.0)) + 0.3, math.log(max(high, 1.0))):
            terms = censored._Terms(np.array([low]), np.array([high]), sigma)
            assert float(terms.mass(np.array([u]))[0]) == pytest.approx(brute_mass(low, high, u, sigma), abs=2e-5)


@pytest.mark.parametrize("sigma", [0.3, 0.8])
def test_the_derivatives_in_the_rate_match_finite_differences(sigma):
    low, high = np.array([c[0] for c in CASES]), np.array([c[1] for c in CASES])
    terms = censored._Terms(low, high, sigma)
    for shift in (-0.5, 0.0, 0.6):
        u = np.log(np.maximum(low, 3.0)) + shift
        h = 1e-3
        value, first, second = terms.derivatives(u)
        minus, plus = np.log(terms.mass(u - h)), np.log(terms.mass(u + h))
        assert np.allclose(value, np.log(terms.mass(u)))
        assert np.allclose(first, (plus - minus) / (2 * h), rtol=1e-3, atol=2e-3)
        assert np.allclose(second, (plus - 2 * value + minus) / h**2, rtol=2e-2, atol=5e-2)
        assert np.all(second <= 1e-6)  # concave in u: the Newton fit's curvature


def sample(rows=4_000, seed=3):
    rng = np.random.default_rng(seed)
    ranks = np.floor(np.exp(rng.uniform(0, math.log(1e5), rows)))
    units = rng.poisson(np.exp(9.0 - 0.8 * np.log(ranks) + rng.normal(0, 0.4, rows))).astype(float)
    return np.column_stack([np.zeros(rows), np.log(ranks)]), units


def test_rows_of_min_equal_to_max_fit_exactly_as_plain_units():
    X, units = sample()

    plain = MonotoneCountCurve().fit(X, units)
    paired = MonotoneCountCurve().fit(X, np.column_stack([units, units]))

    assert np.array_equal(plain.knots_, paired.knots_) and np.array_equal(plain.sigma_, paired.sigma_)


@pytest.mark.parametrize(
    "y",
    [
        np.array([[5.0, 3.0]] * 30),  # min above max
        np.array([math.nan] * 30),  # a range row's NaN sales passed as plain units
        np.array([[math.nan, 3.0]] * 30),
    ],
)
def test_ranges_the_fit_cannot_read_are_refused(y):
    with pytest.raises(ValueError, match="min <= max"):
        MonotoneCountCurve().fit(np.column_stack([np.zeros(30), np.log(np.arange(1, 31))]), y)


def test_a_range_row_pulls_the_curve_toward_its_range():
    """Rows saying "at least 5,000" at the top ranks raise the head over the exact rows' fit."""
    X, units = sample()
    head = X[:, 1] < math.log(20)
    low = np.where(head, np.maximum(units, 5_000.0), units)
    high = np.where(head, math.inf, units)

    exact = MonotoneCountCurve().fit(X, units)
    ranged = MonotoneCountCurve().fit(X, np.column_stack([low, high]))

    top = np.array([[0.0, 0.0]])
    assert ranged.predict(top)[0] > 1.5 * exact.predict(top)[0]
