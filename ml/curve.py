"""The fit's mathematics: a non-increasing curve in log-log per category, and the quantiles of next month's units.

More: docs/model.md (what is fitted and why) and docs/architecture.md, "ml/curve.py".
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.optimize import lsq_linear, minimize_scalar
from scipy.special import gammaincc, gammaln, ndtr

KNOT_STEP = math.log(10) / 4  # a knot every quarter decade of rank
PER_KNOT = 1.0 / KNOT_STEP
SMOOTHING = 0.02  # the penalty on a change of slope at a knot, per row of the category
MAX_SLOPE = 10.0  # a sales rate that falls faster than rank^-10 is not a curve but a data error
TABLE_COUNTS = 400  # units a month up to which the quantiles are exact; above, the log-normal approximation
MAX_LOG_UNITS = 40.0  # e^40 units a month: an int64 holds it; nothing real comes near
MAX_UNITS = 1e17  # the widest an interval's end may be, in units
BINS_PER_SEGMENT = 64  # the fit groups rows this finely in ln(rank): 0.9% of a rank wide
MAX_SIGMA = 3.0  # the widest log-normal spread fitted: a rate 20 times the median is 1 sigma out
SIGMA_ROWS = 8_000  # rows per category that the spread is fitted on (a seeded sample beyond that)
MIN_CELL = 2.0**-14  # the quantile grid's finest cell, in ln rate
NODES = 24  # Gauss-Hermite nodes over the log-normal spread (a CDF to 1e-5: tests/ml/test_curve.py)


def _nodes(count: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite.hermgauss(count)
    return x * math.sqrt(2.0), w / math.sqrt(math.pi)  # E[h(e)] = sum w h(x) for e ~ N(0, 1)


NODES_X, NODES_W = _nodes(NODES)
RAW_X, RAW_W = np.polynomial.hermite.hermgauss(NODES)  # for the centred integrals
PMF_X, PMF_W = np.polynomial.hermite.hermgauss(16)  # a likelihood, centred on its mode: 16 nodes are plenty
# The three quantiles of next month's units that an estimate reports: (name, probability, rule).
QUANTILES = (("low", 0.10, "below"), ("median", 0.50, "median"), ("high", 0.90, "above"))
Z = {"low": -1.2815515655446004, "median": 0.0, "high": 1.2815515655446004}


def segments_for(max_log_rank: float) -> int:
    return max(1, math.ceil(max_log_rank / KNOT_STEP - 1e-9))


def locate(x: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Each ln(rank)'s segment and its place in it (beyond the last knot: the last segment, extended)."""
    t = x * PER_KNOT
    seg = np.minimum(t.astype(np.int64), segments - 1)
    return seg, t - seg


def at(knots: np.ndarray, x: np.ndarray, segments: int) -> np.ndarray:
    """The curve given by its knots, at each ln(rank)."""
    seg, frac = locate(x, segments)
    return knots[seg] + (knots[seg + 1] - knots[seg]) * frac


def bin_of(x: np.ndarray, segments: int) -> np.ndarray:
    """Each ln(rank)'s bin: BINS_PER_SEGMENT to a segment, the rows a fit groups together."""
    seg, frac = locate(x, segments)
    return seg * BINS_PER_SEGMENT + np.minimum((frac * BINS_PER_SEGMENT).astype(np.int64), BINS_PER_SEGMENT - 1)


