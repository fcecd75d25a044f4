"""core.limits: the number, date and text limits every parser uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core import limits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        (" 7 ", 7),
        ("000000000000000000000000005", 5),  # leading zeros are not digits of the number
        ("9" * 18, 10**18 - 1),
        ("9" * 19, limits.TOO_LARGE),
        ("9" * 5000, limits.TOO_LARGE),  # past Python's int-string limit, never converted
        ("²", None),
        ("①", None),
        ("٣", None),
        ("-1", None),
        ("1e3", None),
        ("", None),
        ("12\n", 12),  # surrounding whitespace, as a form or CSV cell may carry
    ],
)
def test_whole_number_takes_ascii_digits_only(text, expected):
    assert limits.whole_number(text) == expected


def test_too_large_is_past_64_bits():
    assert not limits.is_int64(limits.TOO_LARGE)
    assert limits.is_int64(limits.INT64_MAX) and limits.is_int64(limits.INT64_MIN)
    assert not limits.is_int64(limits.INT64_MIN - 1)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
    ],
)
def test_a_date_outside_years_1_to_9999_in_utc_is_refused(moment):
    with pytest.raises(ValueError, match="year 1 to 9999"):
        limits.to_utc(moment)


def test_dates_inside_the_range_come_back_in_utc():
    assert limits.to_utc(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert limits.to_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)  # naive: taken as UTC


def test_lone_surrogates_are_not_valid_text_and_pairs_are():
    assert not limits.is_valid_text("a\ud800")
    assert limits.is_valid_text("\U0001f4da")
    assert not limits.json_text_is_valid('{"k": "\\ud800"}', {"k": "\ud800"})
    assert not limits.json_text_is_valid('[{"\\udfff": 1}]', [{"\udfff": 1}])
    assert limits.json_text_is_valid('"\\ud83d\\udcda"', "\U0001f4da")  # an escaped pair is one character


@pytest.mark.parametrize(("value", "ok"), [("key-1", True), ("key-1\n", False), ("", False), ("a" * 201, False)])
def test_tokens_are_whole_values(value, ok):
    assert limits.is_token(value, 200) is ok
