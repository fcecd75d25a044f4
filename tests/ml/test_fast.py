"""The fast serving path equals the Pipeline it was read from."""

from __future__ import annotations

import numpy as np
import pytest

from ml.fast import Estimate, FastModel
from ml.pipeline import model_input


@pytest.fixture(scope="module")
def fast(trained_model) -> FastModel:
    return FastModel(trained_model.pipeline, version=7, residual_quantiles=trained_model.metadata["residual_quantiles"])


@pytest.fixture(scope="module")
def rows(fast):
    rng = np.random.default_rng(11)
    ranks = np.exp(rng.uniform(0, np.log(50_000_000), 100_000)).astype(np.int64) + 1
    categories = rng.choice(fast.categories, len(ranks))
    return ranks, categories


def test_bulk_equals_the_pipeline_on_100000_rows(trained_model, fast, rows):
    ranks, categories = rows
    expected = np.maximum(trained_model.pipeline.predict(model_input(categories, ranks)), 0.0)

    sales, _, _ = fast.estimate_arrays(ranks.astype(float), categories)
    log1p = fast.predict_log1p(ranks.astype(float), fast.codes(categories))

    np.testing.assert_allclose(np.maximum(np.expm1(log1p), 0.0), expected, rtol=1e-9, atol=1e-9)
    undecided = np.abs(expected - np.floor(expected) - 0.5) < 1e-6  # exactly half-way: either rounding is right
    assert np.array_equal(sales[~undecided], np.rint(expected[~undecided]).astype(np.int64))


def test_one_at_a_time_equals_bulk(fast, rows):
    ranks, categories = rows
    bulk = fast.estimate_many(ranks[:2000].tolist(), categories[:2000].tolist())

    assert [fast.estimate(int(r), str(c)) for r, c in zip(ranks[:2000], categories[:2000], strict=True)] == bulk


def test_interval_surrounds_the_estimate(fast, rows):
    ranks, categories = rows

    sales, low, high = fast.estimate_arrays(ranks.astype(float), categories)

    assert np.all(low <= sales) and np.all(sales <= high)
    assert np.any(low < high)


def test_estimate_is_a_named_triple_of_ints(fast):
    estimate = fast.estimate(1000, "books")

    assert isinstance(estimate, Estimate)
    assert all(isinstance(value, int) for value in estimate)
    assert fast.version == 7


def test_unknown_category_is_a_key_error(fast):
    with pytest.raises(KeyError):
        fast.estimate(10, "garden")
