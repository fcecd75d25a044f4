"""Every URL answers with and without its trailing slash, as the README says (core/url_slash.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

PATHS = [
    "/estimations",
    "/models",
    "/models/1",
    "/models/1/accuracy",
    "/models/1/replays",
    "/audit",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/inspect/",
    "/inspect/login",
    "/api/schema/",
    "/api/docs/",
    "/api/redoc/",
]


def twin(path: str) -> str:
    return path[:-1] if path.endswith("/") else path + "/"


@pytest.mark.parametrize("path", PATHS)
def test_a_url_answers_the_same_with_and_without_its_trailing_slash(api, path):
    first, second = api.get(path), api.get(twin(path))

    assert first.status_code != 404, (path, first.content[:200])
    assert second.status_code == first.status_code, (twin(path), second.content[:200])


def test_a_write_to_the_twin_is_served_not_redirected(api):
    response = api.post("/models/1/activate/", {}, format="json")

    assert response.status_code in (401, 403), response.content  # the view itself answered: no key sent


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("model", [3], "/models/3"),
        ("audit", [], "/audit"),
        ("inspect", [], "/inspect/"),
        ("swagger-ui", [], "/api/docs/"),
    ],
)
def test_links_name_each_url_as_it_always_was(name, args, expected):
    assert reverse(name, args=args) == expected


@pytest.mark.parametrize("path", ["/", "/models", "/models/1", "/audit"])
def test_a_format_a_url_does_not_answer_in_is_a_406_listing_those_it_does(api, path):
    response = api.get(path, {"format": "csv"})

    assert response.status_code == 406, response.content[:200]
    message = response.json()["_error"]["message"]
    assert message == "There is no 'csv' representation here: format takes json or api."


def test_an_accept_header_no_renderer_satisfies_lists_the_media_types(api):
    response = api.get("/models/1", HTTP_ACCEPT="application/xml")

    assert response.status_code == 406
    assert response.json()["_error"]["message"] == (
        "Could not satisfy the request Accept header: this URL answers in application/json or text/html."
    )


READ_ONLY = ["/health/live", "/health/ready", "/metrics", "/api/schema/", "/api/docs/", "/api/redoc/"]


@pytest.mark.parametrize("path", READ_ONLY)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_read_only_page_answers_another_method_with_405_in_the_envelope(mongo_db, active_model, path, method):
    from django.test import Client

    from tests.helpers import assert_error_envelope

    client = Client(enforce_csrf_checks=True)  # as a browser or curl meets it: no CSRF pass

    response = getattr(client, method)(path, "{}", content_type="application/json")

    body = assert_error_envelope(response, 405)
    assert response["Allow"] == "GET, HEAD"
    assert path in body["_error"]["message"] and "GET and HEAD" in body["_error"]["message"]
    assert client.get(path).status_code in (200, 503)  # ready answers 503 while the store is not ready
