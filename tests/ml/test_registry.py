"""The model registry (GridFS + metadata) on both stores, its verification, and hot pick-up."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ml import serving
from ml.pipeline import model_input
from ml.registry import ArtifactRefused, ModelRegistry, UnknownVersion
from ml.serving import model_registry
from tests.helpers import replace, tamper_bytes

ROWS = model_input(["books", "clothing", "toys_games"], np.array([5, 5_000, 500_000]))


@pytest.fixture
def registry(mongo_db) -> ModelRegistry:
    registry = model_registry()
    registry.ensure_indexes()
    return registry


class TestRoundTrip:
    def test_saved_version_loads_and_predicts_the_same(self, registry, trained_model):
        metadata = registry.save(trained_model)

        loaded = registry.load(metadata["version"])

        assert metadata["version"] == 1
        np.testing.assert_array_equal(loaded.pipeline.predict(ROWS), trained_model.pipeline.predict(ROWS))
        assert loaded.metadata["training_data"]["sha256"] == trained_model.metadata["training_data"]["sha256"]

    def test_versions_count_up_and_list_newest_first(self, registry, trained_model):
        for _ in range(3):
            registry.save(trained_model)

        assert [meta["version"] for meta in registry.list()] == [3, 2, 1]
        assert registry.get(4) is None

    def test_an_unfinished_save_keeps_its_number_and_is_not_listed(self, registry, trained_model):
        registry.models.insert_one({"version": 1, "status": "uploading"})

        assert registry.save(trained_model)["version"] == 2
        assert [meta["version"] for meta in registry.list()] == [2]

    def test_metadata_has_what_the_issue_asks_for(self, registry, trained_model):
        meta = registry.save(trained_model)

        for key in (
            "version",
            "created",
            "sklearn_version",
            "training_data",
            "categories",
            "metrics",
            "model_card",
            "signature",
            "artifact",
        ):
            assert key in meta, key
        assert meta["artifact"]["bytes"] > 0 and len(meta["artifact"]["sha256"]) == 64


class TestVerification:
    def test_changed_bytes_are_refused(self, registry, trained_model):
        version = registry.save(trained_model)["version"]
        tamper_bytes(registry, version)

        with pytest.raises(ArtifactRefused, match="do not match its checksum"):
            registry.load(version)

    def test_changed_bytes_with_a_matching_checksum_fail_the_signature(self, registry, trained_model):
        import hashlib

        version = registry.save(trained_model)["version"]
        tamper_bytes(registry, version)
        file_id = registry.get(version)["artifact"]["file_id"]
        forged = registry.bucket.open_download_stream(file_id).read()
        replace(
            registry.models,
            {"version": version},
            lambda meta: meta["artifact"].update(sha256=hashlib.sha256(forged).hexdigest()),
        )

        with pytest.raises(ArtifactRefused, match="signature does not verify"):
            registry.load(version)

    def test_changed_metadata_fails_the_signature(self, registry, trained_model):
        version = registry.save(trained_model)["version"]
        replace(registry.models, {"version": version}, lambda meta: meta["rank_range"].update(books=[1, 9]))

        with pytest.raises(ArtifactRefused, match="signature does not verify"):
            registry.load(version)

    def test_an_artifact_signed_with_another_key_is_refused(self, registry, trained_model, mongo_db):
        version = registry.save(trained_model)["version"]

        with pytest.raises(ArtifactRefused, match="MODEL_SIGNING_KEY"):
            ModelRegistry(mongo_db, b"another key").load(version)

    def test_another_scikit_learn_version_is_refused_naming_both(self, registry, trained_model):
        import sklearn

        version = registry.save(trained_model)["version"]
        replace(registry.models, {"version": version}, lambda meta: meta.update(sklearn_version="0.24.2"))

        with pytest.raises(ArtifactRefused) as caught:
            registry.load(version)
        assert "0.24.2" in str(caught.value) and sklearn.__version__ in str(caught.value)

    def test_nothing_is_unpickled_before_verification(self, registry, trained_model, monkeypatch):
        version = registry.save(trained_model)["version"]
        tamper_bytes(registry, version)
        monkeypatch.setattr("ml.registry.joblib.load", lambda *a, **k: pytest.fail("unpickled unverified bytes"))

        with pytest.raises(ArtifactRefused):
            registry.load(version)


class TestActivation:
    def test_activate_and_roll_back(self, registry, trained_model):
        first, second = registry.save(trained_model)["version"], registry.save(trained_model)["version"]

        registry.activate(second)
        assert registry.active_version() == second
        registry.activate(first)
        assert registry.active_version() == first

    def test_unknown_version_is_refused(self, registry):
        with pytest.raises(UnknownVersion):
            registry.activate(42)
        assert registry.active_version() is None

    def test_a_tampered_version_is_not_activated(self, registry, trained_model):
        good, bad = registry.save(trained_model)["version"], registry.save(trained_model)["version"]
        registry.activate(good)
        tamper_bytes(registry, bad)

        with pytest.raises(ArtifactRefused):
            registry.activate(bad)
        assert registry.active_version() == good


class TestServing:
    def test_picks_up_a_newly_activated_version_without_a_restart(self, registry, trained_model, settings):
        settings.MODEL_REFRESH_SECONDS = 0
        registry.activate(registry.save(trained_model)["version"])
        assert serving.get_estimator().version == 1

        registry.activate(registry.save(trained_model)["version"])

        assert serving.get_estimator().version == 2

    def test_waits_the_refresh_interval_between_checks(self, registry, trained_model, settings):
        settings.MODEL_REFRESH_SECONDS = 3600
        registry.activate(registry.save(trained_model)["version"])
        assert serving.get_estimator().version == 1

        registry.activate(registry.save(trained_model)["version"])

        assert serving.get_estimator().version == 1

    def test_a_tampered_active_version_is_refused_and_the_old_one_keeps_serving(
        self, registry, trained_model, settings, caplog
    ):
        settings.MODEL_REFRESH_SECONDS = 0
        registry.activate(registry.save(trained_model)["version"])
        assert serving.get_estimator().version == 1
        bad = registry.save(trained_model)["version"]
        tamper_bytes(registry, bad)
        # Someone points the active version at the tampered artifact behind the API's back.
        registry.state.replace_one({"_id": "active"}, {"_id": "active", "version": bad})

        with caplog.at_level(logging.ERROR, logger="ml.serving"):
            first, second = serving.get_estimator(), serving.get_estimator()

        assert first.version == second.version == 1
        refusals = [r for r in caplog.records if "refused to load model version 2" in r.getMessage()]
        assert len(refusals) == 1  # logged once, not on every request

    def test_no_active_version_is_no_active_model(self, registry):
        with pytest.raises(serving.NoActiveModel):
            serving.get_estimator()

    def test_known_categories_without_a_model_is_empty(self, registry):
        assert serving.known_categories() == ()
