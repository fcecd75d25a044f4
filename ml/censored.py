"""The fit when some rows' units are known only to lie in [min, max] (max inf: open), as badges give them.

Their censored likelihood, ln P(min <= units <= max), joins the exact rows' in one penalised, monotone fit
of the mean curve (projected Newton, as curve.fit_curve), alternated with the spread's. More: docs/model.md,
"Training from badges".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from ml import curve

MAX_ROUNDS = 12  # of the curve for the spread, then the spread for the curve
SIGMA_TOLERANCE = 1e-3  # the rounds stop when sigma moves less
START_SIGMA = 0.5  # the spread the first curve is fitted with: near what sales show (docs/model.md)
MIN_START_ROWS = 20  # the rows the start curve needs (MIN_ROWS_PER_CATEGORY)
TINY = 1e-300
LIMIT = 1e9  # the steepest ln P in the ln rate that a step takes (as far as units a month reach in practice)
GROUPS_PER_SEGMENT = 16  # range rows are grouped by 1/16 of a segment in ln rank: 3.6% of a rank wide


@dataclass(frozen=True)
class Ranges:
    """Range rows grouped by (ln rank to GROUPS_PER_SEGMENT a segment, min, max); a group is at the mean ln
    rank of its place's range rows (``x[place]``), as fit_curve puts a bin's rows at their mean: the
    censored terms then cost what the groups do, and the curve's derivatives what the places do."""

    place: np.ndarray  # each group's place
    x: np.ndarray  # each place's mean ln rank
    low: np.ndarray
    high: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, low: np.ndarray, high: np.ndarray, segments: int) -> Ranges:
        _, pairs = np.unique(np.column_stack([low, high]), axis=0, return_inverse=True)
        bins = curve.bin_of(x, segments) // (curve.BINS_PER_SEGMENT // GROUPS_PER_SEGMENT)
        places, by_row = np.unique(bins, return_inverse=True)
        key = pairs.reshape(-1).astype(np.int64) * len(places) + by_row
        _, first, count = np.unique(key, return_index=True, return_counts=True)
        mean_x = np.bincount(by_row, weights=x) / np.bincount(by_row)
        return cls(by_row[first], mean_x, low[first], high[first], count.astype(np.float64))

    def per_place(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.place, weights=values, minlength=len(self.x))


