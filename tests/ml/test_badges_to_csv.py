"""manage.py badges_to_csv: a spreadsheet's "bought in past month" badges become training ranges."""

from __future__ import annotations

import io
import math

import pytest
from django.core.management import CommandError, call_command

from ml.badges import BadgeError, badge_of, badge_range
from ml.data import read_training_csv


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (0, 49)),
        ("  ", (0, 49)),
        ("-", (0, 49)),
        ("50+", (50, 99)),
        ("50+ bought in past month", (50, 99)),
        ("100+ bought in past month", (100, 199)),
        ("900+", (900, 999)),
        ("1K+ bought in past month", (1_000, 1_999)),
        ("1k+", (1_000, 1_999)),
        ("1,000+", (1_000, 1_999)),
        ("1000+", (1_000, 1_999)),
        ("1000", (1_000, 1_999)),  # a number alone, as some exports give the badge
        ("9K+", (9_000, 9_999)),
        ("10K+ bought in past month", (10_000, 19_999)),
        ("90K+", (90_000, 99_999)),
        ("100K+", (100_000, math.inf)),  # the top of the ladder is not known: open
        ("1M+", (1_000_000, math.inf)),
        ("2.5K+", (2_500, math.inf)),  # off the ladder: its next step is not known
        ("150+", (150, math.inf)),
    ],
)
def test_a_badge_is_its_step_up_to_the_next(text, expected):
    assert badge_range(text) == expected


@pytest.mark.parametrize("text", ["lots", "K+", "1K++", "20+", "0+", "1.5+", "bought in past month", "1,00+"])
def test_what_is_not_a_badge_is_refused_saying_what_one_looks_like(text):
    with pytest.raises(BadgeError, match="is not a badge"):
        badge_range(text)


def test_the_badge_a_month_shows_reads_back_as_a_range_holding_it():
    for units in [0, 49, 50, 99, 100, 150, 999, 1_000, 1_999, 2_000, 9_999, 10_000, 99_999, 100_000, 3_000_000]:
        low, high = badge_range(badge_of(units))
        assert low <= units <= high, units
    assert [badge_of(units) for units in (12, 64, 1_500, 25_000, 250_000)] == ["", "50+", "1K+", "20K+", "100K+"]


SHEET = (
    "asin,category,bestseller_rank,Bought_In_Past_Month,price\n"
    "B01,books,120,1K+ bought in past month,12.99\n"
    "B02,books,5400,,8.50\n"
    'B03,books,40,"2,000+",20\n'
    "B04,toys_games,900,2.5K+,5\n"
)


def run(*args) -> str:
    out = io.StringIO()
    call_command("badges_to_csv", *map(str, args), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_command_writes_a_training_csv_the_reader_takes(tmp_path):
    (source := tmp_path / "sheet.csv").write_text(SHEET)

    assert "Wrote 4 rows" in run(source, tmp_path / "train.csv")

    lines = (tmp_path / "train.csv").read_text().splitlines()
    assert lines[0] == "asin,category,bestseller_rank,monthly_sales_min,monthly_sales_max,price"
    assert lines[1:] == [
        "B01,books,120,1000,1999,12.99",
        "B02,books,5400,0,49,8.50",
        "B03,books,40,2000,2999,20",
        "B04,toys_games,900,2500,,5",
    ]
    dataset = read_training_csv(tmp_path / "train.csv", progress=False)
    assert dataset.sales_max.tolist() == [1999.0, 49.0, 2999.0, math.inf]
    assert dataset.censored.all()


def test_the_spreadsheet_is_never_written_over(tmp_path):
    (source := tmp_path / "sheet.csv").write_text(SHEET)

    with pytest.raises(CommandError, match="is the spreadsheet being read"):
        run(source, tmp_path / "." / "sheet.csv")
    assert source.read_text() == SHEET


def test_a_bad_badge_fails_naming_its_line_unless_skipped(tmp_path):
    (source := tmp_path / "sheet.csv").write_text(SHEET + "B05,books,7,many\n")

    with pytest.raises(CommandError, match="line 6: 'many' is not a badge"):
        run(source, tmp_path / "train.csv")
    assert not (tmp_path / "train.csv").exists()

    assert "Wrote 4 rows to" in run(source, tmp_path / "train.csv", "--skip-bad-rows")


def test_the_badge_column_is_named_by_option_and_a_missing_one_said(tmp_path):
    (source := tmp_path / "sheet.csv").write_text("category,bestseller_rank,monthlySold\nbooks,3,50+\n")

    with pytest.raises(CommandError, match="no column 'bought_in_past_month'.*--badge-column"):
        run(source, tmp_path / "train.csv")

    assert "Wrote 1 row to" in run(source, tmp_path / "train.csv", "--badge-column", "monthlySold")


def test_a_file_that_already_has_ranges_or_cannot_be_read_is_refused(tmp_path):
    (source := tmp_path / "sheet.csv").write_text("category,bestseller_rank,monthly_sales_min,b\nbooks,3,50,50+\n")

    with pytest.raises(CommandError, match="already has monthly_sales_min"):
        run(source, tmp_path / "train.csv", "--badge-column", "b")
    with pytest.raises(CommandError, match="Cannot read"):
        run(tmp_path / "nope.csv", tmp_path / "train.csv")
