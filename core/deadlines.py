"""Time limits that keep a hung database or a slow client from holding a request (docs/reliability.md).

More: docs/architecture.md, "core/deadlines.py".
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import pymongo
from django.conf import settings

logger = logging.getLogger(__name__)

# Paths whose database work is not held to one request's budget (see the module docstring).
UNBOUNDED_PREFIXES = ("/models",)
# A bulk insert stores up to BULK_MAX_ITEMS documents in one request: the budget grows by a second for
# each this many bytes of request body (a CSV of 10,000 estimations, about 250 KB, gets 4 s more).
BUDGET_BYTES_PER_SECOND = 64 * 1024


def _body_to_read_first(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return 0 < length and (limit is None or length <= limit)


def request_budget(request) -> float:
    """Seconds of database work the request may take: MONGO_TIMEOUT_MS, and more for a big body."""
    try:
        length = max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        length = 0
    return settings.MONGO_TIMEOUT_MS / 1000 + length / BUDGET_BYTES_PER_SECOND


class DatabaseDeadlineMiddleware:
    def __init__(self, get_response: Callable[[Any], Any]):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(UNBOUNDED_PREFIXES) or settings.MONGO_TIMEOUT_MS <= 0:
            return self.get_response(request)
        # The budget is for the database, not for the client: a body (of a size the service takes) is read
        # first, within its own deadline (ClientBodyDeadline), and the parsers then read it from memory.
        if _body_to_read_first(request):
            from django.http import UnreadablePostError

            from core.errors import RequestTimeout, json_error

            try:
                request.body  # noqa: B018 - read and kept by Django
            except UnreadablePostError:  # the body stopped coming (or the client went away)
                return json_error(408, str(RequestTimeout.default_detail))
        with pymongo.timeout(request_budget(request)):
            return self.get_response(request)


# --- request bodies -----------------------------------------------------------------------------------

MSG_BODY_TIMEOUT = (
    "The request body did not arrive in time: {seconds:g} s plus its size at {rate} bytes a second were "
    "allowed, and {received} bytes came. Nothing was done; send the request again in one go."
)
PIECE = 64 * 1024  # each read waits for at most this much, so the allowance is checked as the body comes


class ClientBodyTimeout(OSError):
    """The body stopped coming: Django reads it as an unreadable body; the answer is a 408."""


def _gevent_timeout() -> Any:
    """gevent's Timeout when gevent patched the socket module (the gevent workers), else None."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return None
    if not monkey.is_module_patched("socket"):
        return None
    from gevent import Timeout

    return Timeout


class DeadlineInput:
    """``wsgi.input`` that refuses to wait for a body that falls behind its allowance."""

    def __init__(self, stream: Any, sock: Any, seconds: float, rate: int, length: int | None = None):
        self.stream = stream
        self.length = length
        self.sock = sock
        self.seconds = seconds
        self.rate = rate
        self.started = time.monotonic()
        self.received = 0
        self.timed_out = False
        self._gevent_timeout = _gevent_timeout()

    def _remaining(self) -> float:
        allowed = self.seconds + (self.received / self.rate if self.rate > 0 else 0.0)
        return self.started + allowed - time.monotonic()

    def _piece(self, read: Callable[[int], bytes], size: int) -> bytes:
        if self.timed_out:
            raise ClientBodyTimeout("the request body did not arrive in time")
        remaining = self._remaining()
        previous = self.sock.gettimeout() if self.sock is not None and self._gevent_timeout is None else None
        try:
            if remaining <= 0:
                raise TimeoutError
            if self._gevent_timeout is not None:
                # One deadline for the whole piece, however many recv() it takes.
                with self._gevent_timeout(remaining, TimeoutError):
                    data = read(size)
            else:
                # gthread: each wait for the socket is bounded (a stall, not the total).
                if self.sock is not None:
                    self.sock.settimeout(remaining)
                data = read(size)
        except TimeoutError as exc:
            self.timed_out = True
            raise ClientBodyTimeout("the request body did not arrive in time") from exc
        finally:
            if self.sock is not None and self._gevent_timeout is None:
                self.sock.settimeout(previous)  # as the worker had it, for the next request on the connection
        self.received += len(data)
        return data

    def arrived(self) -> int:
        """Bytes of the body that came: those handed on, plus those a read that timed out left in the
        server's buffers (gunicorn's Body and its unreader keep what came before the stall), at most
        the declared Content-Length (a buffer may hold the start of a pipelined request)."""
        held = 0
        for buffer in (
            getattr(self.stream, "buf", None),
            getattr(getattr(self.stream, "reader", None), "unreader", None),
        ):
            if buffer is not None and not isinstance(buffer, io.BytesIO):
                buffer = getattr(buffer, "buf", None)
            if isinstance(buffer, io.BytesIO):
                held += len(buffer.getvalue())
        total = self.received + held
        return min(total, self.length) if self.length is not None else total

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            parts, wanted = [], size
            while wanted > 0:
                data = self._piece(self.stream.read, min(wanted, PIECE))
                if not data:
                    break
                parts.append(data)
                wanted -= len(data)
            return b"".join(parts)
        parts = []
        while data := self._piece(self.stream.read, PIECE):
            parts.append(data)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        limit = PIECE if size is None or size < 0 else min(size, PIECE)
        return self._piece(self.stream.readline, limit)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")


def body_timeout_answer(reader: DeadlineInput) -> tuple[str, list[tuple[str, str]], bytes]:
    message = MSG_BODY_TIMEOUT.format(seconds=reader.seconds, rate=reader.rate, received=reader.arrived())
    body = json.dumps({"_status": "ERR", "_error": {"code": 408, "message": message}}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
    return "408 Request Timeout", headers, body


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


class ClientBodyDeadline:
    """WSGI middleware: see the module docstring. Whatever the application made of a body that stopped
    coming (an unreadable body, a parse error), the answer is a 408 and the connection is closed."""

    def __init__(self, application: Callable[..., Iterable[bytes]]):
        self.application = application

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seconds = float(settings.CLIENT_BODY_TIMEOUT)
        has_body = (
            environ.get("CONTENT_LENGTH") not in (None, "", "0")
            or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        )
        if seconds <= 0 or not has_body or "wsgi.input" not in environ:
            return self.application(environ, start_response)
        reader = DeadlineInput(
            environ["wsgi.input"],
            environ.get("gunicorn.socket"),
            seconds,
            settings.CLIENT_BODY_MIN_RATE,
            _declared_length(environ),
        )
        environ["wsgi.input"] = reader
        answered: list[Any] = []

        def deferred_start_response(status, headers, exc_info=None):
            answered[:] = [status, headers, exc_info]
            return lambda data: None  # Django never uses write()

        result = self.application(environ, deferred_start_response)
        if reader.timed_out:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            status, headers, body = body_timeout_answer(reader)
            logger.info("request body timed out after %d bytes", reader.arrived())
            # gunicorn drops an application's Connection header and says keep-alive unless told to close;
            # its start_response is a method of the response, which can be.
            force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
            if callable(force_close):
                force_close()
            start_response(status, headers)
            return [body]
        start_response(*answered)
        return result
