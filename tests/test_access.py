"""Who may write, throttling per key and per address, and production security headers."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest
from django.core.cache import cache

from .estimations.test_api_create import assert_error_envelope, post_json


@pytest.fixture
def keys_required(settings):
    settings.ALLOW_ANONYMOUS_WRITES = False


class TestWrites:
    def test_reading_needs_no_key(self, api, keys_required):
        assert api.get("/estimations").status_code == HTTPStatus.OK
        assert api.get("/models").status_code == HTTPStatus.OK

    def test_writing_without_a_key_is_401_and_stores_nothing(self, api, keys_required, mongo_db):
        response = post_json(api, {"bestseller_rank": 5})

        assert "'write' scope" in assert_error_envelope(response, 401)["_error"]["message"]
        assert mongo_db["estimations"].count_documents({}) == 0

    @pytest.mark.parametrize("scope", ["write", "admin"])
    def test_a_write_or_admin_key_may_write(self, api, keys_required, keys, scope):
        response = post_json(api, {"bestseller_rank": 5}, HTTP_AUTHORIZATION=f"Api-Key {keys[scope]}")

        assert response.status_code == HTTPStatus.CREATED, response.json()

    def test_delete_needs_a_key_too(self, api, keys_required, keys, settings):
        settings.ALLOW_ANONYMOUS_WRITES = True
        created = post_json(api, {"bestseller_rank": 5}).json()
        settings.ALLOW_ANONYMOUS_WRITES = False

        response = api.delete(f"/estimations/{created['_id']}", HTTP_IF_MATCH=created["_etag"])

        assert_error_envelope(response, 401)

    def test_an_unknown_key_is_401_even_where_no_key_is_needed(self, api, keys):
        assert_error_envelope(api.get("/estimations", HTTP_AUTHORIZATION="Bearer sek_nope"), 401)

    def test_no_key_value_is_ever_logged(self, api, keys_required, keys, caplog):
        with caplog.at_level(logging.DEBUG):
            post_json(api, {"bestseller_rank": 5}, HTTP_AUTHORIZATION=f"Api-Key {keys['write']}")
            post_json(api, {"bestseller_rank": 5}, HTTP_AUTHORIZATION="Api-Key sek_wrong_key_value")
            api.post("/models/1/activate", HTTP_AUTHORIZATION=f"Bearer {keys['admin']}")

        logged = caplog.text + " ".join(str(record.__dict__) for record in caplog.records)
        assert "write-client" in logged  # the key's name is logged, to tell clients apart
        for secret in (keys["write"], keys["admin"], "sek_wrong_key_value"):
            assert secret not in logged


class TestThrottling:
    @pytest.fixture(autouse=True)
    def fresh_counters(self):
        cache.clear()
        yield
        cache.clear()

    def test_per_address_429_with_retry_after(self, api, settings):
        settings.THROTTLE_ANON_RATE = "3/min"

        statuses = [api.get("/estimations").status_code for _ in range(4)]

        assert statuses == [200, 200, 200, 429]
        response = api.get("/estimations")
        assert "throttled" in assert_error_envelope(response, 429)["_error"]["message"].lower()
        assert 0 < int(response["Retry-After"]) <= 60

    def test_each_key_has_its_own_budget(self, api, keys, settings):
        settings.THROTTLE_ANON_RATE = "2/min"
        settings.THROTTLE_KEY_RATE = "3/min"

        anonymous = [api.get("/estimations").status_code for _ in range(3)]
        writer = [api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}").status_code for _ in range(4)]
        admin = api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}").status_code

        assert anonymous == [200, 200, 429]
        assert writer == [200, 200, 200, 429]
        assert admin == 200

    def test_behind_a_proxy_each_client_address_counts(self, api, settings):
        settings.THROTTLE_ANON_RATE = "1/min"
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

        first = api.get("/estimations", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code
        other = api.get("/estimations", HTTP_X_FORWARDED_FOR="203.0.113.2").status_code
        again = api.get("/estimations", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code

        assert (first, other, again) == (200, 200, 429)


class TestSecurityHeaders:
    def test_on_every_answer(self, api):
        response = api.get("/estimations")

        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"

    def test_https_mode_redirects_and_sets_hsts(self, client, mongo_db, settings):
        # The redirect is the deployment's, not the API's: a plain client, not the schema-checking one.
        settings.SECURE_SSL_REDIRECT = True
        settings.SECURE_HSTS_SECONDS = 31_536_000
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

        plain = client.get("/estimations")
        secure = client.get("/estimations", HTTP_X_FORWARDED_PROTO="https")

        assert plain.status_code == HTTPStatus.MOVED_PERMANENTLY and plain["Location"].startswith("https://")
        assert secure["Strict-Transport-Security"].startswith("max-age=31536000")
