"""Reading training CSVs: every bad row reported by line and reason; unusable files refused clearly."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from ml.data import BAD_ROWS_SHOWN, DataError, Dataset, read_training_csv
from tests.helpers import SAMPLE_CSV

HEADER = "category,bestseller_rank,monthly_sales\n"


def write(tmp_path, text: str, name: str = "data.csv", mode: str = "w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_reads_the_shipped_csv_with_its_checksum():
    dataset = read_training_csv(SAMPLE_CSV, progress=False)

    assert dataset.rows == 40_000
    assert dataset.sha256 == hashlib.sha256(SAMPLE_CSV.read_bytes()).hexdigest()
    assert dataset.bad_count == 0
    assert set(dataset.categories) == {
        "beauty",
        "books",
        "clothing",
        "electronics",
        "home_kitchen",
        "pet_supplies",
        "sports_outdoors",
        "toys_games",
    }


def test_columns_in_any_order_extra_columns_and_blank_lines(tmp_path):
    path = write(tmp_path, "sku,monthly_sales,bestseller_rank,category\nA1,12,5,books\n\nB2,3.5,9,toys_games\n")

    dataset = read_training_csv(path, progress=False)

    assert dataset.ranks.tolist() == [5, 9]
    assert dataset.sales.tolist() == [12.0, 3.5]
    assert dataset.categories.tolist() == ["books", "toys_games"]


BAD = [
    ("books,abc,5", "bestseller_rank 'abc' is not a whole number"),
    ("books,0,5", "bestseller_rank must be at least 1"),
    ("books,-3,5", "bestseller_rank must be at least 1"),  # a whole number, out of range as 0 is
    ("books,-,5", "bestseller_rank '-' is not a whole number"),
    ("books,²,5", "bestseller_rank '²' is not a whole number"),
    ("books,2.5,5", "bestseller_rank '2.5' is not a whole number"),
    ("books,10,-1", "monthly_sales cannot be negative"),
    ("books,10,lots", "monthly_sales 'lots' is not a number"),
    ("books,10,inf", "monthly_sales must be a finite number"),
    (",10,5", "empty category"),
    ("books,10", "missing column"),
]


@pytest.mark.parametrize(("row", "reason"), BAD)
def test_a_bad_row_fails_the_read_naming_its_line_and_reason(tmp_path, row, reason):
    path = write(tmp_path, HEADER + "books,1,100\n" + row + "\n")

    with pytest.raises(DataError) as caught:
        read_training_csv(path, progress=False)

    assert f"line 3: {reason}" in str(caught.value)
    assert "--skip-bad-rows" in str(caught.value)


def test_skipping_counts_the_bad_rows_and_keeps_the_good(tmp_path):
    path = write(tmp_path, HEADER + "books,1,100\n" + "\n".join(row for row, _ in BAD) + "\nbeauty,7,3\n")

    dataset = read_training_csv(path, skip_bad_rows=True, progress=False)

    assert dataset.rows == 2
    assert dataset.bad_count == len(BAD)
    assert [bad.line for bad in dataset.bad_rows] == list(range(3, 3 + len(BAD)))


def test_only_the_first_bad_rows_are_listed(tmp_path):
    path = write(tmp_path, HEADER + "books,x,1\n" * 100)

    with pytest.raises(DataError) as caught:
        read_training_csv(path, progress=False)

    assert str(caught.value).count("line ") == BAD_ROWS_SHOWN


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("\n", "has no header"),
        ("rank,sales\n1,2\n", "the header lacks category, bestseller_rank, monthly_sales"),
        (HEADER, "has no valid rows"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        read_training_csv(write(tmp_path, content), skip_bad_rows=True, progress=False)


def test_missing_file_and_directory_and_binary(tmp_path):
    with pytest.raises(DataError, match="Cannot read"):
        read_training_csv(tmp_path / "nope.csv", progress=False)
    with pytest.raises(DataError, match="Cannot read|not a readable"):
        read_training_csv(tmp_path, progress=False)
    with pytest.raises(DataError, match="not UTF-8"):
        read_training_csv(write(tmp_path, HEADER.encode() + b"books,1,\xff\xfe\n", "bin.csv", "wb"), progress=False)


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    read_training_csv(SAMPLE_CSV, progress=True)

    assert "reading" in capsys.readouterr().err


# Issue 21: marketplaces and sales ranges ("bought in past month" badges) in the training CSV.
RANGE_HEADER = "category,bestseller_rank,monthly_sales,monthly_sales_min,monthly_sales_max\n"


def test_without_a_marketplace_column_every_row_is_us_and_exact(tmp_path):
    dataset = read_training_csv(write(tmp_path, HEADER + "books,1,100\nbeauty,7,3\n"), progress=False)

    assert dataset.marketplaces.tolist() == ["us", "us"]
    assert dataset.sales_min.tolist() == dataset.sales_max.tolist() == dataset.sales.tolist() == [100.0, 3.0]
    assert not dataset.censored.any()
    assert dataset.target().tolist() == [100.0, 3.0]


def test_the_marketplace_is_lower_cased_stripped_and_us_when_empty(tmp_path):
    path = write(tmp_path, "marketplace," + HEADER + " UK ,books,1,100\n,books,2,50\nDe,beauty,7,3\n")

    assert read_training_csv(path, progress=False).marketplaces.tolist() == ["uk", "us", "de"]


def test_an_unknown_marketplace_is_a_bad_row_naming_the_known_codes(tmp_path):
    path = write(tmp_path, "marketplace," + HEADER + "us,books,1,100\nusa,books,2,50\n")

    with pytest.raises(DataError) as caught:
        read_training_csv(path, progress=False)

    assert "line 3: marketplace 'usa' is not known (known: us, ca, mx, br, uk, de," in str(caught.value)


def test_range_rows_and_exact_rows_mixed_in_one_file(tmp_path):
    rows = [
        "books,10,120,,",  # exact
        "books,20,,1000,",  # "1K+": open-ended
        "books,30,,100,199",  # a bounded range
        "books,40,,,49",  # no badge: fewer than 50 (min 0)
        "books,50,,70,70",  # min == max: exact
        "books,60,8,50,",  # monthly_sales set: exact, the range cells are not read
    ]
    dataset = read_training_csv(write(tmp_path, RANGE_HEADER + "\n".join(rows) + "\n"), progress=False)

    assert dataset.sales_min.tolist() == [120.0, 1000.0, 100.0, 0.0, 70.0, 8.0]
    assert dataset.sales_max.tolist() == [120.0, math.inf, 199.0, 49.0, 70.0, 8.0]
    assert dataset.censored.tolist() == [False, True, True, True, False, False]
    assert np.isnan(dataset.sales).tolist() == [False, True, True, True, False, False]
    assert dataset.sales[~dataset.censored].tolist() == [120.0, 70.0, 8.0]
    assert dataset.target().shape == (6, 2)
    assert dataset.target(np.array([0, 4])).tolist() == [120.0, 70.0]  # only exact rows: (n,)


def test_a_row_may_stop_before_its_optional_cells(tmp_path):
    path = write(tmp_path, RANGE_HEADER.strip() + ",marketplace\nbooks,1,7\nbooks,2,,50\nbooks,3,,50,99,uk\n")

    dataset = read_training_csv(path, progress=False)

    assert dataset.sales_min.tolist() == [7.0, 50.0, 50.0]
    assert dataset.sales_max.tolist() == [7.0, math.inf, 99.0]
    assert dataset.marketplaces.tolist() == ["us", "us", "uk"]


def test_a_file_of_ranges_needs_no_monthly_sales_column(tmp_path):
    path = write(tmp_path, "monthly_sales_min,category,bestseller_rank\n50,books,3\n2000,books,1\n")

    dataset = read_training_csv(path, progress=False)

    assert dataset.sales_min.tolist() == [50.0, 2000.0]
    assert dataset.sales_max.tolist() == [math.inf, math.inf]
    assert dataset.censored.all()


BAD_RANGES = [
    ("books,10,,200,100", "monthly_sales_min 200 is more than monthly_sales_max 100"),
    ("books,10,,-5,", "monthly_sales_min cannot be negative"),
    ("books,10,,,-1", "monthly_sales_max cannot be negative"),
    ("books,10,,lots,", "monthly_sales_min 'lots' is not a number"),
    ("books,10,,50,many", "monthly_sales_max 'many' is not a number"),
    ("books,10,,inf,", "monthly_sales_min must be a finite number"),
    ("books,10,,50,inf", "monthly_sales_max must be a finite number"),  # open: leave it empty
    ("books,10,,2.5,", "monthly_sales_min '2.5' is not a whole number"),
    ("books,10,,,", "no monthly_sales, monthly_sales_min or monthly_sales_max"),
    ("books,10,-3,,", "monthly_sales cannot be negative"),
    ("books", "missing column"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_RANGES)
def test_a_bad_range_row_fails_the_read_naming_its_line_and_reason(tmp_path, row, reason):
    path = write(tmp_path, RANGE_HEADER + "books,1,,100,\n" + row + "\n")

    with pytest.raises(DataError) as caught:
        read_training_csv(path, progress=False)

    assert f"line 3: {reason}" in str(caught.value)


def test_a_header_with_neither_sales_column_is_refused_naming_both(tmp_path):
    with pytest.raises(DataError) as caught:
        read_training_csv(write(tmp_path, "category,bestseller_rank,monthly_sales_max\nbooks,1,49\n"), progress=False)

    assert "the header lacks monthly_sales (or monthly_sales_min)" in str(caught.value)


def test_a_dataset_built_without_the_new_fields_is_all_us_and_exact():
    dataset = Dataset(
        categories=np.array(["books"]), ranks=np.array([5]), sales=np.array([9.0]), sha256="0" * 64, source="x"
    )

    assert dataset.marketplaces.tolist() == ["us"]
    assert dataset.sales_min.tolist() == dataset.sales_max.tolist() == [9.0]
    assert not dataset.censored.any()
