"""Shadow replay: a candidate version re-estimates stored estimations; nothing stored changes; the
report's figures equal those computed row by row here."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from bson import json_util
from django.core.management import CommandError, call_command

from core.audit import MODEL_REPLAY
from ml.data import read_training_csv
from ml.predictor import Predictor
from ml.serving import model_registry
from ml.train import TrainedModel, train
from tests.helpers import SAMPLE_CSV, assert_error_envelope, post_json

HISTORY = [(0, 40), (3, 2500), (4, 900), (9, 60), (12, 50)]  # (day, rank): a volatile product
ROWS = [(rank, category) for category in ("books", "toys_games", "electronics") for rank in (3, 80, 1500, 40_000)]


@pytest.fixture(scope="module")
def doubled_model(tmp_path_factory) -> TrainedModel:
    """A candidate trained on the sample data with every month's sales doubled: about 2x the active model."""
    path = tmp_path_factory.mktemp("replay") / "doubled.csv"
    with SAMPLE_CSV.open() as source, path.open("w", newline="") as target:
        reader, writer = csv.DictReader(source), None
        for row in reader:
            if writer is None:
                writer = csv.DictWriter(target, fieldnames=reader.fieldnames)
                writer.writeheader()
            writer.writerow({**row, "monthly_sales": int(row["monthly_sales"]) * 2})
    return train(read_training_csv(path, progress=False))


@pytest.fixture
def stored(api, active_model, doubled_model) -> dict:
    """Twelve stored estimations; books ones with actuals at twice the active estimate. The candidate saved."""
    created = [post_json(api, {"bestseller_rank": rank, "category": category}).json() for rank, category in ROWS]
    for item in created:
        if item["category"] == "books":
            body = {"actual_sales": item["estimated_sales"] * 2, "actual_period": "2026-10"}
            api.patch(
                f"/estimations/{item['_id']}",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_IF_MATCH=item["_etag"],
            )
    candidate = model_registry().save(doubled_model)
    return {"candidate": candidate["version"], "metadata": candidate}


def snapshot(mongo_db) -> str:
    return json_util.dumps(list(mongo_db["estimations"].find().sort("_id", 1)))


def admin(keys) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Api-Key {keys['admin']}"}


def by_hand(active: Predictor, candidate: Predictor, mongo_db, category: str) -> dict:
    """Row by row, with the plain definitions."""
    documents = list(mongo_db["estimations"].find({"category": category}))
    changes = []
    pairs = []  # (actual, candidate, active) where actuals exist
    for document in documents:
        new = candidate.estimate(document["bestseller_rank"], category).sales
        old = active.estimate(document["bestseller_rank"], category).sales
        changes.append(math.log1p(new) - math.log1p(old))
        if "actual_sales" in document:
            pairs.append((document["actual_sales"], new, old))

    def rmse(index: int) -> float:
        return math.sqrt(sum((math.log1p(p[index]) - math.log1p(p[0])) ** 2 for p in pairs) / len(pairs))

    return {
        "rows": len(documents),
        "median_ratio": math.exp(statistics.median(changes)),
        "mean_abs_log1p_change": sum(abs(c) for c in changes) / len(changes),
        "share_over_2x": sum(abs(c) > math.log(2) for c in changes) / len(changes),
        "with_actuals": len(pairs),
        "rmse": (rmse(1), rmse(2)) if pairs else None,
    }


def fast(trained: TrainedModel, version: int) -> Predictor:
    return Predictor.from_metadata(trained.pipeline, version=version, metadata=trained.metadata)


