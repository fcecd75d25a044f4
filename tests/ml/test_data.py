"""Reading training CSVs: every bad row reported by line and reason; unusable files refused clearly."""

from __future__ import annotations

import hashlib

import pytest

from ml.data import BAD_ROWS_SHOWN, DataError, read_training_csv
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
