"""The fast serving path equals the Pipeline it was read from."""

from __future__ import annotations

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
    expected = np.maximum(trained_model.pipeline.predict(model_input(categories, ranks)), 0.0)

    sales, _, _, _ = fast.estimate_arrays(ranks.astype(float), categories)
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
        narrow = {name: [1000, 100_000] for name in trained_model.metadata["rank_range"]}
        model = Predictor.from_metadata(
            trained_model.pipeline, version=1, metadata={**trained_model.metadata, "rank_range": narrow}
        )
        low_q, high_q = trained_model.metadata["residual_quantiles"]["books"]

        def log_width(rank):
            estimate = model.estimate(rank, "books")
            return np.log1p(estimate.high) - np.log1p(estimate.low)

        # Inside: the holdout interval. Beyond: wider by 2 x WIDENING x ln(distance), up to rounding.
        assert log_width(1000) == pytest.approx(high_q - low_q, abs=0.02)
        assert log_width(100) == pytest.approx(high_q - low_q + 2 * EXTRAPOLATION_WIDENING * np.log(10), abs=0.02)
        assert log_width(10) > log_width(100) > log_width(1000)
        assert model.estimate(100, "books").extrapolated and model.estimate(1_000_000, "books").extrapolated
