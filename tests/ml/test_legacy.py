"""Versions trained before issue 20 (a concave curve on a log1p target) still load and serve as they did."""

from __future__ import annotations

import numpy as np
import pytest

from ml.legacy import LegacyPredictor
from ml.pipeline import model_input
from ml.predictor import Predictor
from ml.serving import model_registry
from ml.train import TrainedModel
from tests.helpers import legacy_trained_model


@pytest.fixture(scope="module")
def legacy_model() -> TrainedModel:
    return legacy_trained_model()


def test_a_stored_version_without_a_card_is_served_by_the_legacy_predictor(mongo_db, legacy_model, trained_model):
    registry = model_registry()
    old = registry.save(legacy_model)["version"]
    new = registry.save(trained_model)["version"]

    served_old, served_new = registry.load_predictor(old), registry.load_predictor(new)

    assert isinstance(served_old, LegacyPredictor) and isinstance(served_new, Predictor)
    ranks = np.array([5, 1234, 90_000])
    expected = np.rint(np.maximum(legacy_model.pipeline.predict(model_input(["books"] * 3, ranks)), 0))
    assert [served_old.estimate(int(r), "books").sales for r in ranks] == expected.astype(int).tolist()
    low, high = zip(*((e.low, e.high) for e in served_old.estimate_many(ranks.tolist(), ["books"] * 3)), strict=True)
    assert all(lo <= s <= hi for lo, s, hi in zip(low, expected, high, strict=True))