class _Terms:
    """ln P(low <= units <= high) of each group at ln median rate u, for one sigma; the CDFs' nodes are
    set up once, as u changes from one Newton step to the next."""

    def __init__(self, low: np.ndarray, high: np.ndarray, sigma: float):
        self.low, self.sigma = low, sigma
        self.bounded, self.floored = np.isfinite(high), low > 0
        self.b = high[self.bounded]
        self.upper = curve._Cdf(self.b, sigma) if self.bounded.any() else None
        self.lower = curve._Cdf(low - 1, sigma)

    def mass(self, u: np.ndarray) -> np.ndarray:
        upper = np.ones(len(u))
        if self.upper is not None:
            upper[self.bounded] = self.upper(u[self.bounded])
        return np.maximum(upper - self.lower(u), TINY)

    def derivatives(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ln P and its first two derivatives in u. With p the pmf, dF(k)/du = -(k + 1) p(k + 1) and
        dp(k)/du = k p(k) - (k + 1) p(k + 1), from Poisson's own identities."""
        mass, sigma = self.mass(u), self.sigma
        slope, bend = np.zeros(len(u)), np.zeros(len(u))
        if self.floored.any():  # min 0 adds nothing: 0 p(0)
            a, ua = self.low[self.floored], u[self.floored]
            p_low, p_next = _pmf(a, ua, sigma), _pmf(a + 1.0, ua, sigma)
            slope[self.floored] = a * p_low
            bend[self.floored] = a * (a * p_low - (a + 1.0) * p_next)
        if self.upper is not None:
            b, ub = self.b, u[self.bounded]
            p_above, p_beyond = _pmf(b + 1.0, ub, sigma), _pmf(b + 2.0, ub, sigma)
            slope[self.bounded] -= (b + 1.0) * p_above
            bend[self.bounded] -= (b + 1.0) * ((b + 1.0) * p_above - (b + 2.0) * p_beyond)
        first = np.clip(slope / mass, -LIMIT, LIMIT)  # a range far from the rate: steep, not inf
        return np.log(mass), first, np.clip(bend / mass - first * first, -LIMIT * LIMIT, LIMIT * LIMIT)


def _pmf(k: np.ndarray, u: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(curve._log_pmf(k, u, sigma) - gammaln(k + 1.0))


def fit_sigma(y: np.ndarray, log_mean: np.ndarray, ranges: Ranges, range_log_mean: np.ndarray, seed: int) -> float:
    """The spread by maximum likelihood: ln P(units = y) for the exact rows (a seeded sample, as
    curve.fit_sigma takes), ln P(min <= units <= max) for each group of range rows, weighed by its rows."""
    rng = np.random.default_rng(seed)
    weight = 1.0
    if len(y) > curve.SIGMA_ROWS:
        rows = rng.choice(len(y), curve.SIGMA_ROWS, replace=False)
        weight, y, log_mean = len(y) / curve.SIGMA_ROWS, y[rows], log_mean[rows]
    low, high, count, group_mean = ranges.low, ranges.high, ranges.count, range_log_mean
    if len(count) > curve.SIGMA_ROWS:  # many distinct ranges: groups drawn by their rows, each then weighs alike
        picked = rng.choice(len(count), curve.SIGMA_ROWS, p=count / count.sum())
        low, high, group_mean = low[picked], high[picked], group_mean[picked]
        count = np.full(curve.SIGMA_ROWS, count.sum() / curve.SIGMA_ROWS)
    constant = gammaln(y + 1.0)

    def negative_log_likelihood(sigma: float) -> float:
        exact = np.sum(curve._log_pmf(y, log_mean - sigma * sigma / 2, sigma) - constant) if len(y) else 0.0
        mass = _Terms(low, high, sigma).mass(group_mean - sigma * sigma / 2)
        return -float(weight * exact + np.sum(count * np.log(mass)))

    bounds = (1e-3, curve.MAX_SIGMA)
    return float(minimize_scalar(negative_log_likelihood, bounds=bounds, method="bounded", options={"xatol": 1e-4}).x)


def fit_mean(x, y, ranges: Ranges, segments: int, *, sigma: float, start: np.ndarray) -> np.ndarray:
    """ln(mean units) at the knots: fit_curve's objective (the exact rows' negative binomial, dispersion
    e^sigma^2 - 1, and the penalty) less the range groups' censored log-likelihood."""
    design, total, count = curve._binned(x, y, segments)
    seg, frac = curve.locate(ranges.x, segments)
    place_design = curve.design_at(seg, frac, segments)
    phi = min(math.expm1(sigma * sigma), math.expm1(curve.MAX_SIGMA**2))
    shift = sigma * sigma / 2  # the groups' terms are in the median rate
    weight = curve.SMOOTHING * (len(y) + ranges.count.sum())
    terms = _Terms(ranges.low, ranges.high, sigma)
    change = np.diff(np.eye(segments), axis=0)
    penalty_hessian = np.zeros((segments + 1, segments + 1))
    penalty_hessian[1:, 1:] = 2 * weight * change.T @ change

    def parts(theta: np.ndarray, derivatives: bool):
        g = design @ theta
        mu = np.exp(np.minimum(g, 700.0))
        loss = float(np.sum((total + count / phi) * np.log1p(phi * mu) - total * g))
        loss += weight * float(np.sum(np.diff(theta[1:]) ** 2))
        u = (place_design @ theta)[ranges.place] - shift
        if not derivatives:
            return loss - float(ranges.count @ np.log(terms.mass(u))), None, None
        log_mass, first, second = terms.derivatives(u)
        loss -= float(ranges.count @ log_mass)
        residual = (count * mu - total) / (1.0 + phi * mu)
        curvature = mu * (count + phi * total) / (1.0 + phi * mu) ** 2
        pull = ranges.per_place(ranges.count * first)
        gradient = design.T @ residual - place_design.T @ pull + penalty_hessian @ theta
        bend = ranges.per_place(np.maximum(-second, 0.0) * ranges.count)  # ln P is concave in u: against rounding
        hessian = (design * curvature[:, None]).T @ design + (place_design * bend[:, None]).T @ place_design
        return loss, gradient, hessian + penalty_hessian

    theta = start
    lower = np.concatenate([[-np.inf], np.zeros(segments)])
    upper = np.concatenate([[np.inf], np.full(segments, curve.MAX_SLOPE)])
    current, gradient, hessian = parts(theta, True)
    for _ in range(100):
        step = curve._bounded_newton_step(hessian, gradient, lower - theta, upper - theta)
        size = 1.0
        while size > 1e-6:
            trial = np.clip(theta + size * step, lower, upper)
            value = parts(trial, False)[0]
            if value <= current:
                break
            size /= 2
        else:
            break
        done = current - value <= 1e-9 * max(abs(current), 1.0)
        theta = trial
        current, gradient, hessian = parts(theta, True)
        if done:
            break
    return theta[0] - curve.KNOT_STEP * np.concatenate([[0.0], np.cumsum(theta[1:])])


def fit(x: np.ndarray, low: np.ndarray, high: np.ndarray, segments: int, seed: int) -> tuple[np.ndarray, float]:
    """(ln mean units at the knots, sigma) for rows of which some are ranges (low < high). The start: the
    Poisson fit with each range row at its middle (an open one at 1.5 times its min)."""
    ranged = low != high
    ranges = Ranges.of(x[ranged], low[ranged], high[ranged], segments)
    exact_x, exact_y = x[~ranged], low[~ranged]
    guess = np.where(np.isinf(high), 1.5 * low + 1.0, (low + high) / 2)
    telling = np.isinf(high) | (high <= 4 * low + 50)  # "fewer than 100,000" says little of where
    telling = telling if telling.sum() >= MIN_START_ROWS else np.ones(len(x), dtype=bool)
    knots = curve.fit_curve(x[telling], guess[telling], segments, dispersion=0.0)
    sigma = START_SIGMA  # a spread fitted to the guesses' curve would be far too wide: the curve first
    knots = fit_mean(exact_x, exact_y, ranges, segments, sigma=sigma, start=curve.knot_parameters(knots))
    for _ in range(MAX_ROUNDS):
        previous = sigma
        exact_mean, range_mean = curve.at(knots, exact_x, segments), curve.at(knots, ranges.x, segments)[ranges.place]
        sigma = fit_sigma(exact_y, exact_mean, ranges, range_mean, seed)
        if abs(sigma - previous) < SIGMA_TOLERANCE:  # the curve fitted for ``previous`` is this one's
            break
        knots = fit_mean(exact_x, exact_y, ranges, segments, sigma=sigma, start=curve.knot_parameters(knots))
    return knots, sigma
