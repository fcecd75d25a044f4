"""Request ids, one log line per request, and Prometheus metrics.

Every request gets an id: the client's ``X-Request-ID`` when it is a sane token, else a new one. It is
returned in the response, put on every log record made while the request runs, and logged with the
method, route, status and duration. No header values (API keys included) are ever logged.

Metrics are kept per process; with several gunicorn workers, set PROMETHEUS_MULTIPROC_DIR (the
container does) and /metrics adds up every worker's.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
import uuid

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

logger = logging.getLogger("estimator.requests")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ESTIMATIONS = Counter("estimations_created_total", "Estimations made and stored", ["model_version"])
ITEM_READS = Counter(
    "estimation_item_reads_total", "GET /estimations/{id} reads, by where the document came from", ["source"]
)
ACTIVE_MODEL = Gauge("model_active_version", "The model version this process serves", multiprocess_mode="livemax")
MODEL_LOAD_FAILURES = Counter("model_load_failures_total", "Model versions refused or failed to load")


def current_request_id() -> str:
    return _request_id.get()


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


class RequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _VALID_REQUEST_ID.match(offered) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            route = _route(request)
            response[REQUEST_ID_HEADER] = request_id
            REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            LATENCY.labels(request.method, route).observe(elapsed)
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


def metrics_view(request) -> HttpResponse:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