class TestReplayApi:
    def test_leaves_stored_estimations_unchanged(self, api, mongo_db, keys, stored):
        before = snapshot(mongo_db)

        response = api.post(f"/models/{stored['candidate']}/replay", **admin(keys))

        assert response.status_code == HTTPStatus.CREATED, response.json()
        assert snapshot(mongo_db) == before

    def test_reports_the_differences_computed_row_by_row(
        self, api, mongo_db, keys, stored, trained_model, doubled_model
    ):
        report = api.post(f"/models/{stored['candidate']}/replay", **admin(keys)).json()

        active, candidate = fast(trained_model, 1), fast(doubled_model, stored["candidate"])
        assert (report["version"], report["against_version"], report["rows"]) == (stored["candidate"], 1, 12)
        for category in ("books", "toys_games", "electronics"):
            shown = report["per_category"][category]  # stored without a marketplace: us, named by its category
            expected = by_hand(active, candidate, mongo_db, category)
            assert shown["rows"] == expected["rows"] == 4
            for name in ("median_ratio", "mean_abs_log1p_change", "share_over_2x"):
                assert shown[name] == pytest.approx(expected[name], rel=1e-9), (category, name)
            assert shown["with_actuals"] == expected["with_actuals"]
        # Doubled training sales: the candidate estimates about twice as much
        assert 1.7 < report["overall"]["median_ratio"] < 2.3

    def test_where_actuals_exist_it_says_which_version_is_closer(
        self, api, mongo_db, keys, stored, trained_model, doubled_model
    ):
        report = api.post(f"/models/{stored['candidate']}/replay", **admin(keys)).json()

        books = report["per_category"]["books"]
        expected = by_hand(fast(trained_model, 1), fast(doubled_model, 2), mongo_db, "books")
        assert books["with_actuals"] == 4
        assert (books["candidate"]["rmse_log1p"], books["active"]["rmse_log1p"]) == pytest.approx(expected["rmse"])
        assert books["closer"] == "candidate"  # the actuals were twice the active model's estimates
        assert report["per_category"]["toys_games"]["closer"] is None
        assert report["per_marketplace"]["us"]["with_actuals"] == 4 and report["skipped_rows"] == 0

    def test_is_stored_listed_and_audited(self, api, mongo_db, keys, stored):
        report = api.post(f"/models/{stored['candidate']}/replay", {"sample": 5}, format="json", **admin(keys)).json()

        listed = api.get(f"/models/{stored['candidate']}/replays", **admin(keys)).json()["_items"]
        assert [item["_id"] for item in listed] == [report["_id"]]
        assert report["sample"] == 5 and report["rows"] == 5
        [entry] = list(mongo_db["audit"].find({"action": MODEL_REPLAY}))
        assert entry["actor"] == {"name": "admin-client", "via": "api"}
        assert entry["details"]["report_id"] == report["_id"]

    @pytest.mark.parametrize("body", [{"sample": 0}, {"sample": "ten"}, {"sample": 10**9}, {"rows": 3}, [1]])
    def test_a_bad_body_is_422_and_runs_nothing(self, api, mongo_db, keys, stored, body):
        response = api.post(f"/models/{stored['candidate']}/replay", body, format="json", **admin(keys))

        assert assert_error_envelope(response, 422)["_issues"]
        assert mongo_db["replays"].count_documents({}) == 0

    def test_needs_an_admin_key(self, api, keys, stored):
        assert_error_envelope(api.post(f"/models/{stored['candidate']}/replay"), 401)
        write = {"HTTP_AUTHORIZATION": f"Api-Key {keys['write']}"}
        assert_error_envelope(api.post(f"/models/{stored['candidate']}/replay", **write), 403)

    def test_unknown_version_is_404(self, api, keys, stored):
        assert_error_envelope(api.post("/models/77/replay", **admin(keys)), 404)