def fit_curve(x: np.ndarray, y: np.ndarray, segments: int, *, dispersion: float, start=None) -> np.ndarray:
    """ln(mean units) at the knots: the non-increasing curve that maximises the negative-binomial likelihood
    (dispersion 0: Poisson) less a smoothness penalty. Convex: projected Newton finds its one optimum."""
    design, total, count = _binned(x, y, segments)
    phi = dispersion
    weight = SMOOTHING * len(y)
    change = np.diff(np.eye(segments), axis=0)  # (segments - 1, segments): slope changes at the knots
    penalty_hessian = np.zeros((segments + 1, segments + 1))
    penalty_hessian[1:, 1:] = 2 * weight * change.T @ change

    def loss(theta: np.ndarray) -> float:
        g = design @ theta
        mu = np.exp(np.minimum(g, 700.0))
        data = (
            np.sum((total + count / phi) * np.log1p(phi * mu) - total * g)
            if phi > 0
            else np.sum(count * mu - total * g)
        )
        return float(data) + weight * float(np.sum(np.diff(theta[1:]) ** 2))

    theta = _start(x, y, segments) if start is None else start
    lower = np.concatenate([[-np.inf], np.zeros(segments)])
    upper = np.concatenate([[np.inf], np.full(segments, MAX_SLOPE)])
    current = loss(theta)
    for _ in range(100):
        g = design @ theta
        mu = np.exp(np.minimum(g, 700.0))
        residual = (count * mu - total) / (1.0 + phi * mu)
        curvature = mu * (count + phi * total) / (1.0 + phi * mu) ** 2
        gradient = design.T @ residual + penalty_hessian @ theta
        hessian = (design * curvature[:, None]).T @ design + penalty_hessian
        step = _bounded_newton_step(hessian, gradient, lower - theta, upper - theta)
        size = 1.0
        while size > 1e-6:
            trial = np.clip(theta + size * step, lower, upper)
            value = loss(trial)
            if value <= current:
                break
            size /= 2
        else:
            break
        done = current - value <= 1e-12 * max(abs(current), 1.0)
        theta, current = trial, value
        if done:
            break
    return theta[0] - KNOT_STEP * np.concatenate([[0.0], np.cumsum(theta[1:])])


def knot_parameters(knots: np.ndarray) -> np.ndarray:
    """The inverse of fit_curve's result: [ln mean at rank 1, slope of each segment]."""
    return np.concatenate([[knots[0]], -np.diff(knots) / KNOT_STEP])


def _bounded_newton_step(hessian, gradient, lower, upper) -> np.ndarray:
    """argmin 1/2 d'Hd + g'd with lower <= d <= upper, as a bounded least-squares problem."""
    factor = np.linalg.cholesky(hessian + 1e-9 * np.trace(hessian) / len(hessian) * np.eye(len(hessian))).T
    target = -np.linalg.solve(factor.T, gradient)
    return lsq_linear(factor, target, bounds=(lower, upper), method="bvls").x


