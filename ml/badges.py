"""Amazon's "bought in past month" badges as training ranges: "1K+ bought in past month" -> [1000, 1999].

A badge is the highest step of Amazon's ladder a product reached (50, 100, 200, ..., 900, 1K, 2K, ...), so
it also says the next step was not; no badge is fewer than 50. More: docs/model.md, "Training from badges".
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

NO_BADGE = (0.0, 49.0)  # Amazon shows no badge below 50 a month
OPEN_FROM = 100_000  # badges from this one on are written open-ended: the top of the ladder is not known
NO_BADGE_TEXTS = frozenset({"", "-", "none", "n/a", "no badge"})
BADGE = re.compile(r"^\s*(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*([km]?)\s*\+?\s*(?:bought in (?:the )?past month)?\s*$")
SCALE = {"": 1, "k": 1_000, "m": 1_000_000}
OUT_COLUMNS = ("monthly_sales_min", "monthly_sales_max")
SHOWN = 20


class BadgeError(ValueError):
    pass


def on_ladder(units: int) -> bool:
    """50, or a single non-zero digit followed by zeros from 100 on: 100, ..., 900, 1,000, ..., 9,000, ..."""
    digits = str(units)
    return units == 50 or (units >= 100 and digits[0] != "0" and set(digits[1:]) == {"0"})


def next_step(units: int) -> int:
    """The ladder's next step above ``units`` (on the ladder)."""
    if units == 50:
        return 100
    power = 10 ** (len(str(units)) - 1)
    return units + power


def badge_of(units: float, open_from: int = OPEN_FROM) -> str:
    """The badge a month of ``units`` shows: the highest step reached ("" below 50), as "1K+" or "200+"."""
    if units < 50:
        return ""
    step = 50 if units < 100 else int(str(int(units))[0]) * 10 ** (len(str(int(units))) - 1)
    step = min(step, open_from)
    return f"{step // 1000:,}K+" if step >= 1000 else f"{step}+"


def badge_range(text: str, open_from: int = OPEN_FROM) -> tuple[float, float]:
    """[min, max] units of a badge ("1K+ bought in past month", "1,000+", "2.5K+", "50+", "" for none).
    A badge off Amazon's ladder (2.5K+) or from ``open_from`` on has no known next step: max is inf."""
    cleaned = text.strip().lower()
    if cleaned in NO_BADGE_TEXTS:
        return NO_BADGE
    match = BADGE.match(cleaned)
    if not match:
        raise BadgeError(f"{text.strip()[:40]!r} is not a badge such as 50+, 1K+, 1,000+ or 2.5K+ bought in past month")
    units = float(match.group(1).replace(",", "")) * SCALE[match.group(2)]
    if not math.isfinite(units) or not units.is_integer() or units < 50:
        raise BadgeError(f"{text.strip()[:40]!r} is not a badge: they start at 50+ and count whole units")
    whole = int(units)
    if whole >= open_from or not on_ladder(whole):
        return float(whole), math.inf
    return float(whole), float(next_step(whole) - 1)


def convert(source: Path, target: Path, badge_column: str, *, skip_bad_rows: bool = False) -> tuple[int, int]:
    """Write ``source`` to ``target`` with ``badge_column`` replaced by monthly_sales_min, monthly_sales_max
    (max empty when open). Other columns are copied. Returns (rows written, bad rows skipped)."""
    with open(source, newline="", encoding="utf-8-sig") as reader_file:
        reader = csv.reader(reader_file)
        header = next(reader, None)
        if not header:
            raise BadgeError(
                f"{source} has no header: the first line must name the columns, {badge_column} among them."
            )
        names = [name.strip().lower() for name in header]
        if badge_column.lower() not in names:
            raise BadgeError(
                f"{source}: no column {badge_column!r} (found: {','.join(names)[:200]}); see --badge-column."
            )
        if any(name in names for name in OUT_COLUMNS):
            raise BadgeError(f"{source} already has {' or '.join(OUT_COLUMNS)}: it needs no converting.")
        place = names.index(badge_column.lower())
        out_header = header[:place] + list(OUT_COLUMNS) + header[place + 1 :]
        rows, bad = [], []
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            try:
                low, high = badge_range(row[place] if place < len(row) else "")
            except BadgeError as exc:
                bad.append(f"line {reader.line_num}: {exc}")
                continue
            cells = [f"{low:.0f}", "" if math.isinf(high) else f"{high:.0f}"]
            rows.append(row[:place] + cells + row[place + 1 :])
    if bad and not skip_bad_rows:
        counted = f"{len(bad):,} bad row{'s' if len(bad) != 1 else ''} (the first {min(len(bad), SHOWN)} shown)"
        raise BadgeError(f"{source} has {counted}; fix them or pass --skip-bad-rows:\n  " + "\n  ".join(bad[:SHOWN]))
    with open(target, "w", newline="", encoding="utf-8") as writer_file:
        writer = csv.writer(writer_file)
        writer.writerow(out_header)
        writer.writerows(rows)
    return len(rows), len(bad)
