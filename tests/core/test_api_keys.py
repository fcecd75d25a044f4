"""Who may write, throttling per key and per address, and production security headers."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest

from core import throttling
from core.api_keys import ApiKeyStore
from tests.helpers import assert_error_envelope, post_json


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
        throttling.reset()
        yield
        throttling.reset()

    def test_per_address_429_with_retry_after(self, api, settings):
        settings.THROTTLE_ANON_RATE = "3/min"

        statuses = [api.get("/estimations").status_code for _ in range(4)]

        assert statuses == [200, 200, 200, 429]
        response = api.get("/estimations")
        assert "throttled" in assert_error_envelope(response, 429)["_error"]["message"].lower()
        assert 0 < int(response["Retry-After"]) <= 60

    def test_each_key_has_its_own_budget_and_spends_no_address_budget(self, api, keys, settings):
        settings.THROTTLE_ANON_RATE = "2/min"
        settings.THROTTLE_KEY_RATE = "3/min"

        writer = [api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}").status_code for _ in range(4)]
        admin = api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}").status_code
        anonymous = [api.get("/estimations").status_code for _ in range(3)]
        # A key this worker has seen valid is still looked up and served when its address is over budget
        admin_again = api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}").status_code

        assert writer == [200, 200, 200, 429]
        assert admin == 200
        assert anonymous == [200, 200, 429]  # the five keyed requests spent nothing of the address's budget
        assert admin_again == 200
        message = api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}").json()["_error"]["message"]
        assert "API key has spent its budget of 3/min" in message

    def test_a_bad_key_spends_the_address_budget_then_gets_429_with_no_key_lookup(
        self, api, keys, settings, monkeypatch
    ):
        settings.THROTTLE_ANON_RATE = "3/min"
        lookups = []
        find = ApiKeyStore.find_by_hash
        monkeypatch.setattr(ApiKeyStore, "find_by_hash", lambda store, h: lookups.append(h) or find(store, h))
        bogus = {"HTTP_AUTHORIZATION": "Api-Key x"}

        statuses = [api.get("/estimations", **bogus).status_code for _ in range(3)]
        looked_up = len(lookups)
        over = [api.get("/estimations", **bogus) for _ in range(20)]

        assert statuses == [401, 401, 401] and looked_up == 3
        assert {response.status_code for response in over} == {429}
        assert len(lookups) == looked_up  # over budget: no bad key reaches the database
        assert "client address has spent its budget" in assert_error_envelope(over[-1], 429)["_error"]["message"]
        assert 0 < int(over[-1]["Retry-After"]) <= 60
        assert api.get("/estimations").status_code == 429  # and anonymous requests share that budget

    def test_after_an_anonymous_429_bogus_keys_get_429_not_401(self, api, keys, settings, monkeypatch):
        settings.THROTTLE_ANON_RATE = "2/min"
        lookups = []
        find = ApiKeyStore.find_by_hash
        monkeypatch.setattr(ApiKeyStore, "find_by_hash", lambda store, h: lookups.append(h) or find(store, h))

        anonymous = [api.get("/estimations").status_code for _ in range(3)]
        bogus = [api.get("/estimations", HTTP_AUTHORIZATION=f"Bearer sek_{n}").status_code for n in range(10)]
        # A valid key never seen by this worker cannot be told from a bogus one without a lookup: 429 too
        unseen = api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}").status_code

        assert anonymous == [200, 200, 429]
        assert bogus == [429] * 10 and unseen == 429
        assert lookups == []

    def test_behind_a_proxy_each_client_address_counts(self, api, settings):
        settings.THROTTLE_ANON_RATE = "1/min"
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

        first = api.get("/estimations", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code
        other = api.get("/estimations", HTTP_X_FORWARDED_FOR="203.0.113.2").status_code
        again = api.get("/estimations", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code

        assert (first, other, again) == (200, 200, 429)


class TestSignInLimit:
    @pytest.fixture(autouse=True)
    def fresh_counters(self, settings):
        settings.THROTTLE_LOGIN_RATE = "3/min"
        throttling.reset()
        yield
        throttling.reset()

    def test_sign_in_attempts_past_the_budget_answer_429_and_no_key_is_checked(self, client, keys, caplog, monkeypatch):
        lookups = []
        find = ApiKeyStore.find_by_hash
        monkeypatch.setattr(ApiKeyStore, "find_by_hash", lambda store, h: lookups.append(h) or find(store, h))

        with caplog.at_level(logging.INFO):
            tries = [client.post("/inspect/login", {"key": f"sek_guess_{n}"}) for n in range(3)]
            over = client.post("/inspect/login", {"key": "sek_guess_last"})
            admin = client.post("/inspect/login", {"key": keys["admin"]})  # even the right key waits now

        assert [response.status_code for response in tries] == [401, 401, 401] and len(lookups) == 3
        assert over.status_code == admin.status_code == HTTPStatus.TOO_MANY_REQUESTS and len(lookups) == 3
        page = over.content.decode()
        assert "Too many sign-in attempts from your address (3/min)" in page and 'name="key"' in page
        assert 0 < int(over["Retry-After"]) <= 60
        assert client.get("/inspect/").status_code == HTTPStatus.FOUND  # not signed in
        refused = [
            r for r in caplog.records if r.getMessage() in ("inspect sign-in refused", "inspect sign-in throttled")
        ]
        assert len(refused) == 5 and all(r.client_address == "127.0.0.1" for r in refused)
        logged = caplog.text + " ".join(str(record.__dict__) for record in caplog.records)
        assert "sek_guess" not in logged and keys["admin"] not in logged

    def test_each_address_has_its_own_sign_in_budget(self, client, keys, settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
        for _ in range(3):
            client.post("/inspect/login", {"key": "sek_guess"}, HTTP_X_FORWARDED_FOR="203.0.113.1")

        blocked = client.post("/inspect/login", {"key": keys["admin"]}, HTTP_X_FORWARDED_FOR="203.0.113.1")
        other = client.post("/inspect/login", {"key": keys["admin"]}, HTTP_X_FORWARDED_FOR="203.0.113.2")

        assert blocked.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert other.status_code == HTTPStatus.FOUND and other["Location"] == "/inspect/"

    def test_a_key_in_the_header_of_the_inspection_page_spends_the_same_budget(self, client, keys, monkeypatch):
        lookups = []
        find = ApiKeyStore.find_by_hash
        monkeypatch.setattr(ApiKeyStore, "find_by_hash", lambda store, h: lookups.append(h) or find(store, h))

        tries = [client.get("/inspect/", HTTP_AUTHORIZATION=f"Api-Key sek_guess_{n}").status_code for n in range(3)]
        over = client.get("/inspect/", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")

        assert tries == [HTTPStatus.FOUND] * 3 and len(lookups) == 3  # sent to sign in, as before
        assert over.status_code == HTTPStatus.TOO_MANY_REQUESTS and len(lookups) == 3
        assert "Too many sign-in attempts" in over.content.decode() and int(over["Retry-After"]) > 0
        assert client.post("/inspect/login", {"key": keys["admin"]}).status_code == HTTPStatus.TOO_MANY_REQUESTS


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
