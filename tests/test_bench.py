"""The benchmark harness's own arithmetic (the runs themselves are `make bench`, not tests)."""

from __future__ import annotations

import pytest

from bench.harness import page_one_beyond_the_store


def figures(page_small, page_large, database_small, database_large) -> dict:
    return {
        "list_latency_small_ms": page_small,
        "list_latency_large_ms": page_large,
        "list_database_small_ms": database_small,
        "list_database_large_ms": database_large,
    }


def test_the_databases_own_growth_is_taken_out_of_page_one():
    # 4.5 ms -> 11.3 ms, while the database alone went 3.1 ms -> 8.7 ms: 5.7 ms of it is ours
    assert page_one_beyond_the_store(figures(4.5, 11.3, 3.1, 8.7)) == pytest.approx(5.7)


def test_a_database_that_got_faster_credits_nothing():
    assert page_one_beyond_the_store(figures(4.5, 11.3, 3.1, 2.0)) == pytest.approx(11.3)


def test_growth_of_our_own_still_counts():
    # The database did not grow at all: every millisecond of growth is the service's
    assert page_one_beyond_the_store(figures(4.5, 9.5, 3.0, 3.0)) == pytest.approx(9.5)
