"""What the API needs from a sales model, and the placeholder that stands in until one is trained.

PLACEHOLDER (replaced by issue 3, "The sales model"): ``LiteratureCurveEstimator`` is not trained on
anything. It evaluates the published power law ln(monthly sales) = a - b ln(rank) with per-category
parameters, so that the REST resource can be built and tested before the real model exists. Every
estimate it makes is stored with ``model_version`` = ``PLACEHOLDER_VERSION`` so it can be found and
re-estimated later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

PLACEHOLDER_VERSION = "placeholder-literature-curve"

# (a, b) of ln(monthly sales) = a - b ln(rank), mid-range ranks 100-100,000 (issue 3's table,
# after Brynjolfsson, Hu & Smith 2003). Flatter (slope 0.5) above rank 100, b + 0.25 beyond 100,000.
LITERATURE_CURVES: dict[str, tuple[float, float]] = {
    "books": (12.32, 0.87),
    "home_kitchen": (12.56, 0.85),
    "toys_games": (12.49, 0.85),
    "electronics": (12.76, 0.88),
    "beauty": (12.49, 0.85),
    "sports_outdoors": (12.35, 0.85),
    "clothing": (12.18, 0.85),
    "pet_supplies": (12.56, 0.88),
}
HEAD_RANK = 100
TAIL_RANK = 100_000
HEAD_SLOPE = 0.5
TAIL_EXTRA_SLOPE = 0.25


class Estimator(Protocol):
    """The interface the API calls; the trained model implements it too."""

    version: str
    categories: tuple[str, ...]

    def estimate(self, rank: int, category: str) -> int: ...

    def estimate_many(self, ranks: Sequence[int], categories: Sequence[str]) -> list[int]: ...


def literature_log_sales(rank: float, a: float, b: float) -> float:
    """ln(monthly sales) on the piecewise power law, continuous at both joins."""
    ln_rank = math.log(rank)
    ln_head, ln_tail = math.log(HEAD_RANK), math.log(TAIL_RANK)
    if rank < HEAD_RANK:
        return a - b * ln_head - HEAD_SLOPE * (ln_rank - ln_head)
    if rank > TAIL_RANK:
        return a - b * ln_tail - (b + TAIL_EXTRA_SLOPE) * (ln_rank - ln_tail)
    return a - b * ln_rank


class LiteratureCurveEstimator:
    """PLACEHOLDER estimator (see module docstring)."""

    version = PLACEHOLDER_VERSION
    categories = tuple(sorted(LITERATURE_CURVES))

    def estimate(self, rank: int, category: str) -> int:
        a, b = LITERATURE_CURVES[category]
        return int(round(math.exp(literature_log_sales(rank, a, b))))

    def estimate_many(self, ranks: Sequence[int], categories: Sequence[str]) -> list[int]:
        return [self.estimate(rank, category) for rank, category in zip(ranks, categories, strict=True)]
