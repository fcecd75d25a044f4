"""HTTP errors and the one error envelope every error answers in.

Eve's envelope: ``{"_status": "ERR", "_error": {"code": 422, "message": "..."}, "_issues": {...}}``.
``_issues`` (per field) and ``_items`` (per bulk item) appear where they apply. Every exception the
API can raise is mapped here, so no client input ends in Django's HTML 500 page.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pymongo import errors as mongo_errors
from rest_framework import exceptions, status
from rest_framework.response import Response

from core import limits

logger = logging.getLogger(__name__)

# User-facing messages; tests import them rather than repeat the text.
MSG_NOT_FOUND = "The requested URL was not found on the server."
MSG_VALIDATION = "Insertion failure: {count} document(s) contain(s) error(s)"
MSG_VALIDATION_UPDATE = "Update failure: the document contains error(s)"
MSG_IF_MATCH_REQUIRED = (
    "To edit a document its etag must be provided using the If-Match header (GET the document first and send its ETag)."
)
MSG_IF_MATCH_STALE = (
    "Client and server etags don't match: the document has changed since you read it. "
    "GET it again and retry with the new ETag."
)
MSG_DATABASE_UNAVAILABLE = (
    "The database is unreachable right now. The request was not carried out; retry in a few seconds."
)
# A write the database did not confirm (a timeout or a broken connection after it was sent, a write
# concern not met, a node stepping down): it may have been applied. Each message says how to find out,
# and how to retry so that the change is never made twice (docs/reliability.md).
MSG_WRITE_UNKNOWN = (
    "The database did not confirm this write, so it may have been applied. GET the document to see, "
    "then retry a PUT, PATCH or DELETE with If-Match, or a POST with the same Idempotency-Key: "
    "such a retry never applies a change twice."
)
MSG_UPDATE_UNKNOWN = (
    "The database did not confirm this change, so it may have been applied. GET the document: if its ETag "
    "is still the one you sent in If-Match, the change was not made. Retrying with the same If-Match is "
    "safe either way: the change is made once, or the answer is 412 (the document changed since)."
)
MSG_DELETE_UNKNOWN = (
    "The database did not confirm this delete, so the document may have been deleted. GET it: 404 means "
    "it was. Retrying with the same If-Match is safe either way: it deletes the document once, or answers "
    "404 (deleted) or 412 (the document changed since)."
)
MSG_INSERT_REMOVED = (
    "The database did not answer in time. What this request may have stored was removed again: "
    "nothing was stored. Retry in a few seconds."
)
MSG_INSERT_PENDING = (
    "The database did not answer in time, so this request's estimations may have reached it. If they did, "
    "they are removed at this server's next write once the database answers: none of them is kept. "
    "Retry in a few seconds (with an Idempotency-Key, a retry is safe whatever happened)."
)
MSG_INSERT_UNKNOWN_KEYED = (
    "The database did not answer in time, so whether this estimation was stored is not known. Retry with "
    "the same Idempotency-Key: you get the estimation if it was stored, or it is stored once."
)
MSG_QUERY_REFUSED = "The database refused this query. Simplify the 'where' or 'sort' parameter and try again."
# The database refused an operation for a reason of its own (not the request's) and said so: nothing changed.
MSG_DATABASE_REFUSED = (
    "The database could not carry out the request right now (not a fault of the request); nothing was "
    "changed. Retry in a few seconds."
)
MSG_BODY_TOO_LARGE = "The request body is larger than the {limit} bytes this service accepts."
MSG_TOO_MANY_FIELDS = "A form takes at most {limit} fields (DATA_UPLOAD_MAX_NUMBER_FIELDS); send fewer."
MSG_TOO_MANY_FILES = "A form takes at most {limit} files; send fewer."
MSG_BAD_REQUEST = "Bad request: the request could not be read."
MSG_BULK_TOO_LARGE = "A bulk insert takes at most {limit} documents; this request had {count}."
MSG_SERVER_ERROR = "The server hit an unexpected error. It has been logged; please retry later."


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = MSG_IF_MATCH_REQUIRED
    default_code = "precondition_required"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = MSG_IF_MATCH_STALE
    default_code = "precondition_failed"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class BadQuery(exceptions.APIException):
    """A malformed or disallowed query parameter (where, sort, projection, page...)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_query"

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"Bad '{param}' parameter: {message}")


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = MSG_DATABASE_UNAVAILABLE
    default_code = "service_unavailable"


class RequestTimeout(exceptions.APIException):
    """The request body stopped coming (core/deadlines.py); the connection is then closed."""

    status_code = status.HTTP_408_REQUEST_TIMEOUT
    default_detail = "The request body did not arrive in time. Nothing was done; send the request again in one go."
    default_code = "request_timeout"


