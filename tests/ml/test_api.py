"""GET /models, GET /models/{version}, and activation over HTTP for admin API keys only."""

from __future__ import annotations

import io
from http import HTTPStatus

import pytest
from django.core.management import call_command

from core.api_keys import ApiKeyStore
from ml.serving import model_registry
from tests.helpers import assert_error_envelope


@pytest.fixture
def two_versions(api, trained_model) -> int:
    """Version 1 active (from the api fixture) and version 2 stored; returns 2."""
    return model_registry().save(trained_model)["version"]


def test_list_shows_versions_metrics_and_which_is_active(api, two_versions):
    body = api.get("/models").json()

    assert body["active_version"] == 1
    assert [(m["version"], m["active"]) for m in body["_items"]] == [(2, False), (1, True)]
    first = body["_items"][1]
    assert first["metrics"]["overall"]["rows"] == 8000
    assert "signature" not in first and "file_id" not in first["artifact"]
    assert first["created"].endswith(" GMT")


def test_a_version_lists_its_marketplaces_and_their_categories(api, two_versions, mongo_db):
    from ml.registry import MODELS
    from ml.sample_data import CURVES, SCALES

    shown = api.get("/models/2").json()
    # A version from before marketplaces (bare categories in its metadata) reads as us-only.
    mongo_db[MODELS].update_one({"version": 2}, {"$set": {"categories": ["books", "toys_games"]}})
    before = api.get("/models/2").json()

    assert shown["markets"] == {market: sorted(CURVES) for market in sorted(SCALES)}
    assert "uk/books" in shown["categories"] and "books" in shown["categories"]
    assert before["markets"] == {"us": ["books", "toys_games"]}


def test_one_version_and_an_unknown_one(api, two_versions):
    assert api.get("/models/2").json()["version"] == 2
    assert "/models" in assert_error_envelope(api.get("/models/9"), 404)["_error"]["message"]
    assert_error_envelope(api.get("/models/abc"), 404)


class TestActivationOverHttp:
    def test_admin_key_activates_and_estimates_follow(self, api, two_versions, keys, settings):
        settings.MODEL_REFRESH_SECONDS = 0

        response = api.post("/models/2/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")

        assert response.status_code == HTTPStatus.OK, response.json()
        assert response.json()["active"] is True
        assert model_registry().active_version() == 2
        created = api.post("/estimations", {"bestseller_rank": 10}, format="json").json()
        assert created["model_version"] == 2

    def test_bearer_works_too(self, api, two_versions, keys):
        response = api.post("/models/2/activate", HTTP_AUTHORIZATION=f"Bearer {keys['admin']}")

        assert response.status_code == HTTPStatus.OK

    def test_no_key_is_401_and_nothing_changes(self, api, two_versions):
        response = api.post("/models/2/activate")

        assert "admin" in assert_error_envelope(response, 401)["_error"]["message"]
        assert response["WWW-Authenticate"].startswith("Api-Key")
        assert model_registry().active_version() == 1

    def test_unknown_key_is_401(self, api, two_versions, keys):
        assert_error_envelope(api.post("/models/2/activate", HTTP_AUTHORIZATION="Api-Key sek_forged"), 401)
        assert model_registry().active_version() == 1

    def test_write_key_is_403(self, api, two_versions, keys):
        response = api.post("/models/2/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}")

        assert "'write-client' has 'write'" in assert_error_envelope(response, 403)["_error"]["message"]
        assert model_registry().active_version() == 1

    def test_unknown_version_is_404(self, api, keys):
        assert_error_envelope(api.post("/models/9/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}"), 404)

    def test_a_tampered_version_is_409_and_not_activated(self, api, two_versions, keys):
        from tests.helpers import tamper_bytes

        tamper_bytes(model_registry(), two_versions)

        response = api.post("/models/2/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")

        assert "checksum" in assert_error_envelope(response, 409)["_error"]["message"]
        assert model_registry().active_version() == 1


class TestApiKeys:
    def test_command_prints_the_key_once_and_stores_only_its_hash(self, mongo_db):
        out = io.StringIO()

        call_command("create_api_key", "--name", "ci", "--scope", "admin", stdout=out, stderr=io.StringIO())

        key = out.getvalue().strip().splitlines()[-1]
        assert key.startswith("sek_") and len(key) > 40
        stored = mongo_db["api_keys"].find_one({"name": "ci"})
        assert stored["scope"] == "admin" and key not in str(stored)
        assert ApiKeyStore(mongo_db["api_keys"]).find(key)["name"] == "ci"

    def test_a_revoked_key_no_longer_works(self, api, two_versions, keys, mongo_db):
        mongo_db["api_keys"].update_many({}, {"$set": {"revoked": True}})

        assert_error_envelope(api.post("/models/2/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}"), 401)
