"""Request ids, one log line per request, and Prometheus metrics.

Every request gets an id (the client's sane ``X-Request-ID``, else a new one), returned in the response,
put on every log record made meanwhile and logged with method, route, status and duration; no header
value is ever logged. With several workers, PROMETHEUS_MULTIPROC_DIR lets /metrics add up every worker's.
"""

from __future__ import annotations

import contextvars
import logging
import os
import secrets
import time

from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from core.limits import is_token

logger = logging.getLogger("estimator.requests")

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ESTIMATIONS = Counter("estimations_created_total", "Estimations made and stored", ["model_version"])
ACTIVE_MODEL = Gauge("model_active_version", "The model version this process serves", multiprocess_mode="livemax")
MODEL_LOAD_FAILURES = Counter("model_load_failures_total", "Model versions refused or failed to load")
MODEL_REFRESH_FAILURES = Counter(
    "model_refresh_failures_total", "Checks for a newly active model that failed (the loaded model kept serving)"
)


# Any other method is answered 405 and counted as "other": a client making up methods must not make up
# time series (each one kept in every worker and in every scrape, for as long as the process lives).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str | None) -> str:
    return method if method in KNOWN_METHODS else "other"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


def _route(request) -> str:
    """The URL's name (estimations-detail, ...), not its path: one time series per endpoint, whatever the ids."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or "unnamed"


def _without_body(response) -> None:
    """A HEAD answer carries the GET's headers (Content-Length included) and no body byte: the server
    must not send one (gunicorn logs each it drops), and Django's own handler leaves them in."""
    if response.streaming:
        close = getattr(response.streaming_content, "close", None)
        if callable(close):
            close()
        response.streaming_content = []
        return
    if not response.has_header("Content-Length") and response.content:
        response["Content-Length"] = str(len(response.content))
    response.content = b""


class RequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if is_token(offered, 128) else secrets.token_hex(16)
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            route = _route(request)
            response[REQUEST_ID_HEADER] = request_id
            if request.method == "HEAD":
                _without_body(response)
            method = method_label(request.method)
            REQUESTS.labels(method, route, str(response.status_code)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            if not logger.isEnabledFor(logging.INFO):
                return response  # the record's fields below are not even gathered
            user = getattr(getattr(request, "user", None), "name", None)
            logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                elapsed * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "api_key_name": user,
                },
            )
            return response
        finally:
            _request_id.reset(token)


# Collectors whose figures are made when /metrics is read (from the database, the same whichever worker
# answers), not kept per process: the apps above core add theirs (collect_at_scrape) when they start.
_AT_SCRAPE = CollectorRegistry(auto_describe=False)
_at_scrape: list[object] = []


def collect_at_scrape(collector) -> None:
    """Serve ``collector``'s ``collect()`` on /metrics, beside the processes' own metrics; once only."""
    if collector not in _at_scrape:
        _at_scrape.append(collector)
        _AT_SCRAPE.register(collector)


def metrics_view(request) -> HttpResponse:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    body += generate_latest(_AT_SCRAPE)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