class ValidationFailed(exceptions.APIException):
    """422 with Eve's ``_issues`` (one document) or ``_items`` (bulk)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "validation_failed"

    def __init__(
        self,
        message: str,
        *,
        issues: dict[str, str] | None = None,
        items: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.issues = issues
        self.items = items


def envelope(code: int, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"_status": "ERR", "_error": {"code": code, "message": message}}
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def _message(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list | dict):
        return str(exc.default_detail)
    return str(detail)


# Sent to no server (none could be selected, or no connection was free): nothing was changed.
NOT_SENT = (mongo_errors.ServerSelectionTimeoutError, mongo_errors.WaitQueueTimeoutError)
# The operation failed, or the answer was lost, without the database saying it was not applied.
UNANSWERED = (mongo_errors.ConnectionFailure, mongo_errors.ExecutionTimeout)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _is_write(context: dict[str, Any]) -> bool:
    request = context.get("request")
    return request is not None and getattr(request, "method", "GET") not in _SAFE_METHODS


def database_failure(exc: mongo_errors.PyMongoError, *, write: bool) -> ServiceUnavailable:
    """The 503 for a database error, saying what is known of the outcome. ``write``: whether the failed
    operation could have changed data (a read never did, whatever the error)."""
    if isinstance(exc, NOT_SENT):
        return ServiceUnavailable(MSG_DATABASE_UNAVAILABLE)
    if write and not isinstance(exc, mongo_errors.WriteError):  # a WriteError is the server's "not applied"
        return ServiceUnavailable(MSG_WRITE_UNKNOWN)
    if isinstance(exc, UNANSWERED):
        return ServiceUnavailable(MSG_DATABASE_UNAVAILABLE)
    return ServiceUnavailable(MSG_DATABASE_REFUSED)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every error becomes Eve's envelope."""
    if isinstance(exc, mongo_errors.PyMongoError):
        # Not classified where it was raised (estimations/store.py says more, knowing which operation
        # failed): on a request that writes, the outcome is unknown unless the write was never sent.
        logger.warning("database error: %s code=%s", type(exc).__name__, getattr(exc, "code", None))
        exc = database_failure(exc, write=_is_write(context))
    elif isinstance(exc, SuspiciousOperation):
        # Django's own limits on a form (raised while DRF reads request.data), and any other request
        # Django finds malformed: the client's doing, so a 4xx, never a 500.
        exc = _suspicious(exc)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        exc = _unsupported(exc, context)
    elif _body_timed_out(exc):
        exc = RequestTimeout()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(MSG_NOT_FOUND)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    # Imported here: rest_framework.views loads the parser classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error", exc_info=exc)
        return Response(envelope(500, MSG_SERVER_ERROR), status=500)

    assert isinstance(exc, exceptions.APIException)
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationFailed):
        extra = {"_issues": exc.issues, "_items": exc.items}
    elif isinstance(exc, exceptions.ValidationError):
        extra = {"_issues": _flatten_issues(exc.detail)}
    response.data = envelope(response.status_code, _message(exc), **extra)
    return response


def _unsupported(exc: exceptions.UnsupportedMediaType, context: dict[str, Any]) -> exceptions.APIException:
    """DRF's 415, with the media types this endpoint takes, so the client knows what to send."""
    view = context.get("view")
    parsers = view.get_parsers() if view is not None and hasattr(view, "get_parsers") else []
    types = list(dict.fromkeys(parser.media_type for parser in parsers))
    accepted = ", ".join(types)
    if not accepted or all(media_type in str(exc.detail) for media_type in types):
        return exc  # no types known, or the view's own message names them already: said once
    return exceptions.UnsupportedMediaType("", detail=f"{str(exc.detail).rstrip('.')}: send {accepted}.")


def _suspicious(exc: SuspiciousOperation) -> exceptions.APIException:
    from django.conf import settings
    from django.core.exceptions import DisallowedHost

    if isinstance(exc, DisallowedHost):
        return exceptions.ParseError(MSG_BAD_HOST)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(MSG_BODY_TOO_LARGE.format(limit=limits.body_limit()))
    if isinstance(exc, TooManyFieldsSent):
        return exceptions.ParseError(MSG_TOO_MANY_FIELDS.format(limit=limits.form_field_limit()))
    if isinstance(exc, TooManyFilesSent):
        return exceptions.ParseError(MSG_TOO_MANY_FILES.format(limit=settings.DATA_UPLOAD_MAX_NUMBER_FILES))
    return exceptions.ParseError(MSG_BAD_REQUEST)


def _body_timed_out(exc: BaseException) -> bool:
    """The body stopped coming, as Django or a parser passed it on (an unreadable body, a parse error)."""
    from core.deadlines import ClientBodyTimeout

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientBodyTimeout):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _flatten_issues(detail: Any) -> dict[str, str] | None:
    if isinstance(detail, dict):
        return {key: " ".join(map(str, v)) if isinstance(v, list) else str(v) for key, v in detail.items()}
    return None


def json_error(code: int, message: str) -> JsonResponse:
    return JsonResponse(envelope(code, message), status=code)


def handler404(request, exception=None):  # noqa: ARG001 - Django's handler signature
    return json_error(404, MSG_NOT_FOUND)


MSG_BAD_HOST = (
    "This service does not answer to that host name. Add it to the ALLOWED_HOSTS setting "
    "(comma-separated) if it is yours."
)


def handler400(request, exception=None):  # noqa: ARG001
    from django.core.exceptions import DisallowedHost

    if isinstance(exception, DisallowedHost):
        return json_error(400, MSG_BAD_HOST)
    if isinstance(exception, SuspiciousOperation):  # raised outside DRF: a form read by a plain Django view
        mapped = _suspicious(exception)
        return json_error(mapped.status_code, str(mapped.detail))
    return json_error(400, MSG_BAD_REQUEST)


def handler500(request):  # noqa: ARG001
    return json_error(500, MSG_SERVER_ERROR)


MSG_CSRF = (
    "The form's security check (CSRF) failed: {reason}. Reload the page (/inspect/) and send the form "
    "again, with cookies enabled; scripts send their API key in the Authorization header instead."
)


def csrf_failure(request, reason: str = ""):  # noqa: ARG001 - Django's CSRF_FAILURE_VIEW signature
    return json_error(403, MSG_CSRF.format(reason=(reason or "no valid token").rstrip(".")))


def read_only(view):
    """A plain Django view that only reads (/metrics, /health/*): GET and HEAD, any other method 405 in
    the envelope with ``Allow``. No form posts to it, so CSRF has nothing to guard."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = json_error(405, f"Method {request.method} not allowed: {request.path} answers GET and HEAD.")
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapped
