"""Content negotiation of the estimations resource: DRF's answer, worked out once per distinct input."""

from __future__ import annotations

import pytest
from rest_framework.negotiation import DefaultContentNegotiation

from estimations import views
from tests.helpers import URL, assert_error_envelope


@pytest.fixture
def negotiations(monkeypatch) -> list[str]:
    """A fresh store of answers, and the Accept header of each negotiation DRF actually works out."""
    monkeypatch.setattr(views, "NEGOTIATED", {})
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
def test_a_repeated_request_gets_the_same_representation_without_negotiating_again(
    api, negotiations, accept, query, content_type
):
    first = api.get(URL, query, HTTP_ACCEPT=accept)
    second = api.get(URL, query, HTTP_ACCEPT=accept)

    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == second["Content-Type"] == content_type
    assert negotiations == [accept]


def test_the_format_parameter_is_part_of_the_answer_kept(api, negotiations):
    assert api.get(URL, {"format": "csv"})["Content-Type"] == "text/csv; charset=utf-8"
    assert api.get(URL, {"format": "json"})["Content-Type"] == "application/json"
    assert api.get(URL)["Content-Type"] == "application/json"
    assert len(negotiations) == 3


def test_a_refusal_is_never_kept(api, negotiations):
    for _ in range(2):
        assert_error_envelope(api.get(URL, HTTP_ACCEPT="image/png"), 406)

    # Each refused request worked it out, once: the error answers in JSON without negotiating again
    assert negotiations == ["image/png"] * 2
    assert views.NEGOTIATED == {}


def test_distinct_inputs_beyond_the_bound_are_worked_out_each_time(api, negotiations, monkeypatch):
    monkeypatch.setattr(views, "NEGOTIATED_MAX", 2)
    accepts = [f"application/json; q=0.{digit}" for digit in range(1, 5)]
    for accept in accepts * 2:
        assert api.get(URL, HTTP_ACCEPT=accept)["Content-Type"] == "application/json"

    assert len(views.NEGOTIATED) == 2
    # The first two were kept; the other two were worked out on each of their requests
    assert negotiations == [*accepts, *accepts[2:]]


def test_an_answer_kept_for_a_renderer_no_longer_offered_is_worked_out_afresh(api, negotiations):
    from rest_framework.renderers import BaseRenderer

    class Gone(BaseRenderer):
        media_type = "application/x-gone"

    # Given an answer kept from before the renderers changed (settings)
    views.NEGOTIATED[(True, None, "application/json", None)] = (Gone, Gone.media_type)

    response = api.get(URL, HTTP_ACCEPT="application/json")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert negotiations == ["application/json"]
