"""The fast serving path equals the Pipeline it was read from."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from ml.pipeline import model_input
from ml.predictor import Estimate, Predictor


@pytest.fixture(scope="module")
def fast(trained_model) -> Predictor:
    return Predictor.from_metadata(trained_model.pipeline, version=7, metadata=trained_model.metadata)


@pytest.fixture(scope="module")
def rows(fast):
    rng = np.random.default_rng(11)
    ranks = np.exp(rng.uniform(0, np.log(50_000_000), 100_000)).astype(np.int64) + 1
    categories = rng.choice(fast.categories, len(ranks))
    return ranks, categories


def test_bulk_equals_the_pipeline_on_100000_rows(trained_model, fast, rows):
    ranks, categories = rows
    features, model = (trained_model.pipeline.named_steps[step] for step in ("features", "curve"))
    low, median, high, extrapolated = model.predict_quantiles(features.transform(model_input(categories, ranks)))

    sales, fast_low, fast_high, fast_extrapolated = fast.estimate_arrays(ranks.astype(float), categories)

    assert np.array_equal(sales, median) and np.array_equal(fast_low, low) and np.array_equal(fast_high, high)
    assert np.array_equal(fast_extrapolated, extrapolated)
    assert np.array_equal(trained_model.pipeline.predict(model_input(categories, ranks)), median)


def test_the_quantile_grid_equals_a_search_of_the_thresholds(trained_model):
    """The grid is a faster way to count the thresholds below each rate, not an approximation of it."""
    model = trained_model.pipeline.named_steps["curve"]
    rates = np.random.default_rng(3).uniform(-6.0, 8.0, 200_000)
    for code in range(len(model.sigma_)):
        counted = model.table_.quantiles(rates, np.zeros(len(rates)), np.full(len(rates), code))
        for index in range(3):
            thresholds = model.thresholds_[code, index]
            searched = np.searchsorted(thresholds, rates, side="right")
            in_table = searched < len(thresholds)
            assert in_table.mean() > 0.3
            assert np.array_equal(counted[index][in_table], searched[in_table])


def test_one_at_a_time_equals_bulk(fast, rows):
    ranks, categories = rows
    bulk = fast.estimate_many(ranks[:2000].tolist(), categories[:2000].tolist())

    assert [fast.estimate(int(r), str(c)) for r, c in zip(ranks[:2000], categories[:2000], strict=True)] == bulk


def test_interval_surrounds_the_estimate(fast, rows):
    ranks, categories = rows

    sales, low, high, _ = fast.estimate_arrays(ranks.astype(float), categories)

    assert np.all(low <= sales) and np.all(sales <= high)
    assert np.any(low < high)


def test_estimate_is_three_ints_and_a_flag(fast):
    estimate = fast.estimate(1000, "books")

    assert isinstance(estimate, Estimate)
    assert all(isinstance(value, int) for value in estimate[:3])
    assert estimate.extrapolated is False
    assert fast.version == 7


class TestExtrapolation:
    @pytest.mark.parametrize("category", ["books", "toys_games", "clothing"])
    def test_flagged_exactly_outside_the_trained_range(self, fast, trained_model, category):
        first, last = trained_model.metadata["rank_range"][category]

        below = [first - 1] if first > 1 else []  # rank 1 is the lowest there is

        flags = [fast.estimate(rank, category).extrapolated for rank in [*below, first, last, last + 1]]

        assert flags == [True] * len(below) + [False, False, True]

    def test_bulk_flags_agree_with_one_at_a_time(self, fast, trained_model):
        first, last = trained_model.metadata["rank_range"]["books"]
        ranks = np.array([max(first - 1, 1), first, (first + last) // 2, last, last + 1, last * 100], dtype=float)

        *_, flags = fast.estimate_arrays(ranks, ["books"] * len(ranks))

        assert flags.tolist() == [fast.estimate(int(r), "books").extrapolated for r in ranks]
        assert flags.tolist()[1:] == [False, False, False, True, True]

    def test_the_interval_widens_with_the_distance_beyond_the_range(self, trained_model):
        from ml.predictor import EXTRAPOLATION_WIDENING

        # A model that saw books ranks 1,000 to 100,000 only: sales stay large enough that rounding
        # does not blur the widths on either side.
        pipeline = copy.deepcopy(trained_model.pipeline)
        books = list(pipeline.named_steps["features"].categories_).index("books")
        pipeline.named_steps["curve"].log_range_[books] = np.log([1000, 100_000])
        model = Predictor.from_metadata(pipeline, version=1, metadata=trained_model.metadata)

        def log_width(rank):
            estimate = model.estimate(rank, "books")
            return np.log(estimate.high) - np.log(estimate.low)

        # Beyond the range: wider by 2 x WIDENING x ln(distance), up to rounding.
        assert log_width(100) == pytest.approx(log_width(1000) + 2 * EXTRAPOLATION_WIDENING * np.log(10), abs=0.03)
        assert log_width(10) > log_width(100) > log_width(1000)
        assert model.estimate(100, "books").extrapolated and model.estimate(1_000_000, "books").extrapolated
        assert not model.estimate(1000, "books").extrapolated
