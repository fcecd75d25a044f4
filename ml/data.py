"""Reading a training CSV: streamed, every row checked, bad rows reported by line number and reason.

Format: a header naming category, bestseller_rank and monthly_sales or monthly_sales_min (any order;
optional: monthly_sales_max, marketplace; others ignored), then one row per observation. Read once, in a
stream, while its sha256 is taken. Ranges: docs/model.md, "Training from badges".
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

from ml.markets import DEFAULT_MARKETPLACE, MARKETPLACES

REQUIRED_COLUMNS = ("category", "bestseller_rank", "monthly_sales")  # the plain form; or a range instead:
RANGE_COLUMNS = ("monthly_sales_min", "monthly_sales_max")  # either may be empty: 0 and no upper bound
COLUMNS = ("category", "bestseller_rank", "monthly_sales", *RANGE_COLUMNS, "marketplace")
BAD_ROWS_SHOWN = 20
KNOWN_MARKETPLACES = frozenset(MARKETPLACES)
MSG_UNKNOWN_MARKETPLACE = "marketplace {code!r} is not known (known: " + ", ".join(MARKETPLACES) + ")"
MSG_NO_SALES = "no monthly_sales, monthly_sales_min or monthly_sales_max: a row needs its sales or their range"


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


def _empty() -> np.ndarray:
    return np.empty(0)


@dataclass
class Dataset:
    """The rows read. Left empty, ``marketplaces`` is all DEFAULT_MARKETPLACE and ``sales_min`` and
    ``sales_max`` are ``sales`` (every row exact). A range row has NaN ``sales`` and max inf when open."""

    categories: np.ndarray  # str
    ranks: np.ndarray  # int64
    sales: np.ndarray  # float64
    sha256: str
    source: str
    bad_rows: list[BadRow] = field(default_factory=list)  # the first BAD_ROWS_SHOWN
    bad_count: int = 0
    marketplaces: np.ndarray = field(default_factory=_empty)  # str
    sales_min: np.ndarray = field(default_factory=_empty)  # float64
    sales_max: np.ndarray = field(default_factory=_empty)  # float64

    def __post_init__(self) -> None:
        if not len(self.marketplaces):
            self.marketplaces = np.full(len(self.ranks), DEFAULT_MARKETPLACE)
        if not len(self.sales_min):
            self.sales_min = np.asarray(self.sales, dtype=np.float64).copy()
        if not len(self.sales_max):
            self.sales_max = np.asarray(self.sales, dtype=np.float64).copy()

    @property
    def rows(self) -> int:
        return len(self.ranks)

    @property
    def censored(self) -> np.ndarray:
        """The range rows (min < max): their units are known to lie in [sales_min, sales_max]."""
        return self.sales_min != self.sales_max

    def target(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """MonotoneCountCurve.fit's y for ``rows``: the sales (n,) when all are exact, else [min, max] (n, 2)."""
        if not self.censored[rows].any():
            return self.sales_min[rows]
        return np.column_stack([self.sales_min[rows], self.sales_max[rows]])


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


Row = tuple[str, str, int, float, float, float]  # marketplace, category, rank, sales (NaN: a range), min, max


def _check_row(row: list[str], columns: dict[str, int], last: int) -> Row | str:
    """The parsed row, or the reason it is bad."""
    if len(row) <= last:
        return f"missing column (expected {', '.join(name for name in COLUMNS if name in columns)})"
    category = row[columns["category"]].strip()
    rank_text = row[columns["bestseller_rank"]].strip()
    if not category:
        return "empty category"
    digits = rank_text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 12:  # "²".isdigit(), int("²") fails
        return f"bestseller_rank {rank_text[:20]!r} is not a whole number"
    rank = int(rank_text)  # a negative one is a whole number, out of range as 0 is
    if rank < 1:
        return "bestseller_rank must be at least 1"
    marketplace = DEFAULT_MARKETPLACE
    if "marketplace" in columns:
        marketplace = row[columns["marketplace"]].strip().lower() or DEFAULT_MARKETPLACE
        if marketplace not in KNOWN_MARKETPLACES:
            return MSG_UNKNOWN_MARKETPLACE.format(code=marketplace[:20])
    index = columns.get("monthly_sales")
    sales_text = row[index].strip() if index is not None else ""
    if sales_text or not ("monthly_sales_min" in columns or "monthly_sales_max" in columns):
        sales = _amount(sales_text, "monthly_sales")
        return sales if isinstance(sales, str) else (marketplace, category, rank, sales, sales, sales)
    return _range(row, columns, (marketplace, category, rank))


