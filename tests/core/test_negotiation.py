"""Content negotiation of the estimations resource: the Accept header and ?format= pick the representation."""

from __future__ import annotations

import pytest
from rest_framework.negotiation import DefaultContentNegotiation

from tests.helpers import URL, assert_error_envelope


@pytest.fixture
def negotiations(monkeypatch) -> list[str]:
    """The Accept header of each negotiation DRF works out."""
    worked_out: list[str] = []
    select_renderer = DefaultContentNegotiation.select_renderer

    def counting(self, request, renderers, format_suffix=None):
        worked_out.append(request.META.get("HTTP_ACCEPT"))
        return select_renderer(self, request, renderers, format_suffix)

    monkeypatch.setattr(DefaultContentNegotiation, "select_renderer", counting)
    return worked_out


@pytest.mark.parametrize(
    ("accept", "query", "content_type"),
    [
        ("application/json", {}, "application/json"),
        ("text/csv", {}, "text/csv; charset=utf-8"),
        ("text/html", {}, "text/html; charset=utf-8"),
        ("*/*", {"format": "csv"}, "text/csv; charset=utf-8"),
        ("application/json", {"format": "json"}, "application/json"),
    ],
)
def test_a_repeated_request_gets_the_same_representation(api, accept, query, content_type):
    first = api.get(URL, query, HTTP_ACCEPT=accept)
    second = api.get(URL, query, HTTP_ACCEPT=accept)

    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == second["Content-Type"] == content_type


def test_the_format_parameter_decides_over_the_same_accept_header(api):
    assert api.get(URL, {"format": "csv"})["Content-Type"] == "text/csv; charset=utf-8"
    assert api.get(URL, {"format": "json"})["Content-Type"] == "application/json"
    assert api.get(URL)["Content-Type"] == "application/json"


def test_a_refusal_is_worked_out_once_per_request(api, negotiations):
    for _ in range(2):
        assert_error_envelope(api.get(URL, HTTP_ACCEPT="image/png"), 406)

    # Each refused request worked it out, once: the error answers in JSON without negotiating again
    assert negotiations == ["image/png"] * 2


def test_many_distinct_accept_headers_each_get_json(api):
    accepts = [f"application/json; q=0.{digit}" for digit in range(1, 5)]
    for accept in accepts * 2:
        assert api.get(URL, HTTP_ACCEPT=accept)["Content-Type"] == "application/json"
