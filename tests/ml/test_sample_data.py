"""The synthetic data generator and the CSV shipped with the project."""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
from django.core.management import call_command

from ml.sample_data import CSV_HEADER, CURVES, HEAD_RANK, SCALES, TAIL_RANK, generate, log_sales
from tests.helpers import SAMPLE_CSV


def test_the_shipped_csv_is_what_the_documented_command_makes(tmp_path):
    out = tmp_path / "sample.csv"

    call_command("make_sample_data", "--rows", "40000", "--seed", "42", "--out", str(out), stdout=io.StringIO())

    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(SAMPLE_CSV.read_bytes()).hexdigest()


def test_same_seed_same_rows_other_seed_other_rows():
    assert list(generate(500, seed=1)) == list(generate(500, seed=1))
    assert list(generate(500, seed=1)) != list(generate(500, seed=2))


def test_rows_cover_every_category_with_whole_ranks_and_counts():
    rows = list(generate(4000, seed=3))

    assert {(market, category) for category, _, _, market in rows} == {(m, c) for m in SCALES for c in CURVES}
    assert all(isinstance(rank, int) and rank >= 1 for _, rank, _, _ in rows)
    assert all(isinstance(sales, int) and sales >= 0 for _, _, sales, _ in rows)
    assert any(sales == 0 for _, _, sales, _ in rows), "the Poisson tail should have zero-sale months"


def test_each_marketplace_sells_its_scale_of_the_us_at_the_same_rank():
    rows = list(generate(40_000, seed=5))
    totals = {market: sum(sales for _, rank, sales, m in rows if m == market and rank < 10_000) for market in SCALES}
    counts = {market: sum(1 for _, rank, _, m in rows if m == market and rank < 10_000) for market in SCALES}

    for market in ("uk", "de"):
        ratio = (totals[market] / counts[market]) / (totals["us"] / counts["us"])
        assert ratio == pytest_approx_rel(SCALES[market]), (market, ratio)


def pytest_approx_rel(value):
    import pytest

    return pytest.approx(value, rel=0.25)


def test_curve_has_the_published_slopes_and_is_continuous():
    curve = CURVES["books"]
    mid = log_sales(np.array([1000.0, 10000.0]), curve)
    head = log_sales(np.array([10.0, 50.0]), curve)
    tail = log_sales(np.array([200_000.0, 400_000.0]), curve)

    assert (mid[0] - mid[1]) / math.log(10) == pytest_approx(0.87)
    assert (head[0] - head[1]) / math.log(5) == pytest_approx(0.5)
    assert (tail[0] - tail[1]) / math.log(2) == pytest_approx(0.87 + 0.25)
    for join in (HEAD_RANK, TAIL_RANK):
        below, above = log_sales(np.array([join - 1e-7, join + 1e-7]), curve)
        assert abs(below - above) < 1e-6


def pytest_approx(value):
    import pytest

    return pytest.approx(value, abs=1e-9)


def test_csv_header():
    assert SAMPLE_CSV.read_text().splitlines()[0] == ",".join(CSV_HEADER)
