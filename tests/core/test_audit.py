"""The audit trail: what is recorded for each action, by whom, and GET /audit for admin keys."""

from __future__ import annotations

import io
from http import HTTPStatus

import pytest
from bson import json_util
from django.core.management import CommandError, call_command

from core.api_keys import ApiKeyStore
from core.audit import (
    KEY_CREATE,
    KEY_REVOKE,
    MODEL_ACTIVATE,
    MODEL_ROLLBACK,
    MODEL_TRAIN,
    Actor,
    AuditLog,
    audit_log,
)
from ml import serving
from tests.helpers import SAMPLE_CSV, assert_error_envelope


def entries(mongo_db, action: str | None = None) -> list[dict]:
    query = {"action": action} if action else {}
    return list(mongo_db["audit"].find(query, {"_id": 0}).sort("at", 1))


def admin(keys) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Api-Key {keys['admin']}"}


def command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def assert_no_key_in(mongo_db, *keys: str) -> None:
    text = json_util.dumps(list(mongo_db["audit"].find()))
    for key in keys:
        assert key not in text
        assert ApiKeyStore.hash(key) not in text


class TestModelActions:
    def test_activation_through_the_api_names_the_key(self, api, mongo_db, keys, active_model, trained_model):
        version = serving.model_registry().save(trained_model)["version"]

        response = api.post(f"/models/{version}/activate", **admin(keys))

        assert response.status_code == HTTPStatus.OK
        [entry] = entries(mongo_db, MODEL_ACTIVATE)
        assert entry["actor"] == {"name": "admin-client", "via": "api"}
        assert entry["target"] == {"model_version": version}
        assert entry["details"] == {"previous_version": active_model["version"]}
        assert_no_key_in(mongo_db, *keys.values())

    def test_going_back_to_an_older_version_is_a_rollback(self, api, mongo_db, keys, active_model, trained_model):
        newer = serving.model_registry().save(trained_model)["version"]
        api.post(f"/models/{newer}/activate", **admin(keys))

        api.post(f"/models/{active_model['version']}/activate", **admin(keys))

        [rollback] = entries(mongo_db, MODEL_ROLLBACK)
        assert rollback["target"] == {"model_version": active_model["version"]}
        assert rollback["details"] == {"previous_version": newer}

    def test_a_refused_activation_records_nothing(self, api, mongo_db, keys, active_model):
        api.post("/models/99/activate", **admin(keys))

        assert entries(mongo_db) == []

    def test_training_by_command_records_training_and_activation_by_the_user(self, mongo_db):
        command("train_model", "--csv", str(SAMPLE_CSV))

        [trained] = entries(mongo_db, MODEL_TRAIN)
        [activated] = entries(mongo_db, MODEL_ACTIVATE)
        assert trained["actor"]["via"] == "command" and trained["actor"]["name"]
        assert trained["details"]["rows"] == 40_000 and trained["details"]["source"] == SAMPLE_CSV.name
        assert activated["target"] == trained["target"] == {"model_version": 1}
        assert activated["details"] == {"previous_version": None}

    def test_activation_by_command(self, mongo_db, active_model, trained_model):
        version = serving.model_registry().save(trained_model)["version"]

        command("activate_model", str(version))

        [entry] = entries(mongo_db, MODEL_ACTIVATE)
        assert entry["actor"]["via"] == "command" and entry["target"] == {"model_version": version}


class TestApiKeys:
    def test_creation_is_recorded_without_the_key(self, mongo_db):
        output = command("create_api_key", "--name", "shop-sync", "--scope", "write")
        key = output.strip().splitlines()[-1]

        [entry] = entries(mongo_db, KEY_CREATE)
        assert entry["target"] == {"key_name": "shop-sync"}
        assert entry["details"] == {"scope": "write"}
        assert entry["actor"]["via"] == "command"
        assert_no_key_in(mongo_db, key)

    def test_revocation_is_recorded_and_the_key_stops_working(self, api, mongo_db, keys):
        output = command("revoke_api_key", "write-client")

        assert "Revoked 1 key" in output
        [entry] = entries(mongo_db, KEY_REVOKE)
        assert entry["target"] == {"key_name": "write-client"} and entry["details"] == {"keys_revoked": 1}
        response = api.get("/estimations", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}")
        assert_error_envelope(response, 401)
        assert_no_key_in(mongo_db, *keys.values())

    def test_revoking_an_unknown_name_is_an_error_and_records_nothing(self, mongo_db):
        with pytest.raises(CommandError, match="No valid API key is named 'nobody'"):
            command("revoke_api_key", "nobody")

        assert entries(mongo_db) == []


class TestAuditEndpoint:
    @pytest.fixture
    def recorded(self, mongo_db):
        log = audit_log()
        actor = Actor(name="ops", via="command")
        for version in range(1, 4):
            log.record(MODEL_ACTIVATE, actor, {"model_version": version}, {"previous_version": version - 1})
        log.record(KEY_CREATE, actor, {"key_name": "x"}, {"scope": "write"})

    def test_admin_keys_read_it_newest_first(self, api, keys, recorded):
        response = api.get("/audit", **admin(keys))

        assert response.status_code == HTTPStatus.OK
        body = response.json()
        assert [item["action"] for item in body["_items"]] == [
            KEY_CREATE,
            MODEL_ACTIVATE,
            MODEL_ACTIVATE,
            MODEL_ACTIVATE,
        ]
        assert [item["target"].get("model_version") for item in body["_items"][1:]] == [3, 2, 1]
        assert body["_meta"] == {"page": 1, "max_results": 25, "total": 4}
        assert body["_items"][0]["at"].endswith("GMT")

    def test_filtered_by_action_and_paginated(self, api, keys, recorded):
        body = api.get("/audit", {"action": MODEL_ACTIVATE, "max_results": 2, "page": 2}, **admin(keys)).json()

        assert [item["target"]["model_version"] for item in body["_items"]] == [1]
        assert body["_meta"] == {"page": 2, "max_results": 2, "total": 3}

    def test_unknown_action_is_400(self, api, keys, recorded):
        message = assert_error_envelope(api.get("/audit", {"action": "drop"}, **admin(keys)), 400)["_error"]["message"]

        assert MODEL_ROLLBACK in message

    def test_without_a_key_401_and_with_a_write_key_403(self, api, keys, recorded):
        assert_error_envelope(api.get("/audit"), 401)
        assert_error_envelope(api.get("/audit", HTTP_AUTHORIZATION=f"Api-Key {keys['write']}"), 403)


def test_an_unknown_action_cannot_be_recorded(mongo_db):
    with pytest.raises(ValueError, match="unknown audit action"):
        AuditLog(mongo_db["audit"]).record("model.delete", Actor(name="x", via="api"), {})
