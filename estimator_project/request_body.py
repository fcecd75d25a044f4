"""Request bodies sent with ``Transfer-Encoding: chunked``: read, within MAX_BODY_BYTES, like any other.

Django reads a body through ``LimitedStream(wsgi.input, CONTENT_LENGTH)``, and a chunked request has no
Content-Length: Django (and DRF, which treats a missing length as no body) would read nothing, so a valid
JSON POST got 422 "bestseller_rank: required field" and a CSV "The CSV is empty". gunicorn decodes the
chunks and marks its ``wsgi.input`` as ending where the body ends (``wsgi.input_terminated``, the WSGI
convention for this); here at most MAX_BODY_BYTES + 1 bytes of it are read, a larger body answers 413 in
the error envelope, and the request then goes on as if it had come with its Content-Length. A server
that does not terminate its input is left alone (reading it could wait for bytes that never come).
"""

from __future__ import annotations

import io

from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse

from estimations.errors import MSG_BODY_TOO_LARGE, json_error
from estimations.limits import body_limit


def is_unsized_chunked(meta: dict) -> bool:
    return (
        "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        and not meta.get("CONTENT_LENGTH")
        and bool(meta.get("wsgi.input_terminated"))
    )


class ChunkedBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_unsized_chunked(request.META):
            limit = body_limit()
            body = request.META["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                response = json_error(413, MSG_BODY_TOO_LARGE.format(limit=limit))
                response["Connection"] = "close"  # the rest of the body is not read
                return response
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # what WSGIRequest reads from
        return self.get_response(request)
