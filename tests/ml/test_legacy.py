"""Versions trained before issue 20 (a concave curve on a log1p target) still load and serve as they did."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import sklearn

from ml.data import read_training_csv
from ml.legacy import LegacyPredictor, build_legacy_pipeline
from ml.pipeline import model_input
from ml.predictor import Predictor
from ml.serving import model_registry
from ml.train import INTERVAL, TrainedModel
from tests.helpers import SAMPLE_CSV


@pytest.fixture(scope="module")
def legacy_model() -> TrainedModel:
    """A version as train() made it before issue 20: residual quantiles, no model card."""
    data = read_training_csv(SAMPLE_CSV, progress=False)
    X = model_input(data.categories, data.ranks)
    pipeline = build_legacy_pipeline().fit(X, data.sales)
    names = [str(name) for name in pipeline.regressor_.named_steps["features"].categories_]
    residuals = np.log1p(data.sales) - pipeline.regressor_.predict(X)
    metadata = {
        "created": datetime.now(UTC),
        "sklearn_version": sklearn.__version__,
        "training_data": {"source": "sample_sales.csv", "sha256": data.sha256, "rows": data.rows},
        "categories": names,
        "metrics": {"overall": {"rows": 0}, "per_category": {}},
        "interval": list(INTERVAL),
        "residual_quantiles": {
            name: [float(q) for q in np.quantile(residuals[data.categories == name], INTERVAL)] for name in names
        },
        "rank_range": {
            name: [int(data.ranks[data.categories == name].min()), int(data.ranks[data.categories == name].max())]
            for name in names
        },
    }
    return TrainedModel(pipeline=pipeline, metadata=metadata)


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
