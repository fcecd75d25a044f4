"""/inspect/: admin keys only; the model card, versions, recent estimations with filters, the chart."""

from __future__ import annotations

import re
from html import unescape
from http import HTTPStatus

import pytest
from django.test import Client

from modelops import segments
from tests.helpers import post_json
from tests.modelops.fakes import ordered


@pytest.fixture
def signed_in(client, keys) -> Client:
    response = client.post("/inspect/login", {"key": keys["admin"]})
    assert response.status_code == HTTPStatus.FOUND and response["Location"] == "/inspect/"
    return client


@pytest.fixture
def estimations(api):
    items = [
        {"bestseller_rank": rank, "category": category}
        for rank, category in [(10, "books"), (500, "books"), (5000, "electronics"), (90000, "books")]
    ]
    assert post_json(api, items).status_code == HTTPStatus.CREATED


def rows(response) -> list[str]:
    return re.findall(r'<tr class="estimation">(.*?)</tr>', response.content.decode(), re.S)


class TestAccess:
    def test_anonymous_is_sent_to_sign_in(self, client, mongo_db):
        response = client.get("/inspect/")

        assert response.status_code == HTTPStatus.FOUND and response["Location"] == "/inspect/login"
        assert 'name="key"' in client.get("/inspect/login").content.decode()

    def test_a_write_key_or_a_wrong_key_cannot_sign_in(self, client, keys):
        for key in (keys["write"], "sek_guess"):
            response = client.post("/inspect/login", {"key": key})

            assert response.status_code == HTTPStatus.UNAUTHORIZED
            assert "lacks the admin scope" in response.content.decode()
        assert client.get("/inspect/").status_code == HTTPStatus.FOUND

    def test_an_admin_key_in_the_header_works_without_signing_in(self, client, keys, active_model):
        response = client.get("/inspect/", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")

        assert response.status_code == HTTPStatus.OK

    def test_the_session_keeps_no_key_and_ends_on_sign_out(self, signed_in, keys, active_model):
        assert signed_in.get("/inspect/").status_code == HTTPStatus.OK
        assert keys["admin"] not in signed_in.cookies["sessionid"].value

        signed_in.post("/inspect/logout")

        assert signed_in.get("/inspect/").status_code == HTTPStatus.FOUND

    def test_a_revoked_key_ends_the_session(self, signed_in, mongo_db, active_model):
        mongo_db["api_keys"].update_many({}, {"$set": {"revoked": True}})

        assert signed_in.get("/inspect/").status_code == HTTPStatus.FOUND

    def test_sign_in_needs_the_csrf_token(self, keys):
        strict = Client(enforce_csrf_checks=True)

        response = strict.post("/inspect/login", {"key": keys["admin"]})

        assert response.status_code == HTTPStatus.FORBIDDEN
        # in the error envelope, saying what to do, not Django's HTML page
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["_status"] == "ERR" and body["_error"]["code"] == 403
        assert "CSRF" in body["_error"]["message"] and "Reload the page" in body["_error"]["message"]


class TestPage:
    def test_model_card_versions_and_chart(self, signed_in, active_model, estimations):
        html = signed_in.get("/inspect/").content.decode()

        assert f"Version {active_model['version']}</strong>" in html
        assert active_model["training_data"]["sha256"][:12] in html
        holdout = re.search(r'<table id="holdout-metrics">(.*?)</table>', html, re.S).group(1)
        trained = segments.of_version(active_model)
        assert re.findall(r'<tr class="segment" data-segment="([^"]+)"', holdout) == ordered(trained)
        for name in active_model["categories"]:  # its segments
            assert f'data-segment="{name}"' in html
        assert len(re.findall(r'<polyline class="curve"', html)) == len(trained)

    def test_recent_estimations_newest_first(self, signed_in, active_model, estimations):
        found = rows(signed_in.get("/inspect/"))

        assert len(found) == 4
        assert "<td>90000</td>" in found[0] and "<td>10</td>" in found[-1]

    @pytest.mark.parametrize(
        ("query", "ranks"),
        [
            ("category=books", [90000, 500, 10]),
            ("min_rank=100&max_rank=6000", [5000, 500]),
            ("category=books&max_rank=500", [500, 10]),
        ],
    )
    def test_filters_by_category_and_rank_range(self, signed_in, active_model, estimations, query, ranks):
        found = rows(signed_in.get(f"/inspect/?{query}"))

        assert [int(re.findall(r"<td>(\d+)</td>", row)[0]) for row in found] == ranks

    def test_bad_filters_are_ignored_and_said(self, signed_in, active_model, estimations):
        response = signed_in.get("/inspect/?category=garden&min_rank=lots")

        assert response.status_code == HTTPStatus.OK
        assert "Ignored: unknown category" in response.content.decode()
        assert len(rows(response)) == 4

    @pytest.mark.parametrize(
        ("query", "said"),
        [
            ("min_rank=-1", "Ignored: min rank '-1' must be at least 1 (ranks start at 1)."),
            ("min_rank=0", "Ignored: min rank '0' must be at least 1 (ranks start at 1)."),
            ("max_rank=" + "9" * 30, f"Ignored: max rank '{'9' * 20}…' must be at most 999,999,999."),
            ("max_rank=lots", "Ignored: max rank 'lots' is not a whole number."),
            (
                "min_rank=5&max_rank=1",
                "Ignored: the rank range: min rank 5 is above max rank 1, so nothing could match (swap them).",
            ),
        ],
    )
    def test_a_bad_rank_bound_says_what_is_wrong_with_it(self, signed_in, active_model, estimations, query, said):
        response = signed_in.get(f"/inspect/?{query}")

        assert response.status_code == HTTPStatus.OK
        assert said in unescape(response.content.decode())
        assert len(rows(response)) == 4  # ignored, so every estimation shows

    def test_without_a_model(self, signed_in):
        assert "No model is active" in signed_in.get("/inspect/").content.decode()

    def test_works_offline(self, signed_in, active_model):
        html = signed_in.get("/inspect/").content.decode()

        assert not re.findall(r'(?:src|href)="https?://', html)


class TestLoopSections:
    """Live accuracy (drawn), shadow replays and the audit trail on the page."""

    @pytest.fixture
    def with_actuals(self, api, active_model):
        import json

        created = post_json(api, {"bestseller_rank": 300, "category": "books"}).json()
        body = {"actual_sales": created["estimated_sales"] * 4, "actual_period": "2026-09"}
        response = api.patch(
            f"/estimations/{created['_id']}",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_IF_MATCH=created["_etag"],
        )
        assert response.status_code == HTTPStatus.OK
        return created

    def test_live_accuracy_beside_the_holdout_with_its_chart(self, signed_in, active_model, with_actuals):
        html = signed_in.get("/inspect/").content.decode()

        table = re.search(r'<table class="accuracy-table" data-version="1">(.*?)</table>', html, re.S).group(1)
        books = re.search(r'<tr class="segment" data-segment="books"><td>.*?</td>(.*?)</tr>', table, re.S).group(1)
        cells = re.findall(r"<td>(.*?)</td>", books, re.S)
        # one estimation, four times the estimate: APE 75%, not within 2x
        assert cells[:4] == ["1", cells[1], "75%", "0%"] and cells[1] != "–"
        assert "1 estimation with actuals" in html
        assert re.search(r'<rect class="bar live" data-segment="books"', html)
        assert re.search(r'<rect class="bar holdout" data-segment="books"', html)
        assert not re.search(r'<rect class="bar live" data-segment="toys_games"', html)  # no actuals there

    def test_replay_reports_and_audit_entries(self, signed_in, api, keys, active_model, trained_model, with_actuals):
        from ml.serving import model_registry

        version = model_registry().save(trained_model)["version"]
        response = api.post(f"/models/{version}/replay", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")
        assert response.status_code == HTTPStatus.CREATED

        html = signed_in.get("/inspect/").content.decode()

        assert f"Version {version} against 1: 1 estimations" in html
        assert 'class="replay-table"' in html and "<td>tie</td>" in html  # the same model, trained twice
        entries = re.findall(r'<tr class="audit-entry">(.*?)</tr>', html, re.S)
        assert "model.replay" in entries[0] and "admin-client (api)" in entries[0]
        for key in keys.values():
            assert key not in html

    def test_an_audit_entry_with_an_empty_value_shows_a_dash_not_none(self, signed_in, active_model):
        from core.audit import MODEL_ACTIVATE, Actor, audit_log

        audit_log().record(
            MODEL_ACTIVATE, Actor(name="ops", via="command"), {"model_version": 1}, {"previous_version": None}
        )

        entries = re.findall(r'<tr class="audit-entry">(.*?)</tr>', signed_in.get("/inspect/").content.decode(), re.S)

        assert "previous_version: –" in entries[0]
        assert not any("None" in entry for entry in entries), entries

    def test_sections_say_when_there_is_nothing_yet(self, signed_in):
        html = signed_in.get("/inspect/").content.decode()

        assert "No replay has run yet." in html and "No active model, and no actual sales recorded yet." in html
