"""A version that would accept less than the active one (or lacks DEFAULT_CATEGORY) is said so before it
goes live: by train_model, activate_model and POST /models/{version}/activate, from one comparison. A
training run (train_model, POST /models) stores such a version without activating it, saying why; an
explicit activation warns and activates."""

from __future__ import annotations

import csv
import io
from http import HTTPStatus
from pathlib import Path

import pytest
from django.core.management import call_command

from core.audit import audit_log, command_actor
from ml.data import read_training_csv
from ml.services import activation_changes, held_back_reason, model_activate, model_train
from ml.serving import model_registry
from ml.train import train
from tests.helpers import SAMPLE_CSV, assert_error_envelope, post_json

KEPT = ("home_kitchen", "toys_games")  # no books (DEFAULT_CATEGORY), no electronics, ...
LOST = ("beauty", "books", "clothing", "electronics", "pet_supplies", "sports_outdoors")  # in us, uk and de
LOST_SHOWN = [*LOST, *(f"{name} ({market})" for market in ("de", "uk") for name in LOST)]
NARROWING = (
    "version 2 has no category 'books' (DEFAULT_CATEGORY), so a POST without a category will answer 422; train on "
    "data with 'books' rows, or set DEFAULT_CATEGORY to one of home_kitchen, toys_games",
    f"version 2 lacks 18 categories that version 1 serves ({', '.join(LOST_SHOWN)}): estimations in them will "
    "answer 422",
)
HELD_BACK = (
    "version 2 was stored but not activated: it lacks categories "
    + ", ".join(name + (" (DEFAULT_CATEGORY)" if name == "books" else "") for name in LOST_SHOWN)
    + ", so activating it in place of version 1 would make estimations in them answer 422. To activate it "
    "anyway: POST /models/2/activate with an admin API key, or python manage.py activate_model 2"
)


@pytest.fixture(scope="module")
def narrow_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("narrow") / "two_categories.csv"
    with SAMPLE_CSV.open() as source, path.open("w", newline="") as out:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        writer.writerows(row for row in reader if row["category"] in KEPT)
    return path


@pytest.fixture
def narrow_version(api, narrow_csv) -> int:
    """Version 1 (every category) active, version 2 (two categories, no books) stored."""
    return model_registry().save(train(read_training_csv(narrow_csv, progress=False)))["version"]


def meta(version: int, *categories: str) -> dict:
    return {"version": version, "categories": list(categories)}


class TestTheComparison:
    def test_nothing_narrows(self):
        assert activation_changes(current=meta(1, "books", "toys"), candidate=meta(2, "books", "toys", "pets")) == []
        assert activation_changes(current=None, candidate=meta(1, "books")) == []

    def test_a_version_without_the_default_category(self, settings):
        settings.DEFAULT_CATEGORY = "books"

        changes = activation_changes(current=None, candidate=meta(1, "toys", "pets"))

        assert changes == [
            "version 1 has no category 'books' (DEFAULT_CATEGORY), so a POST without a category will answer 422; "
            "train on data with 'books' rows, or set DEFAULT_CATEGORY to one of pets, toys"
        ]

    def test_a_version_without_a_category_the_active_one_serves(self):
        changes = activation_changes(current=meta(3, "books", "toys", "pets"), candidate=meta(4, "books", "pets"))

        assert changes == [
            "version 4 lacks 1 category that version 3 serves (toys): estimations in them will answer 422"
        ]

    def test_re_activating_the_active_version_changes_nothing_it_serves(self):
        assert activation_changes(current=meta(2, "books"), candidate=meta(2, "books")) == []


