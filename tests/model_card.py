"""Model card data of the contract's shape (docs/model-card.md), for tests of what shows it, until every
trained version records its own."""

from __future__ import annotations

from typing import Any

from ml.train import TrainedModel

BANDS = {"head": [1, 299], "middle": [300, 30000], "tail": [30001, None]}
DECADES = [(10**power, 10 ** (power + 1)) for power in range(6)]


def model_card(categories, *, training_rows: int = 1600, holdout_rows: int = 400) -> dict[str, Any]:
    """A card for these categories: each gets its own, recognisable figures (index i: rows + 10 i)."""
    per_category = {}
    for index, name in enumerate(categories):
        per_category[name] = {
            "training_rows": training_rows + 10 * index,
            "holdout_rows": holdout_rows + index,
            "slope_by_decade": [
                {"from_rank": low, "to_rank": high, "slope": round(0.5 + 0.1 * decade + 0.01 * index, 3)}
                for decade, (low, high) in enumerate(DECADES)
            ],
            "coverage": {
                "overall": round(0.78 + 0.005 * index, 3),
                "head": round(0.75 + 0.01 * index, 3),
                "middle": 0.8,
                "tail": None if index == 1 else 0.82,  # the second category: no holdout rows in the tail
            },
            "median_error": round(0.2 + 0.01 * index, 3),
            "sigma": 0.45,
        }
    return {
        "statistic": "median",
        "interval": [0.1, 0.9],
        "bands": BANDS,
        "coverage": {"overall": 0.801, "head": 0.79, "middle": 0.8, "tail": 0.81},
        "per_category": per_category,
    }


def with_card(trained: TrainedModel, card: dict[str, Any] | None = None) -> TrainedModel:
    """The same model, its metadata holding a card (this helper's unless one is given)."""
    card = card if card is not None else trained.metadata.get("model_card")
    card = card or model_card(trained.metadata["categories"])
    return TrainedModel(trained.pipeline, {**trained.metadata, "model_card": card})
