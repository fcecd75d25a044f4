"""rank_history: a list of {"at": ISO 8601 date-time, "rank": int} samples, checked (each issue named),
stored with BSON dates (to the millisecond) and shown as ISO 8601 UTC; and the gaps the answer reports.

More: docs/architecture.md, "estimations/rank_history.py".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from estimations.fields import MAX_RANK, MIN_RANK
from ml.history import MAX_HISTORY_DAYS, MAX_HISTORY_POINTS

# A sample may be this much later than the server's clock (the client's clock may run ahead).
CLOCK_SKEW = timedelta(minutes=5)
MAX_AT_LENGTH = 40
KEYS = frozenset({"at", "rank"})
EXAMPLE = '[{"at": "2026-11-29T12:00:00Z", "rank": 1500}, {"at": "2026-11-30T12:00:00Z", "rank": 900}]'

ISSUE_NOT_LIST = f'must be a list of {{"at", "rank"}} samples, oldest first, e.g. {EXAMPLE}'
ISSUE_NOT_JSON = "must be JSON text: a list of samples, oldest first, e.g. " + EXAMPLE
ISSUE_EMPTY = "empty list: send at least one sample, or leave rank_history out"
ISSUE_TOO_MANY = (
    f"has {{count:,}} samples; at most {MAX_HISTORY_POINTS:,} are allowed (hourly for {MAX_HISTORY_DAYS} days)"
)
ISSUE_TOO_LONG = "spans {days:.2f} days ({first} to {last}); at most " + f"{MAX_HISTORY_DAYS} days are allowed"
ISSUE_SAMPLE = '[{index}]: must be an object {{"at": ..., "rank": ...}}'
ISSUE_LACKS = "[{index}]: lacks '{key}'"
ISSUE_OTHER_KEYS = "[{index}]: unknown key(s) {keys}; a sample has only 'at' and 'rank'"
ISSUE_AT = "[{index}].at: must be an ISO 8601 date-time with an offset, such as 2026-11-30T12:00:00Z"
ISSUE_NAIVE = "[{index}].at: {at} has no UTC offset: add Z or an offset such as +01:00"
ISSUE_RANK = f"[{{index}}].rank: must be a whole number from {MIN_RANK} to {MAX_RANK:,}"
ISSUE_DUPLICATE = "[{index}].at: {at} is the time of sample [{previous}] too: one sample per moment"
ISSUE_UNSORTED = "[{index}].at: {at} is earlier than sample [{previous}]'s {before}: send the samples oldest first"
ISSUE_FUTURE = "[{index}].at: {at} is in the future (the server's clock says {now})"
ISSUE_RANK_DIFFERS = (
    "is {rank}, but rank_history's latest sample has rank {latest}: send one of them, or make them agree"
)


def iso(moment: datetime) -> str:
    """2026-11-30T12:00:00Z (with .123 when there are milliseconds)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if moment.microsecond else f"{text}Z"


def parse(value: Any, *, now: Callable[[], datetime] | None = None) -> tuple[Any, str | None]:
    """(samples, None) with each ``at`` a UTC datetime to the millisecond, or (None, what is wrong)."""
    if not isinstance(value, list):
        return None, ISSUE_NOT_LIST
    if not value:
        return None, ISSUE_EMPTY
    if len(value) > MAX_HISTORY_POINTS:
        return None, ISSUE_TOO_MANY.format(count=len(value))
    samples: list[dict[str, Any]] = []
    for index, sample in enumerate(value):
        parsed = _sample(index, sample)
        if isinstance(parsed, str):
            return None, parsed
        if samples and (problem := _order_issue(index, samples[-1]["at"], parsed["at"])):
            return None, problem
        samples.append(parsed)
    clock = (now or _now)()
    if samples[-1]["at"] > clock + CLOCK_SKEW:
        return None, ISSUE_FUTURE.format(index=len(samples) - 1, at=iso(samples[-1]["at"]), now=iso(clock))
    span = samples[-1]["at"] - samples[0]["at"]
    if span > timedelta(days=MAX_HISTORY_DAYS):
        first, last = iso(samples[0]["at"]), iso(samples[-1]["at"])
        return None, ISSUE_TOO_LONG.format(days=span / timedelta(days=1), first=first, last=last)
    return samples, None


def _now() -> datetime:
    return datetime.now(UTC)


def _sample(index: int, sample: Any) -> dict[str, Any] | str:
    """The sample with its ``at`` parsed, or its issue."""
    if not isinstance(sample, dict):
        return ISSUE_SAMPLE.format(index=index)
    for key in ("at", "rank"):
        if key not in sample:
            return ISSUE_LACKS.format(index=index, key=key)
    if len(sample) > len(KEYS):
        others = ", ".join(repr(str(key)[:20]) for key in sample if key not in KEYS)
        return ISSUE_OTHER_KEYS.format(index=index, keys=others)
    rank = sample["rank"]
    if not isinstance(rank, int) or isinstance(rank, bool) or not MIN_RANK <= rank <= MAX_RANK:
        return ISSUE_RANK.format(index=index)
    at = sample["at"]
    if not isinstance(at, str) or len(at) > MAX_AT_LENGTH:
        return ISSUE_AT.format(index=index)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return ISSUE_AT.format(index=index)
    if moment.tzinfo is None or moment.utcoffset() is None:
        return ISSUE_NAIVE.format(index=index, at=at)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 at +01:00, or 9999 at -01:00: no UTC moment
        return ISSUE_AT.format(index=index)
    # BSON dates hold milliseconds: kept as stored, so a read-back equals what was checked.
    return {"at": moment.replace(microsecond=moment.microsecond // 1000 * 1000), "rank": rank}


def _order_issue(index: int, before: datetime, at: datetime) -> str | None:
    if at == before:
        return ISSUE_DUPLICATE.format(index=index, at=iso(at), previous=index - 1)
    if at < before:
        return ISSUE_UNSORTED.format(index=index, at=iso(at), previous=index - 1, before=iso(before))
    return None


def seconds(samples: Sequence[dict[str, Any]]) -> list[float]:
    """The samples' POSIX timestamps (what the estimator takes)."""
    return [_utc(sample["at"]).timestamp() for sample in samples]


def ranks(samples: Sequence[dict[str, Any]]) -> list[int]:
    return [sample["rank"] for sample in samples]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def gap_spans(samples: Sequence[dict[str, Any]], gaps: Sequence[tuple[int, int]]) -> list[dict[str, datetime]]:
    """The gaps (index pairs, ml.history.gaps) as {"from": at, "to": at}."""
    return [{"from": samples[start]["at"], "to": samples[end]["at"]} for start, end in gaps]


def shown(value: Any) -> Any:
    """A stored list of samples or gaps as an answer shows it: each date as ISO 8601 UTC."""
    if not isinstance(value, list):
        return value
    return [
        {key: iso(item) if isinstance(item, datetime) else item for key, item in entry.items()}
        if isinstance(entry, dict)
        else entry
        for entry in value
    ]


def as_text(value: Any) -> str:
    """A CSV cell: the shown list's JSON text."""
    return json.dumps(shown(value), separators=(",", ":"))
