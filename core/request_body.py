"""Request bodies sent with ``Transfer-Encoding: chunked``: read, within MAX_BODY_BYTES, like any other.

More: docs/architecture.md, "core/request_body.py".
"""

from __future__ import annotations

import tempfile

from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse

from core.errors import MSG_BODY_TOO_LARGE, json_error
from core.limits import body_limit


def is_unsized_chunked(meta: dict) -> bool:
    return (
        "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        and not meta.get("CONTENT_LENGTH")
        and bool(meta.get("wsgi.input_terminated"))
    )


IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024


def view_body_limit(view_func) -> int:
    """The view's own ``max_body_bytes`` (a number, or a callable for one read from the settings), else
    MAX_BODY_BYTES."""
    own = getattr(getattr(view_func, "cls", view_func), "max_body_bytes", None)
    return int(own() if callable(own) else own) if own is not None else body_limit()


class ChunkedBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            body = request.__dict__.pop("_chunked_body", None)
            if body is not None:
                body.close()  # the parsers have read it: the answer is made

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not is_unsized_chunked(request.META):
            return None
        limit = view_body_limit(view_func)
        source = request.META["wsgi.input"]
        body = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)
        size = 0
        while size <= limit and (chunk := source.read(min(CHUNK, limit + 1 - size))):
            size += len(chunk)
            body.write(chunk)
        if size > limit:
            body.close()
            response = json_error(413, MSG_BODY_TOO_LARGE.format(limit=limit))
            response["Connection"] = "close"  # the rest of the body is not read
            return response
        body.seek(0)
        request._chunked_body = body  # type: ignore[attr-defined]
        request.META["CONTENT_LENGTH"] = str(size)
        request._stream = LimitedStream(body, size)  # what WSGIRequest reads from
        return None
