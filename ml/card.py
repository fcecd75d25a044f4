"""The model card: per category, the fitted slope by decade of rank, interval coverage by band, training rows.

Computed at training on the holdout; stored in the version's metadata as ``model_card``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Rank bands, inclusive; the tail has no upper end.
BANDS: dict[str, tuple[int, int | None]] = {"head": (1, 299), "middle": (300, 30_000), "tail": (30_001, None)}
DECADES = tuple((10**power, 10 ** (power + 1)) for power in range(6))  # 1-10 ... 100,000-1,000,000


def band_masks(ranks: np.ndarray) -> dict[str, np.ndarray]:
    return {"head": ranks < 300, "middle": (ranks >= 300) & (ranks <= 30_000), "tail": ranks > 30_000}


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray, ranks: np.ndarray) -> dict[str, float | None]:
    """Share of ``actual`` within [low, high], overall and per band (None where a band has no rows)."""
    inside = (actual >= low) & (actual <= high)
    shares: dict[str, float | None] = {"overall": float(inside.mean()) if len(inside) else None}
    for name, mask in band_masks(ranks).items():
        shares[name] = float(inside[mask].mean()) if mask.any() else None
    return shares


def slopes_by_decade(log_rate_at) -> list[dict[str, Any]]:
    """``log_rate_at(ranks)``: ln median sales rate; the slope is its fall per unit of ln(rank)."""
    ends = np.array([end for decade in DECADES for end in decade], dtype=np.float64)
    values = log_rate_at(ends)
    return [
        {"from_rank": low, "to_rank": high, "slope": round(float(values[2 * i] - values[2 * i + 1]) / math.log(10), 4)}
        for i, (low, high) in enumerate(DECADES)
    ]