def _binned(x: np.ndarray, y: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by ln(rank) into BINS_PER_SEGMENT bins per segment: the design (one row per bin, at its
    rows' mean place), the units and the rows in each. The fit's cost is then the bins', not the rows'."""
    frac = locate(x, segments)[1]
    bins = bin_of(x, segments)
    used, inverse, count = np.unique(bins, return_inverse=True, return_counts=True)
    total = np.bincount(inverse, weights=y)
    place = np.bincount(inverse, weights=frac) / count
    return design_at(used // BINS_PER_SEGMENT, place, segments), total, count.astype(np.float64)


def design_at(seg: np.ndarray, place: np.ndarray, segments: int) -> np.ndarray:
    """Rows of the linear map from [ln mean at rank 1, slope of each segment] to ln mean at (seg, place)."""
    design = np.zeros((len(seg), segments + 1))
    design[:, 0] = 1.0
    columns = np.arange(segments)[None, :]
    design[:, 1:] = -KNOT_STEP * np.where(
        columns < seg[:, None], 1.0, np.where(columns == seg[:, None], place[:, None], 0.0)
    )
    return design


def _start(x: np.ndarray, y: np.ndarray, segments: int) -> np.ndarray:
    slope = _start_slope(x, y)
    intercept = float(np.mean(np.log(y + 0.5) + slope * x))
    return np.concatenate([[intercept], np.full(segments, slope)])


def _start_slope(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0:
        return 0.5
    slope = -np.polyfit(x, np.log(y + 0.5), 1)[0]
    return float(np.clip(slope, 0.01, MAX_SLOPE))


def moment_dispersion(y: np.ndarray, log_mean: np.ndarray) -> float:
    """A quick negative-binomial dispersion (Var = mean + phi mean^2) from the Poisson fit's residuals:
    what the second fit weighs rows by. The spread itself is fitted afterwards by likelihood."""
    mean = np.exp(np.minimum(log_mean, 700.0))
    phi = float(np.sum((y - mean) ** 2 - y) / max(float(np.sum(mean**2)), 1e-12))
    return min(max(phi, 0.0), math.expm1(MAX_SIGMA**2))


def fit_sigma(y: np.ndarray, log_mean: np.ndarray, seed: int) -> float:
    """The log-normal spread of the sales rate around the curve (Poisson-lognormal maximum likelihood)."""
    if len(y) > SIGMA_ROWS:
        rows = np.random.default_rng(seed).choice(len(y), SIGMA_ROWS, replace=False)
        y, log_mean = y[rows], log_mean[rows]
    constant = gammaln(y + 1.0)

    def negative_log_likelihood(sigma: float) -> float:
        return -float(np.sum(_log_pmf(y, log_mean - sigma * sigma / 2, sigma) - constant))

    return float(minimize_scalar(negative_log_likelihood, bounds=(1e-3, MAX_SIGMA), method="bounded").x)


def _log_pmf(y: np.ndarray, u: np.ndarray, sigma: float) -> np.ndarray:
    """ln P(units = y) + ln y!, the rate exp(u + sigma e): Gauss-Hermite centred on each row's posterior mode
    (a large count's likelihood is far narrower in e than the prior, and fixed nodes miss it)."""
    e = np.clip((np.log(y + 0.5) - u) * sigma / (sigma * sigma + 1.0 / (y + 0.5)), -8.0, 8.0)
    for _ in range(6):  # Newton on the concave h(e) = y (u + sigma e) - exp(u + sigma e) - e^2 / 2
        rate = np.exp(np.minimum(u + sigma * e, 700.0))
        e = np.clip(e + (sigma * (y - rate) - e) / (sigma * sigma * rate + 1.0), -12.0, 12.0)
    rate = np.exp(np.minimum(u + sigma * e, 700.0))
    scale = 1.0 / np.sqrt(sigma * sigma * rate + 1.0)
    points = e[:, None] + math.sqrt(2.0) * scale[:, None] * PMF_X[None, :]
    log_rate = u[:, None] + sigma * points
    h = y[:, None] * log_rate - np.exp(np.minimum(log_rate, 700.0)) - points * points / 2
    terms = h + (PMF_X * PMF_X + np.log(PMF_W))[None, :]
    peak = terms.max(axis=1)
    total = np.log(np.exp(terms - peak[:, None]).sum(axis=1)) + peak
    return total + np.log(math.sqrt(2.0) * scale) - 0.5 * math.log(2 * math.pi)


class _Cdf:
    """P(units <= k), for fixed k and sigma, as a function of the ln median rate (one per row of k).

    P(Poisson(r) <= k) = P(Gamma(k + 1) > r): integrate over e where the spread is the narrower of the
    two (sigma sqrt(k + 1) <= 1), else over ln Gamma(k + 1), centred on its mode. Both integrands are
    then smooth at the nodes' scale; the nodes depend on k alone, so they are set up once."""

    def __init__(self, k: np.ndarray, sigma: float):
        self.k, self.sigma = np.asarray(k, dtype=np.float64), sigma
        self.a = np.maximum(self.k, 0.0) + 1.0
        self.narrow = sigma * np.sqrt(self.a) <= 1.0
        aw = self.a[~self.narrow][:, None]
        scale = 1.0 / np.sqrt(aw)
        self.t = np.log(aw) + math.sqrt(2.0) * scale * RAW_X[None, :]
        log_weight = np.log(RAW_W * math.sqrt(2.0)) + RAW_X**2 + np.log(scale) + aw * self.t - np.exp(self.t)
        self.weight = np.exp(log_weight - gammaln(aw))

    def __call__(self, log_rate: np.ndarray) -> np.ndarray:
        log_rate = np.broadcast_to(log_rate, self.k.shape)
        out = np.zeros(self.k.shape)
        if self.narrow.any():
            rates = np.exp(np.minimum(log_rate[self.narrow][:, None] + self.sigma * NODES_X[None, :], 700.0))
            out[self.narrow] = gammaincc(self.a[self.narrow][:, None], rates) @ NODES_W
        if not self.narrow.all():
            spread = ndtr((self.t - log_rate[~self.narrow][:, None]) / self.sigma)
            out[~self.narrow] = np.sum(self.weight * spread, axis=1)
        return np.where(self.k < 0, 0.0, np.clip(out, 0.0, 1.0))


def _cdf(k: np.ndarray, log_rate: np.ndarray, sigma: float) -> np.ndarray:
    """P(units <= k) when the rate is exp(log_rate) times a log-normal of median 1 and spread sigma."""
    return _Cdf(k, sigma)(log_rate)


@functools.lru_cache(maxsize=64)  # a retrain on the same data in this process meets the same sigma
def quantile_thresholds(sigma: float) -> np.ndarray:
    """(3, TABLE_COUNTS) ln median rates: quantile q is at least k + 1 from ``thresholds[q, k]`` on.
    Read-only: it is cached, so callers copy it (assigning it into an array does)."""
    k = np.arange(1, TABLE_COUNTS + 1, dtype=np.float64)
    before, below, at = _Cdf(k - 2, sigma), _Cdf(k - 1, sigma), _Cdf(k, sigma)
    conditions = {  # positive while the quantile is still below k at this median rate
        "median": lambda u, p: below(u) - p,  # the smallest k with P(units <= k) >= p
        "below": lambda u, p: (before(u) + below(u)) / 2 - p,  # the k whose P(units < k) is nearest p
        "above": lambda u, p: (below(u) + at(u)) / 2 - p,  # the k whose P(units <= k) is nearest p
    }
    table = np.empty((len(QUANTILES), TABLE_COUNTS))
    for index, (_, p, rule) in enumerate(QUANTILES):
        low, high = np.full(TABLE_COUNTS, -40.0), np.full(TABLE_COUNTS, 20.0)
        for _ in range(36):  # to 1e-9 in ln rate
            mid = (low + high) / 2
            above = conditions[rule](mid, p) > 0  # the threshold is higher
            low, high = np.where(above, mid, low), np.where(above, high, mid)
        table[index] = np.maximum.accumulate(high)
    table.flags.writeable = False
    return table


class QuantileTable:
    """Thresholds read through a grid in ln rate: one multiply, two lookups and a compare per quantile.

    A grid cell holds the count of thresholds below it and the next one above; cells are narrower than
    the closest two thresholds (down to MIN_CELL), so the count equals a search of the thresholds."""

    def __init__(self, thresholds: np.ndarray, sigma: np.ndarray):
        flat = thresholds.reshape(-1, thresholds.shape[-1])  # (categories x quantiles, TABLE_COUNTS)
        gaps = np.diff(flat, axis=1)
        closest = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
        self.per_cell = 2.0 ** min(max(math.ceil(-math.log2(closest)), 4), -math.log2(MIN_CELL))
        self.start = math.floor(float(flat.min())) - 1.0
        self.end = math.ceil(float(flat.max())) + 1.0
        self.cells = int((self.end - self.start) * self.per_cell) + 1
        edges = self.start + np.arange(self.cells) / self.per_cell
        self.below = np.stack([np.searchsorted(row, edges, side="right") for row in flat]).astype(np.int64)
        padded = np.concatenate([flat, np.full((len(flat), 1), np.inf)], axis=1)
        self.next = np.take_along_axis(padded, self.below, axis=1)
        self.below, self.next = self.below.ravel(), self.next.ravel()
        self.sigma2_of_code = np.asarray(sigma, dtype=np.float64) ** 2  # for the approximation above the table

    def quantiles(self, log_rate: np.ndarray, widen: np.ndarray, codes: np.ndarray) -> list[np.ndarray]:
        """[low, median, high] units per row: the median at ``log_rate``, the interval's ends at it -/+ ``widen``.

        Above TABLE_COUNTS, the log-normal approximation: exp(rate -/+ widen -/+ z spread), the spread taken
        at the median rate. It is computed, elementwise, for the rows whose high end runs past the table:
        the one definition the Pipeline and the serving path share."""
        row = codes * (len(QUANTILES) * self.cells)
        out = []
        for index, value in enumerate((log_rate - widen, log_rate, log_rate + widen)):
            cell = np.clip((value - self.start) * self.per_cell, 0, self.cells - 1).astype(np.int64)
            where = row + (cell + index * self.cells)
            out.append(self.below[where] + (value >= self.next[where]))
        far = np.flatnonzero(out[2] >= TABLE_COUNTS)
        if len(far):
            rate = np.exp(np.clip(log_rate[far], -MAX_LOG_UNITS, MAX_LOG_UNITS))
            outer = np.exp(widen[far] + Z["high"] * np.sqrt(self.sigma2_of_code[codes[far]] + 1.0 / rate))
            for counts, approximate in zip(out, (rate / outer, rate, rate * outer), strict=True):
                units = np.rint(np.clip(approximate, TABLE_COUNTS, MAX_UNITS)).astype(np.int64)
                counts[far] = np.where(counts[far] < TABLE_COUNTS, counts[far], units)
        return out
