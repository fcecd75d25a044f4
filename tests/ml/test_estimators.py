"""The placeholder estimator (issue 3 replaces it): the interface, and the literature curve's shape."""

from __future__ import annotations

import math

import pytest

from ml.estimators import HEAD_RANK, LITERATURE_CURVES, PLACEHOLDER_VERSION, TAIL_RANK, literature_log_sales
from ml.serving import get_estimator


def test_serving_answers_the_clearly_named_placeholder():
    assert get_estimator().version == PLACEHOLDER_VERSION == "placeholder-literature-curve"
    assert set(get_estimator().categories) == set(LITERATURE_CURVES)


@pytest.mark.parametrize("category", sorted(LITERATURE_CURVES))
def test_sales_never_rise_with_rank(category):
    ranks = [1, 2, 10, 99, 100, 101, 1000, 99_999, 100_000, 100_001, 10**6, 10**8]
    sales = [get_estimator().estimate(rank, category) for rank in ranks]

    assert sales == sorted(sales, reverse=True)
    assert sales[-1] >= 0


@pytest.mark.parametrize("join", [HEAD_RANK, TAIL_RANK])
def test_the_curve_is_continuous_at_the_joins(join):
    a, b = LITERATURE_CURVES["books"]

    assert literature_log_sales(join - 1e-6, a, b) == pytest.approx(literature_log_sales(join + 1e-6, a, b), abs=1e-5)


def test_mid_range_matches_the_published_power_law():
    a, b = LITERATURE_CURVES["books"]

    assert get_estimator().estimate(1000, "books") == round(math.exp(a - b * math.log(1000)))


def test_estimate_many_equals_one_at_a_time():
    ranks, categories = [1, 50, 5000, 500_000], ["books", "beauty", "clothing", "electronics"]

    assert get_estimator().estimate_many(ranks, categories) == [
        get_estimator().estimate(rank, category) for rank, category in zip(ranks, categories, strict=True)
    ]
