"""What the API needs from a sales model (``ml.fast.FastModel`` is the implementation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .fast import Estimate


class Estimator(Protocol):
    version: int
    categories: tuple[str, ...]

    def estimate(self, rank: int, category: str) -> Estimate: ...

    def estimate_many(self, ranks: Sequence[int], categories: Sequence[str]) -> list[Estimate]: ...
