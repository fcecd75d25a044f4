"""A rank history's weight in time: the month's sales rate is the time-weighted mean of the rate at each sample.

Between two samples the rate is bridged linearly (the trapezoid rule), so a gap is bridged by its two
neighbours; `gaps` names the intervals longer than GAP_SECONDS, which an answer reports.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DAYS_PER_MONTH = 365.25 / 12  # a model's curve is units a month; a daily rate is that over this
MAX_HISTORY_DAYS = 90  # what sellers' tools chart, and what a POST may cover
MAX_HISTORY_POINTS = 2_160  # hourly for MAX_HISTORY_DAYS
GAP_SECONDS = 2 * 86_400  # two days without a sample: a gap (daily histories miss a day at most)


def time_weights(seconds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each sample's share of the history's time (strictly increasing ``seconds``; they sum to 1)."""
    times = np.asarray(seconds, dtype=np.float64)
    if len(times) == 1:
        return np.ones(1)
    step = np.diff(times)
    weights = np.zeros(len(times))
    weights[:-1] += step / 2
    weights[1:] += step / 2
    return weights / (times[-1] - times[0])


def gaps(seconds: Sequence[float] | np.ndarray) -> list[tuple[int, int]]:
    """The (i, i + 1) index pairs of consecutive samples more than GAP_SECONDS apart."""
    times = np.asarray(seconds, dtype=np.float64)
    return [(int(i), int(i) + 1) for i in np.flatnonzero(np.diff(times) > GAP_SECONDS)]
