"""Registry faults heal: a refused version is tried again when it is activated again or its artifact
changes, and a corrupt or missing artifact answers 409 on activation and fails no request while it is
active (the process keeps serving the model it had)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect, NetworkTimeout, NotPrimaryError, OperationFailure

from ml import serving
from ml.registry import ArtifactRefused, ModelRegistry
from tests.helpers import (
    assert_error_envelope,
    delete_a_chunk,
    file_id,
    point_active_at,
    post_json,
    replace,
    reupload,
    tamper_bytes,
)


@pytest.fixture
def registry(api, settings) -> ModelRegistry:
    """The registry of a served database (version 1 active and served), checked on every request."""
    settings.MODEL_REFRESH_SECONDS = 0
    assert estimate(api) == 1
    return serving.model_registry()


def estimate(api) -> int:
    """POST an estimation; the model version that answered (the POST must succeed)."""
    response = post_json(api, {"bestseller_rank": 70})
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()["model_version"]


def activate(api, keys, version: int):
    return api.post(f"/models/{version}/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")


def delete_the_file(registry: ModelRegistry, version: int) -> None:
    registry.bucket.delete(file_id(registry, version))


def drop_the_artifact_field(registry: ModelRegistry, version: int) -> None:
    replace(registry.models, {"version": version}, lambda meta: meta.pop("artifact"))


def drop_a_signed_field(registry: ModelRegistry, version: int) -> None:
    replace(registry.models, {"version": version}, lambda meta: meta.pop("rank_range"))


def load_failures() -> float:
    return REGISTRY.get_sample_value("model_load_failures_total") or 0.0


def refresh_failures() -> float:
    return REGISTRY.get_sample_value("model_refresh_failures_total") or 0.0


def ready_model_line(api) -> str:
    response = api.get("/health/ready")
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()["checks"]["model"]


CORRUPTIONS = {
    "changed bytes": (tamper_bytes, "the artifact's bytes do not match its checksum"),
    "a deleted chunk": (delete_a_chunk, "its artifact is damaged in the registry"),
    "no file": (delete_the_file, "has no artifact in the registry"),
    "no artifact in the metadata": (drop_the_artifact_field, "its metadata names no artifact"),
    "a signed field missing": (drop_a_signed_field, "its metadata lacks 'rank_range'"),
}


class TestTheReviewsReproductions:
    def test_a_version_refused_once_is_served_after_its_bytes_are_restored_and_it_is_activated(
        self, api, registry, keys, trained_model
    ):
        # Flip a byte of v2's artifact and point `active` at it: v1 keeps serving.
        version = registry.save(trained_model)["version"]
        original = file_id(registry, version)
        tamper_bytes(registry, version)
        point_active_at(registry, version)
        assert estimate(api) == 1
        # Restore the bytes (the original file back) and activate v2.
        replace(registry.models, {"version": version}, lambda meta: meta["artifact"].update(file_id=original))
        response = activate(api, keys, version)

        assert response.status_code == HTTPStatus.OK, response.content
        assert estimate(api) == version
        assert ready_model_line(api) == f"version {version}"

    def test_a_deleted_chunk_answers_409_on_activation_and_no_post_fails_while_it_is_active(
        self, api, registry, keys, trained_model
    ):
        version = registry.save(trained_model)["version"]
        delete_a_chunk(registry, version)
        before = load_failures()

        refused = assert_error_envelope(activate(api, keys, version), HTTPStatus.CONFLICT)
        point_active_at(registry, version)
        versions = [estimate(api) for _ in range(20)]  # each one checks the active version (refresh: 0 s)

        assert refused["_error"]["message"].startswith(f"Version {version} was not activated: model version {version}")
        # pymongo words it "no chunk #0" (one chunk) or "expected chunk #0 but found ..." (several)
        assert "its artifact is damaged in the registry (" in refused["_error"]["message"]
        assert "chunk #0" in refused["_error"]["message"]
        assert versions == [1] * 20
        assert load_failures() == before + 1  # refused once, not tried again on every check
        assert ready_model_line(api).startswith(f"version 1 (active version {version} refused: ")


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_every_corrupt_or_missing_artifact_answers_409_with_its_reason(api, registry, keys, trained_model, corruption):
    corrupt, reason = CORRUPTIONS[corruption]
    version = registry.save(trained_model)["version"]
    corrupt(registry, version)

    body = assert_error_envelope(activate(api, keys, version), HTTPStatus.CONFLICT)

    assert reason in body["_error"]["message"]
    assert registry.active_version() == 1
    with pytest.raises(ArtifactRefused, match=reason):
        registry.load(version)


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_posts_while_the_active_version_is_corrupt_all_succeed_on_the_model_served(
    api, registry, trained_model, corruption
):
    corrupt, reason = CORRUPTIONS[corruption]
    version = registry.save(trained_model)["version"]
    corrupt(registry, version)
    point_active_at(registry, version)

    answers = [post_json(api, {"bestseller_rank": rank}) for rank in range(1, 31)]

    assert [response.status_code for response in answers] == [HTTPStatus.CREATED] * 30
    assert {response.json()["model_version"] for response in answers} == {1}
    assert reason in ready_model_line(api)


def test_an_unknown_active_version_fails_no_post(api, registry):
    point_active_at(registry, 99)

    assert [estimate(api) for _ in range(5)] == [1] * 5
    assert ready_model_line(api) == "version 1 (active version 99 refused: there is no model version 99)"


def test_without_a_model_to_keep_a_corrupt_active_version_answers_503_saying_why(api, registry, trained_model):
    version = registry.save(trained_model)["version"]
    delete_a_chunk(registry, version)
    point_active_at(registry, version)
    serving.reset()  # a process starting now has nothing to serve

    body = assert_error_envelope(post_json(api, {"bestseller_rank": 70}), HTTPStatus.SERVICE_UNAVAILABLE)

    assert f"Model version {version} is active, but this service refused to load it" in body["_error"]["message"]
    assert "its artifact is damaged in the registry" in body["_error"]["message"]


class TestARefusedVersionIsTriedAgain:
    def test_when_it_is_activated_again(self, api, registry, keys, trained_model, monkeypatch):
        # Version 2 fails to load once for a reason that leaves no trace in the registry (an unpickling
        # error, as a process missing a module would meet), while it is active.
        version = registry.save(trained_model)["version"]
        point_active_at(registry, version)
        with monkeypatch.context() as patched:
            patched.setattr("ml.registry.joblib.load", lambda *a, **k: (_ for _ in ()).throw(ImportError("gone")))
            assert estimate(api) == 1
        assert "could not be loaded (ImportError: gone)" in ready_model_line(api)
        # Nothing changed: it is not tried on every check.
        assert estimate(api) == 1

        response = activate(api, keys, version)

        assert response.status_code == HTTPStatus.OK, response.content
        assert estimate(api) == version
        assert ready_model_line(api) == f"version {version}"

    def test_when_its_artifact_changes(self, api, registry, trained_model):
        version = registry.save(trained_model)["version"]
        good = registry.bucket.open_download_stream(file_id(registry, version)).read()
        delete_a_chunk(registry, version)
        point_active_at(registry, version)
        assert estimate(api) == 1

        reupload(registry, version, good)  # the same bytes again, as a new file: no activation

        assert estimate(api) == version
        assert ready_model_line(api) == f"version {version}"

    def test_when_its_metadata_is_mended(self, api, registry, trained_model):
        import sklearn

        version = registry.save(trained_model)["version"]
        replace(registry.models, {"version": version}, lambda meta: meta.update(sklearn_version="0.24.2"))
        point_active_at(registry, version)
        assert estimate(api) == 1
        assert "scikit-learn 0.24.2" in ready_model_line(api)

        replace(registry.models, {"version": version}, lambda meta: meta.update(sklearn_version=sklearn.__version__))

        assert estimate(api) == version

    def test_a_still_corrupt_replacement_stays_refused_with_the_new_reason(self, api, registry, trained_model):
        version = registry.save(trained_model)["version"]
        good = registry.bucket.open_download_stream(file_id(registry, version)).read()
        delete_a_chunk(registry, version)
        point_active_at(registry, version)
        assert estimate(api) == 1
        before = load_failures()

        forged = bytearray(good)
        forged[len(forged) // 2] ^= 0xFF
        reupload(registry, version, bytes(forged))

        assert [estimate(api) for _ in range(3)] == [1] * 3
        assert load_failures() == before + 1
        assert "the artifact's bytes do not match its checksum" in ready_model_line(api)


def test_a_database_error_while_loading_is_no_refusal_and_the_next_check_tries_again(
    api, registry, trained_model, monkeypatch
):
    version = registry.save(trained_model)["version"]
    point_active_at(registry, version)
    before, refused_before = refresh_failures(), load_failures()
    with monkeypatch.context() as patched:
        patched.setattr(ModelRegistry, "_artifact", lambda *a: (_ for _ in ()).throw(AutoReconnect("connection lost")))
        assert estimate(api) == 1
        assert ready_model_line(api) == "version 1"  # not refused: the version is not at fault

    assert refresh_failures() == before + 2  # counted at each of the two checks that met it
    assert load_failures() == refused_before  # and no version was refused
    assert estimate(api) == version


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("connection lost"),
        NetworkTimeout("timed out"),
        NotPrimaryError("not primary", {"ok": 0, "code": 10107}),
        OperationFailure("not authorized", 13, {"ok": 0, "code": 13}),
        RuntimeError("anything else"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_failed_refresh_check_fails_no_request_and_is_counted(api, registry, monkeypatch, error):
    """The check that reads the active version (each request's, at MODEL_REFRESH_SECONDS=0) fails."""

    def failing(self):
        raise error

    before = refresh_failures()
    with monkeypatch.context() as patched:
        patched.setattr(ModelRegistry, "active_state", failing)
        assert estimate(api) == 1  # the request that made the check answers with the loaded model
        assert ready_model_line(api) == "version 1"
        metrics = api.get("/metrics").content.decode()

    assert refresh_failures() == before + 2  # the POST's check and /health/ready's
    assert f"model_refresh_failures_total {before + 2}" in metrics  # what Prometheus scrapes
    assert estimate(api) == 1  # and the next check, the database answering, finds nothing new


def test_without_a_loaded_model_a_database_error_in_the_check_answers_503(api_without_model, settings, monkeypatch):
    settings.MODEL_REFRESH_SECONDS = 0

    def failing(self):
        raise AutoReconnect("connection lost")

    monkeypatch.setattr(ModelRegistry, "active_state", failing)

    response = post_json(api_without_model, {"bestseller_rank": 70})

    assert_error_envelope(response, HTTPStatus.SERVICE_UNAVAILABLE)


def test_a_model_that_verifies_but_cannot_be_served_is_refused_and_the_old_one_kept(
    api, registry, trained_model, monkeypatch
):
    version = registry.save(trained_model)["version"]
    point_active_at(registry, version)
    with monkeypatch.context() as patched:
        patched.setattr(
            "ml.predictor.Predictor.from_metadata", lambda *a, **k: (_ for _ in ()).throw(KeyError("segments"))
        )
        assert [estimate(api) for _ in range(3)] == [1] * 3

    assert ready_model_line(api) == (
        f"version 1 (active version {version} refused: model version {version} could not be loaded (KeyError))"
    )