class TestReplayPerMarketplace:
    """With the sample model of three marketplaces: estimations stored as the API stores them (here put in
    directly), in uk and de, one with a rank history; the candidate is the doubled model."""

    @pytest.fixture
    def stored_in_markets(self, mongo_db, stored) -> list[dict]:
        template = mongo_db["estimations"].find_one({"category": "books"}, {"_id": 0})
        start = datetime(2026, 10, 1, tzinfo=UTC)
        documents = [
            {**template, "marketplace": "uk", "bestseller_rank": 300},
            {
                **template,
                "marketplace": "de",
                "bestseller_rank": 50,
                "rank_history": [{"at": start + timedelta(days=day), "rank": rank} for day, rank in HISTORY],
            },
        ]
        for document in documents:
            document.pop("actual_sales", None)
            document.pop("actual_period", None)
        mongo_db["estimations"].insert_many([dict(document) for document in documents])
        return documents

    def test_each_is_estimated_in_its_marketplace_and_from_its_history(
        self, api, keys, stored, stored_in_markets, trained_model, doubled_model
    ):
        report = api.post(f"/models/{stored['candidate']}/replay", **admin(keys)).json()

        active, candidate = fast(trained_model, 1), fast(doubled_model, stored["candidate"])
        assert report["rows"] == 14 and report["skipped_rows"] == 0
        assert list(report["per_marketplace"]) == ["de", "uk", "us"]
        assert report["per_marketplace"]["us"]["rows"] == 12
        uk = report["per_category"]["uk/books"]
        new, old = candidate.estimate(300, "books", "uk").sales, active.estimate(300, "books", "uk").sales
        assert uk["rows"] == 1 and uk["median_ratio"] == pytest.approx((new + 1) / (old + 1))
        assert old != active.estimate(300, "books").sales  # the uk curve, not us's
        seconds = [(datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=day)).timestamp() for day, _ in HISTORY]
        ranks = [rank for _, rank in HISTORY]
        new, old = (model.estimate_history(seconds, ranks, "books", "de").sales for model in (candidate, active))
        de = report["per_category"]["de/books"]
        assert de["median_ratio"] == pytest.approx((new + 1) / (old + 1))
        snapshot = candidate.estimate(50, "books", "de").sales, active.estimate(50, "books", "de").sales
        assert (new, old) != snapshot  # from the history, not from the last rank

    def test_a_candidate_without_a_marketplace_skips_its_estimations_and_says_so(
        self, api, keys, mongo_db, stored, stored_in_markets, tmp_path
    ):
        path = tmp_path / "us_only.csv"
        with SAMPLE_CSV.open() as source, path.open("w", newline="") as target:
            reader = csv.DictReader(source)
            writer = csv.DictWriter(target, fieldnames=reader.fieldnames)
            writer.writeheader()
            writer.writerows(row for row in reader if row.get("marketplace", "us") in ("", "us"))
        us_only = model_registry().save(train(read_training_csv(path, progress=False)))["version"]

        response = api.post(f"/models/{us_only}/replay", **admin(keys))

        assert response.status_code == HTTPStatus.CREATED, response.json()
        report = response.json()
        assert report["rows"] == 12 and report["skipped_rows"] == 2
        assert report["skipped"]["uk/books"] == {
            "rows": 1,
            "lacking": ["candidate"],
            "message": f"1 estimation in uk/books: the candidate (version {us_only}) has no curve for it, so they "
            "were not replayed",
        }
        assert report["skipped"]["de/books"]["lacking"] == ["candidate"]


class TestReplayCommand:
    def test_prints_the_table_and_changes_nothing(self, api, mongo_db, stored):
        before = snapshot(mongo_db)
        out = io.StringIO()

        call_command("replay_model", str(stored["candidate"]), "--no-progress", stdout=out)

        assert snapshot(mongo_db) == before
        text = out.getvalue()
        assert "Replayed 12 stored estimations with version 2 beside active version 1" in text
        assert "books" in text and "candidate" in text
        assert mongo_db["replays"].count_documents({}) == 1

    def test_says_what_it_skipped_in_a_marketplace_the_models_lack(self, api, mongo_db, stored):
        document = mongo_db["estimations"].find_one({"category": "books"}, {"_id": 0})
        mongo_db["estimations"].insert_one({**document, "marketplace": "eg"})  # neither model has eg
        out = io.StringIO()

        call_command("replay_model", str(stored["candidate"]), "--no-progress", stdout=out)

        text = out.getvalue()
        assert "Replayed 12 stored estimations with version 2 beside active version 1 (1 skipped" in text
        assert (
            "Skipped: 1 estimation in eg/books: the candidate (version 2) and the active (version 1) have no curve "
            "for it, so they were not replayed." in text
        )
        assert mongo_db["replays"].find_one()["skipped"]["eg/books"]["lacking"] == ["candidate", "active"]

    def test_a_sample_replays_that_many(self, api, mongo_db, stored):
        call_command("replay_model", str(stored["candidate"]), "--sample", "3", "--no-progress", stdout=io.StringIO())

        assert mongo_db["replays"].find_one()["rows"] == 3

    def test_unknown_version_is_a_command_error(self, api, stored):
        with pytest.raises(CommandError, match="No replay of version 9"):
            call_command("replay_model", "9", "--no-progress", stdout=io.StringIO())
