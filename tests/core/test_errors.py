"""core/errors.py: the one error envelope, the 503 that says what is known of a write's outcome, and
the exception handler that turns every error (an unexpected one too) into the envelope."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.http import Http404
from pymongo import errors as mongo_errors
from rest_framework.exceptions import ValidationError

from core.errors import (
    MSG_DATABASE_REFUSED,
    MSG_DATABASE_UNAVAILABLE,
    MSG_NOT_FOUND,
    MSG_SERVER_ERROR,
    MSG_WRITE_UNKNOWN,
    ValidationFailed,
    database_failure,
    envelope,
    exception_handler,
)


def test_the_envelope_holds_the_code_and_message_and_only_the_extras_given():
    assert envelope(404, "gone", _issues=None) == {"_status": "ERR", "_error": {"code": 404, "message": "gone"}}
    assert envelope(422, "bad", _issues={"a": "b"})["_issues"] == {"a": "b"}


@pytest.mark.parametrize(
    ("error", "write", "message"),
    [
        # never sent: nothing changed, read or write
        (mongo_errors.ServerSelectionTimeoutError("no server"), True, MSG_DATABASE_UNAVAILABLE),
        (mongo_errors.WaitQueueTimeoutError("no connection free"), True, MSG_DATABASE_UNAVAILABLE),
        # sent, the answer lost: a write may have been applied
        (mongo_errors.AutoReconnect("connection reset"), True, MSG_WRITE_UNKNOWN),
        (mongo_errors.ExecutionTimeout("operation exceeded time limit"), True, MSG_WRITE_UNKNOWN),
        (mongo_errors.AutoReconnect("connection reset"), False, MSG_DATABASE_UNAVAILABLE),
        # the server's own "not applied", and a refused read
        (mongo_errors.WriteError("refused", 2), True, MSG_DATABASE_REFUSED),
        (mongo_errors.OperationFailure("refused", 2), False, MSG_DATABASE_REFUSED),
    ],
    ids=lambda value: value if isinstance(value, bool) else type(value).__name__,
)
def test_a_database_failure_says_what_is_known_of_the_outcome(error, write, message):
    failure = database_failure(error, write=write)

    assert failure.status_code == 503 and failure.detail == message


def handled(exc: Exception, method: str = "GET"):
    response = exception_handler(exc, {"request": SimpleNamespace(method=method)})
    return response.status_code, response.data


def test_a_database_error_on_a_write_is_a_503_saying_the_outcome_is_unknown():
    status, body = handled(mongo_errors.AutoReconnect("connection reset"), method="POST")

    assert status == 503
    assert body == envelope(503, MSG_WRITE_UNKNOWN)


def test_a_missing_page_is_the_404_envelope():
    assert handled(Http404("no such estimation")) == (404, envelope(404, MSG_NOT_FOUND))


def test_a_validation_failure_carries_its_issues_and_items():
    status, body = handled(ValidationFailed("Insertion failure", issues={"bestseller_rank": "required field"}))

    assert status == 422
    assert body == envelope(422, "Insertion failure", _issues={"bestseller_rank": "required field"})


def test_a_drf_validation_error_is_flattened_into_issues():
    status, body = handled(ValidationError({"sample": ["must be at least 1"]}))

    assert status == 400 and body["_status"] == "ERR" and body["_error"]["message"]
    assert body["_issues"] == {"sample": "must be at least 1"}


def test_an_unexpected_error_is_a_500_envelope_that_shows_nothing_of_it(caplog):
    status, body = handled(RuntimeError("secret-password-in-a-message"))

    assert (status, body) == (500, envelope(500, MSG_SERVER_ERROR))
    assert "unhandled error" in caplog.text  # logged for the operator, not sent to the client
