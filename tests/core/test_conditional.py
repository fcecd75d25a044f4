"""core/conditional.py: If-Match for writes (428 without one) and the 304 rule for GET (RFC 9110)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.conditional import ANY, not_modified, quote_etag, required_if_match
from core.errors import PreconditionRequired

UPDATED = datetime(2026, 10, 5, 12, 30, 15, 250_000, tzinfo=UTC)
SAME_SECOND = "Mon, 05 Oct 2026 12:30:15 GMT"
A_SECOND_EARLIER = "Mon, 05 Oct 2026 12:30:14 GMT"


def test_an_etag_is_sent_quoted():
    assert quote_etag("abc") == '"abc"'


@pytest.mark.parametrize("header", [None, "", "   ", '""', ", ,"])
def test_a_write_without_an_etag_is_428(header):
    with pytest.raises(PreconditionRequired):
        required_if_match(header)


def test_a_star_matches_any_version():
    assert required_if_match(" * ") is ANY


def test_the_etags_of_a_list_come_unquoted_and_weak_ones_by_their_opaque_part():
    assert required_if_match('"a1", W/"b2" ,c3') == ["a1", "b2", "c3"]


def test_if_none_match_answers_304_for_the_current_etag_or_a_star():
    assert not_modified(etag="a1", updated=UPDATED, if_none_match='"zz", "a1"', if_modified_since=None)
    assert not_modified(etag="a1", updated=UPDATED, if_none_match="*", if_modified_since=None)
    assert not not_modified(etag="a1", updated=UPDATED, if_none_match='"zz"', if_modified_since=None)


def test_if_none_match_wins_over_if_modified_since():
    assert not not_modified(etag="a1", updated=UPDATED, if_none_match='"zz"', if_modified_since=SAME_SECOND)
    assert not_modified(etag="a1", updated=UPDATED, if_none_match='"a1"', if_modified_since=A_SECOND_EARLIER)


def test_if_modified_since_compares_whole_seconds():
    # HTTP dates have no fraction: a document updated within the date's second has not changed since.
    assert not_modified(etag="a1", updated=UPDATED, if_none_match=None, if_modified_since=SAME_SECOND)
    assert not not_modified(etag="a1", updated=UPDATED, if_none_match=None, if_modified_since=A_SECOND_EARLIER)


@pytest.mark.parametrize("since", ["yesterday", "Mon, 99 Foo 2026 12:00:00 GMT", "", None])
def test_an_unreadable_or_missing_date_is_ignored(since):
    assert not not_modified(etag="a1", updated=UPDATED, if_none_match=None, if_modified_since=since)
