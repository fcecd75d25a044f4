"""/metrics, request ids and the request log (core/observability.py); /health/live and /metrics need no model or key."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

import pytest

from core.observability import REQUEST_ID_HEADER
from tests.helpers import assert_error_envelope, post_json


def metric(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{key}="{value}"' in line for key, value in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


class TestMetrics:
    def test_prometheus_text_with_requests_latency_estimations_and_model(self, api, active_model):
        before = api.get("/metrics").content.decode()

        post_json(api, [{"bestseller_rank": 1}, {"bestseller_rank": 2}])
        api.get("/estimations/6b0aa8a7e49da0a6640161ec")
        after_response = api.get("/metrics")
        after = after_response.content.decode()

        assert after_response["Content-Type"].startswith("text/plain")
        version = str(active_model["version"])
        assert (
            metric(after, "estimations_created_total", model_version=version)
            - metric(before, "estimations_created_total", model_version=version)
            == 2
        )
        assert metric(after, "http_requests_total", method="GET", route="estimations-detail", status="404") >= 1
        assert metric(after, "http_request_duration_seconds_count", method="POST", route="estimations-list") >= 1
        assert metric(after, "model_active_version") == active_model["version"]

    def test_a_made_up_method_is_counted_as_other_not_as_a_series_of_its_own(self, api):
        refused = {"method": "other", "route": "estimations-list", "status": "405"}
        before = metric(api.get("/metrics").content.decode(), "http_requests_total", **refused)

        for method in ("BREW", "PROPFIND", "X-MADE-UP"):
            assert_error_envelope(api.generic(method, "/estimations"), 405)
        after = api.get("/metrics").content.decode()

        assert metric(after, "http_requests_total", **refused) == before + 3
        assert 'method="BREW"' not in after and 'method="X-MADE-UP"' not in after

    def test_model_load_failures_are_counted(self, api, active_model, trained_model, settings):
        from ml import serving
        from tests.helpers import tamper_bytes

        settings.MODEL_REFRESH_SECONDS = 0
        before = metric(api.get("/metrics").content.decode(), "model_load_failures_total")
        registry = serving.model_registry()
        bad = registry.save(trained_model)["version"]
        tamper_bytes(registry, bad)
        registry.state.replace_one({"_id": "active"}, {"_id": "active", "version": bad})

        post_json(api, {"bestseller_rank": 3})

        assert metric(api.get("/metrics").content.decode(), "model_load_failures_total") == before + 1


class TestRequestIds:
    def test_a_new_id_is_returned_on_every_answer(self, api):
        first, second = api.get("/estimations"), api.get("/nowhere")

        assert len(first[REQUEST_ID_HEADER]) == 32 and len(second[REQUEST_ID_HEADER]) == 32
        assert first[REQUEST_ID_HEADER] != second[REQUEST_ID_HEADER]

    def test_the_clients_id_is_kept_and_a_bad_one_replaced(self, api):
        assert api.get("/", HTTP_X_REQUEST_ID="trace-42.a")[REQUEST_ID_HEADER] == "trace-42.a"
        assert api.get("/", HTTP_X_REQUEST_ID="bad id\nwith newline")[REQUEST_ID_HEADER] != "bad id\nwith newline"

    def test_one_log_line_per_request_with_its_id(self, api, caplog):
        with caplog.at_level(logging.INFO, logger="estimator.requests"):
            api.get("/estimations", HTTP_X_REQUEST_ID="req-1")

        lines = [record for record in caplog.records if record.name == "estimator.requests"]
        assert len(lines) == 1
        record = lines[0]
        assert record.request_id == "req-1" and record.status == 200 and record.route == "estimations-list"
        assert record.getMessage().startswith("GET /estimations 200")

    def test_with_the_request_log_off_requests_are_still_counted_and_answered_with_an_id(self, api, caplog):
        before = metric(api.get("/metrics").content.decode(), "http_requests_total", route="health-live")

        with caplog.at_level(logging.WARNING, logger="estimator.requests"):
            response = api.get("/health/live", HTTP_X_REQUEST_ID="quiet-1")

        assert response[REQUEST_ID_HEADER] == "quiet-1"
        assert not [record for record in caplog.records if "/health/live" in record.getMessage()]
        assert metric(api.get("/metrics").content.decode(), "http_requests_total", route="health-live") == before + 1

    def test_json_log_format(self, settings):
        from pythonjsonlogger.json import JsonFormatter

        options = dict(settings.LOGGING["formatters"]["json"])
        assert options.pop("()") == "pythonjsonlogger.json.JsonFormatter"
        formatter = JsonFormatter(**options)
        record = logging.LogRecord("estimator.requests", logging.INFO, __file__, 1, "GET / 200", None, None)
        record.request_id = "abc"
        record.status = 200

        line = json.loads(formatter.format(record))

        assert line["message"] == "GET / 200" and line["request_id"] == "abc" and line["status"] == 200
        assert line["level"] == "INFO" and "time" in line


@pytest.mark.parametrize("path", ["/health/live", "/metrics"])
def test_operations_endpoints_answer_without_a_model_or_key(client, path):
    assert client.get(path).status_code == HTTPStatus.OK