class TestWhereItIsSaid:
    def test_activation_warns_before_the_switch_and_returns_what_changed(self, api, narrow_version):
        registry = model_registry()
        seen = []

        metadata = model_activate(
            version=narrow_version,
            actor=command_actor(),
            warn=lambda changes: seen.append((registry.active_version(), changes)),
        )

        assert seen == [(1, list(NARROWING))]  # given while version 1 was still active
        assert metadata["warnings"] == list(NARROWING)
        assert registry.active_version() == narrow_version

    def test_the_api_answer_carries_the_warnings(self, api, narrow_version, keys, settings):
        settings.MODEL_REFRESH_SECONDS = 0

        response = api.post(f"/models/{narrow_version}/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}")

        assert response.status_code == HTTPStatus.OK
        assert response.json()["warnings"] == list(NARROWING)
        # and what it said holds: a POST without a category now answers 422
        issues = assert_error_envelope(post_json(api, {"bestseller_rank": 70}), 422)["_issues"]
        assert issues == {
            "category": "required field here: the default category 'books' (DEFAULT_CATEGORY) is not one the active "
            "model serves; send one of home_kitchen, toys_games"
        }
        back = api.post("/models/1/activate", HTTP_AUTHORIZATION=f"Api-Key {keys['admin']}").json()
        assert back["warnings"] == []  # going back to every category narrows nothing

    def test_the_activate_model_command_prints_them(self, api, narrow_version):
        out, err = io.StringIO(), io.StringIO()

        call_command("activate_model", str(narrow_version), stdout=out, stderr=err)

        assert err.getvalue().splitlines() == [
            f"Warning: this narrows what is accepted: {change}." for change in NARROWING
        ]
        assert f"Model version {narrow_version} is active" in out.getvalue()

    def test_train_model_stores_a_narrowing_version_without_activating_it_and_says_why(self, api, narrow_csv):
        out, err = io.StringIO(), io.StringIO()

        call_command("train_model", "--csv", str(narrow_csv), stdout=out, stderr=err)

        printed = out.getvalue()
        assert model_registry().active_version() == 1  # the live service keeps every category
        assert err.getvalue() == ""
        for change in NARROWING:
            assert f"Activating it would narrow what is accepted: {change}." in printed
        assert f"Not activated: {HELD_BACK}." in printed
        assert "Model version 2 stored, not active." in printed
        # the way out it names keeps today's warn-and-activate as the explicit choice
        call_command("activate_model", "2", stdout=io.StringIO(), stderr=io.StringIO())
        assert model_registry().active_version() == 2

    def test_a_training_run_holds_back_a_narrowing_version_and_warns_nothing_live(self, api, narrow_csv):
        seen = []

        metadata = model_train(csv_path=narrow_csv, actor=command_actor(), progress=False, warn=seen.append)

        assert (metadata["active"], metadata["held_back"]) == (False, HELD_BACK)
        assert metadata["warnings"] == list(NARROWING)
        assert seen == [] and model_registry().active_version() == 1
        actions = [entry["action"] for entry in audit_log().find(action=None, skip=0, limit=9)[0]]
        assert "model.train" in actions and "model.activate" not in actions[: actions.index("model.train")]

    def test_a_version_missing_only_the_default_category_is_held_back_too(self, api, narrow_csv, settings):
        settings.DEFAULT_CATEGORY = "toys_games"
        registry = model_registry()
        registry.activate(registry.save(train(read_training_csv(narrow_csv, progress=False)))["version"])
        settings.DEFAULT_CATEGORY = "books"  # version 2 (active) lacks it too; version 3 adds nothing

        metadata = model_train(csv_path=narrow_csv, actor=command_actor(), progress=False)

        assert (metadata["version"], metadata["active"]) == (3, False)
        assert metadata["held_back"].startswith(
            "version 3 was stored but not activated: it lacks category books (DEFAULT_CATEGORY), so activating it "
            "in place of version 2 would make estimations in it answer 422."
        )

    def test_the_first_version_activates_as_before_warning_first(self, api_without_model, narrow_csv):
        registry = model_registry()
        seen = []

        metadata = model_train(
            csv_path=narrow_csv,
            actor=command_actor(),
            progress=False,
            warn=lambda changes: seen.append((registry.active_version(), changes)),
        )

        assert (metadata["version"], metadata["active"], metadata["held_back"]) == (1, True, None)
        assert registry.active_version() == 1
        assert seen == [(None, [NARROWING[0].replace("version 2", "version 1")])]  # given before the switch

    def test_nothing_is_held_back_when_nothing_is_lost(self):
        assert held_back_reason(current=None, candidate=meta(1, "toys")) is None
        assert held_back_reason(current=meta(1, "books"), candidate=meta(2, "books", "toys")) is None
        assert held_back_reason(current=meta(2, "books"), candidate=meta(2, "books")) is None

    def test_a_stored_version_says_what_activating_it_would_narrow(self, api, narrow_csv):
        out = io.StringIO()

        call_command("train_model", "--csv", str(narrow_csv), "--no-activate", stdout=out, stderr=io.StringIO())

        assert f"Activating it would narrow what is accepted: {NARROWING[1]}." in out.getvalue()
        assert model_registry().active_version() == 1
