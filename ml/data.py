"""Reading a training CSV: streamed, every row checked, bad rows reported by line number and reason.

Format: a header naming ``category,bestseller_rank,monthly_sales`` (any order; other columns are
ignored), then one row per observation. The file is read once, in a stream, while its sha256 is taken,
so a 1,000,000-row file never sits in memory as text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REQUIRED_COLUMNS = ("category", "bestseller_rank", "monthly_sales")
BAD_ROWS_SHOWN = 20


class DataError(Exception):
    """The CSV cannot be trained on; the message says why and where (``bad_rows``: the rows listed)."""

    def __init__(self, message: str, bad_rows: list[BadRow] | None = None):
        super().__init__(message)
        self.bad_rows = bad_rows or []


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class Dataset:
    categories: np.ndarray  # str
    ranks: np.ndarray  # int64
    sales: np.ndarray  # float64
    sha256: str
    source: str
    bad_rows: list[BadRow] = field(default_factory=list)  # the first BAD_ROWS_SHOWN
    bad_count: int = 0

    @property
    def rows(self) -> int:
        return len(self.ranks)


class _HashingReader(io.RawIOBase):
    """Passes bytes through while hashing them and reporting progress."""

    def __init__(self, raw, on_bytes: Callable[[int], None]):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        self.on_bytes(len(data))
        buffer[: len(data)] = data
        return len(data)


def _check_row(row: list[str], columns: dict[str, int]) -> tuple[str, int, float] | str:
    """The parsed row, or the reason it is bad."""
    if len(row) < len(columns) or any(columns[name] >= len(row) for name in REQUIRED_COLUMNS):
        return f"missing column (expected {', '.join(REQUIRED_COLUMNS)})"
    category = row[columns["category"]].strip()
    rank_text = row[columns["bestseller_rank"]].strip()
    sales_text = row[columns["monthly_sales"]].strip()
    if not category:
        return "empty category"
    digits = rank_text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 12:  # "²".isdigit(), int("²") fails
        return f"bestseller_rank {rank_text[:20]!r} is not a whole number"
    rank = int(rank_text)  # a negative one is a whole number, out of range as 0 is
    if rank < 1:
        return "bestseller_rank must be at least 1"
    try:
        sales = float(sales_text)
    except ValueError:
        return f"monthly_sales {sales_text[:20]!r} is not a number"
    if not math.isfinite(sales):
        return "monthly_sales must be a finite number"
    if sales < 0:
        return "monthly_sales cannot be negative"
    return category, rank, sales


def read_training_csv(
    path: Path,
    *,
    skip_bad_rows: bool = False,
    progress: bool | None = None,
    name: str | None = None,
    on_read: Callable[[int, int, int], None] | None = None,
) -> Dataset:
    """Read and check the CSV. Bad rows fail the read unless ``skip_bad_rows``, when they are counted.

    ``progress``: a progress bar on stderr (default: when stderr is a terminal). ``name``: what messages
    and the dataset's source call the file (default: its path). ``on_read(bytes_read, bytes_total,
    rows_read)``: called as the file is read, about once a megabyte.
    """
    shown = name or str(path)
    try:
        size = os.path.getsize(path)
        raw = open(path, "rb")  # noqa: SIM115 - closed below, wrapped in several layers
    except OSError as exc:
        raise DataError(f"Cannot read {shown}: {exc.strerror or exc}.") from exc
    if size == 0:
        raw.close()
        raise DataError(f"{shown} is empty: it needs a header ({','.join(REQUIRED_COLUMNS)}) and rows.")

    show_progress = sys.stderr.isatty() if progress is None else progress
    bar = _progress_bar(size, str(path)) if show_progress else None
    read = 0

    def on_bytes(count: int) -> None:
        nonlocal read
        read += count
        if bar:
            bar.update(count)
        if on_read:
            on_read(read, size, len(ranks))

    hashing = _HashingReader(raw, on_bytes)
    text = io.TextIOWrapper(io.BufferedReader(hashing, buffer_size=1 << 20), encoding="utf-8", newline="")

    categories: list[str] = []
    interned: dict[str, str] = {}
    ranks = array("q")
    sales = array("d")
    bad: list[BadRow] = []
    bad_count = 0
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        columns = _columns(header, shown)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            checked = _check_row(row, columns)
            if isinstance(checked, str):
                bad_count += 1
                if len(bad) < BAD_ROWS_SHOWN:
                    bad.append(BadRow(reader.line_num, checked))
                if not skip_bad_rows and bad_count >= BAD_ROWS_SHOWN:
                    break
                continue
            category, rank, amount = checked
            categories.append(interned.setdefault(category, category))
            ranks.append(rank)
            sales.append(amount)
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown} is not UTF-8 text (byte {exc.start} of a line near row {len(ranks) + 2}).") from exc
    except csv.Error as exc:
        raise DataError(f"{shown} is not a readable CSV: {exc}.") from exc
    finally:
        text.close()
        if bar:
            bar.close()

    if bad_count and not skip_bad_rows:
        listed = "\n  ".join(map(str, bad))
        raise DataError(
            f"{shown} has bad rows (the first {len(bad)} shown); fix them or pass --skip-bad-rows:\n  {listed}",
            bad_rows=bad,
        )
    if not ranks:
        raise DataError(f"{shown} has no valid rows to train on ({bad_count} bad rows).")
    return Dataset(
        categories=np.array(categories),
        ranks=np.frombuffer(ranks, dtype=np.int64).copy(),
        sales=np.frombuffer(sales, dtype=np.float64).copy(),
        sha256=hashing.digest.hexdigest(),
        source=name or Path(path).name,
        bad_rows=bad,
        bad_count=bad_count,
    )


def _columns(header: list[str] | None, path: str) -> dict[str, int]:
    if not header:
        raise DataError(f"{path} has no header: the first line must name {','.join(REQUIRED_COLUMNS)}.")
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise DataError(
            f"{path}: the header lacks {', '.join(missing)}; it must name {','.join(REQUIRED_COLUMNS)} "
            f"(found: {','.join(names)[:200]})."
        )
    return {name: names.index(name) for name in REQUIRED_COLUMNS}


def _progress_bar(total: int, label: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=f"reading {label}", file=sys.stderr)
