"""estimations/validation.py: each field's rules and Eve's message for each issue, called directly and
through POST /estimations."""

from __future__ import annotations

import pytest

from core.errors import MSG_VALIDATION
from estimations import validation
from estimations.validation import Rules, validate
from ml.serving import get_estimator
from tests.helpers import assert_error_envelope, post_json, stored_count

RULES = Rules(categories={"books", "toys_games"}, default_category="books")


def test_a_valid_estimation_comes_back_clean_with_the_default_category():
    clean = {"bestseller_rank": 70, "marketplace": "us", "category": "books"}
    assert validate({"bestseller_rank": 70}, RULES) == (clean, {})


def test_a_default_the_model_does_not_know_is_an_issue_not_a_stand_in():
    clean, issues = validate({"bestseller_rank": 70}, Rules(categories={"toys_games"}, default_category="books"))

    assert "category" not in clean
    assert "books" in issues["category"] and "toys_games" in issues["category"]


@pytest.mark.parametrize(
    ("payload", "field", "issue"),
    [
        ({}, "bestseller_rank", validation.ISSUE_REQUIRED),
        ({"bestseller_rank": True}, "bestseller_rank", validation.ISSUE_INTEGER),
        ({"bestseller_rank": 0}, "bestseller_rank", validation.ISSUE_MIN),
        ({"bestseller_rank": validation.MAX_RANK + 1}, "bestseller_rank", validation.ISSUE_MAX),
        ({"bestseller_rank": 5, "_etag": "x"}, "_etag", validation.ISSUE_READ_ONLY),
        ({"bestseller_rank": 5, "colour": "red"}, "colour", validation.ISSUE_UNKNOWN),
        ({"bestseller_rank": 5, "sku": "=cmd"}, "sku", validation.ISSUE_SKU_FORMULA),
        (
            {"bestseller_rank": 5, "actual_sales": 3, "actual_period": "2026-13"},
            "actual_period",
            validation.ISSUE_PERIOD,
        ),
    ],
)
def test_each_rule_reports_its_field_with_eves_message(payload, field, issue):
    clean, issues = validate(payload, RULES)

    assert issues[field] == issue
    assert field not in clean


def test_actuals_come_together():
    _, issues = validate({"bestseller_rank": 5, "actual_sales": 3}, RULES)

    assert issues == {"actual_period": validation.ISSUE_ACTUALS_TOGETHER.format(other="actual_sales")}


def test_a_patch_checks_only_the_fields_given_and_applies_no_default():
    assert validate({"sku": "A-1"}, RULES, partial=True) == ({"sku": "A-1"}, {})


def test_a_form_sends_numbers_as_text_and_a_json_body_may_not():
    assert (
        validate({"bestseller_rank": "70", "csrfmiddlewaretoken": "x"}, RULES, from_form=True)[0]["bestseller_rank"]
        == 70
    )
    assert validate({"bestseller_rank": "70"}, RULES)[1] == {"bestseller_rank": validation.ISSUE_INTEGER}


def test_a_body_that_is_not_an_object_is_one_issue():
    assert validate([1, 2], RULES) == ({}, {validation.ISSUE_DOCUMENT: validation.ISSUE_NOT_OBJECT})


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "field", "issue"),
        [
            ({}, "bestseller_rank", validation.ISSUE_REQUIRED),
            ({"bestseller_rank": "70"}, "bestseller_rank", validation.ISSUE_INTEGER),
            ({"bestseller_rank": 70.0}, "bestseller_rank", validation.ISSUE_INTEGER),
            ({"bestseller_rank": True}, "bestseller_rank", validation.ISSUE_INTEGER),
            ({"bestseller_rank": None}, "bestseller_rank", validation.ISSUE_INTEGER),
            ({"bestseller_rank": 0}, "bestseller_rank", validation.ISSUE_MIN),
            ({"bestseller_rank": -5}, "bestseller_rank", validation.ISSUE_MIN),
            ({"bestseller_rank": 10**30}, "bestseller_rank", validation.ISSUE_MAX),
            ({"bestseller_rank": 5, "category": 7}, "category", validation.ISSUE_STRING),
            ({"bestseller_rank": 5, "category": None}, "category", validation.ISSUE_STRING),
            ({"bestseller_rank": 5, "category": ""}, "category", validation.ISSUE_EMPTY),
            ({"bestseller_rank": 5, "category": "x" * 100}, "category", validation.ISSUE_CATEGORY_LENGTH),
            ({"bestseller_rank": 5, "colour": "red"}, "colour", validation.ISSUE_UNKNOWN),
            ({"bestseller_rank": 5, "estimated_sales": 9}, "estimated_sales", validation.ISSUE_READ_ONLY),
            ({"bestseller_rank": 5, "_id": "6b0aa8a7e49da0a6640161ec"}, "_id", validation.ISSUE_READ_ONLY),
            ({"bestseller_rank": 5, "category": {"$ne": None}}, "category", validation.ISSUE_STRING),
        ],
    )
    def test_invalid_input_answers_422_with_eve_issues_and_stores_nothing(self, api, mongo_db, body, field, issue):
        response = post_json(api, body)

        envelope = assert_error_envelope(response, 422)
        assert envelope["_issues"][field] == issue
        assert envelope["_error"]["message"] == MSG_VALIDATION.format(count=1)
        assert stored_count(mongo_db) == 0

    def test_unknown_category_lists_the_known_ones(self, api, mongo_db):
        response = post_json(api, {"bestseller_rank": 5, "category": "garden_tools"})

        issue = assert_error_envelope(response, 422)["_issues"]["category"]
        assert "garden_tools" in issue
        for known in get_estimator().categories:
            assert known in issue

    def test_control_characters_in_category_are_shown_escaped(self, api, mongo_db):
        response = post_json(api, {"bestseller_rank": 5, "category": "bo\x00oks\n"})

        issue = assert_error_envelope(response, 422)["_issues"]["category"]
        assert "\\x00" in issue and "\x00" not in issue


def test_actuals_for_a_month_that_has_not_begun_anywhere_are_refused(monkeypatch):
    """Actuals measure a model (live accuracy, drift): a future month would be a made-up one."""
    from datetime import UTC, datetime

    monkeypatch.setattr(
        validation,
        "datetime",
        type("Clock", (), {"now": staticmethod(lambda tz: datetime(2026, 12, 31, 11, 0, tzinfo=UTC))}),
    )

    def issue(period):
        return validate({"bestseller_rank": 5, "actual_sales": 3, "actual_period": period}, RULES)[1].get(
            "actual_period"
        )

    assert issue("2026-12") is None and issue("2019-01") is None
    assert issue("2027-01") is None  # already January at UTC+14 (01:00 on the 1st)
    assert issue("2027-02") == "must be a month that has begun: 2027-01 at the latest"
    assert issue("2099-01") == "must be a month that has begun: 2027-01 at the latest"