def _amount(text: str, name: str) -> float | str:
    try:
        value = float(text)
    except ValueError:
        return f"{name} {text[:20]!r} is not a number"
    if not math.isfinite(value):
        return f"{name} must be a finite number"
    if value < 0:
        return f"{name} cannot be negative"
    return value


def _range(row: list[str], columns: dict[str, int], key: tuple[str, str, int]) -> Row | str:
    """A row's [monthly_sales_min, monthly_sales_max]: whole numbers; an empty min is 0, an empty max open."""
    texts = [row[columns[name]].strip() if name in columns else "" for name in RANGE_COLUMNS]
    if not any(texts):
        return MSG_NO_SALES
    bounds = [0.0, math.inf]
    for place, (name, text) in enumerate(zip(RANGE_COLUMNS, texts, strict=True)):
        if text:
            value = _amount(text, name)
            if isinstance(value, str):
                return value
            if not value.is_integer():
                return f"{name} {text[:20]!r} is not a whole number (a bound is a count of units)"
            bounds[place] = value
    low, high = bounds
    if low > high:
        return f"monthly_sales_min {low:,.0f} is more than monthly_sales_max {high:,.0f}"
    return (*key, low if low == high else math.nan, low, high)


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
    marketplaces: list[str] = []
    interned: dict[str, str] = {}
    ranks = array("q")
    sales, lows, highs = array("d"), array("d"), array("d")
    bad: list[BadRow] = []
    bad_count = 0
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        columns = _columns(header, shown)
        # A row may stop before its trailing optional cells (a spreadsheet drops empty ones): they read as empty.
        needed = REQUIRED_COLUMNS if columns.keys().isdisjoint(RANGE_COLUMNS) else REQUIRED_COLUMNS[:2]
        last = max(index for name, index in columns.items() if name in needed)
        width = max(columns.values()) + 1
        by_market, ranged = "marketplace" in columns, not columns.keys().isdisjoint(RANGE_COLUMNS)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if last < len(row) < width:
                row += [""] * (width - len(row))
            checked = _check_row(row, columns, last)
            if isinstance(checked, str):
                bad_count += 1
                if len(bad) < BAD_ROWS_SHOWN:
                    bad.append(BadRow(reader.line_num, checked))
                if not skip_bad_rows and bad_count >= BAD_ROWS_SHOWN:
                    break
                continue
            marketplace, category, rank, amount, low, high = checked
            categories.append(interned.setdefault(category, category))
            ranks.append(rank)
            sales.append(amount)
            if by_market:  # else all DEFAULT_MARKETPLACE, and exact: the Dataset fills them in
                marketplaces.append(interned.setdefault(marketplace, marketplace))
            if ranged:
                lows.append(low)
                highs.append(high)
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
        marketplaces=np.array(marketplaces) if marketplaces else _empty(),
        sales_min=np.frombuffer(lows, dtype=np.float64).copy(),
        sales_max=np.frombuffer(highs, dtype=np.float64).copy(),
    )


def _columns(header: list[str] | None, path: str) -> dict[str, int]:
    """The index of each column read; the header must name category, bestseller_rank and the sales or a min."""
    if not header:
        raise DataError(f"{path} has no header: the first line must name {','.join(REQUIRED_COLUMNS)}.")
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS[:2] if name not in names]
    if "monthly_sales" not in names and "monthly_sales_min" not in names:
        missing.append("monthly_sales (or monthly_sales_min)")
    if missing:
        raise DataError(
            f"{path}: the header lacks {', '.join(missing)}; it must name {','.join(REQUIRED_COLUMNS)}, or "
            f"monthly_sales_min and optionally monthly_sales_max in place of monthly_sales "
            f"(found: {','.join(names)[:200]})."
        )
    return {name: names.index(name) for name in COLUMNS if name in names}


def _progress_bar(total: int, label: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=f"reading {label}", file=sys.stderr)
