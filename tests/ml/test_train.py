"""Training on the shipped data: the literature checks, the holdout metrics, the command's behaviour."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from sklearn.pipeline import Pipeline

from ml.data import read_training_csv
from ml.legacy import build_legacy_pipeline
from ml.markets import segment
from ml.pipeline import MonotoneCountCurve, model_input
from ml.sample_data import CURVES, SCALES, write_csv
from ml.serving import model_registry
from ml.train import HOLDOUT_FRACTION, metrics
from tests.helpers import SAMPLE_CSV

ROOT = SAMPLE_CSV.parent.parent


@pytest.fixture(scope="module")
def sample_dataset():
    return read_training_csv(SAMPLE_CSV, progress=False)


def concave_model_metrics(dataset, seed: int = 0) -> dict:
    """The holdout metrics of the model before issue 20 (concave, log1p target), on train()'s own split."""
    order = np.random.default_rng(seed).permutation(dataset.rows)
    cut = int(round(dataset.rows * (1 - HOLDOUT_FRACTION)))
    fit, held = order[:cut], order[cut:]
    X = model_input(dataset.categories, dataset.ranks)
    model = build_legacy_pipeline().fit(X[fit], dataset.sales[fit])
    return metrics(dataset.sales[held], model.predict(X[held]))


def curve(trained_model, category: str, ranks) -> np.ndarray:
    return trained_model.pipeline.predict(model_input([category] * len(ranks), np.asarray(ranks)))


def log_rate(trained_model, category: str, ranks) -> np.ndarray:
    """ln of the fitted median sales rate: the continuous curve the estimates are read from."""
    features, model = (trained_model.pipeline.named_steps[step] for step in ("features", "curve"))
    return model.log_rate(features.transform(model_input([category] * len(ranks), np.asarray(ranks))))


def test_a_pipeline_of_features_and_a_monotone_count_curve(trained_model):
    model = trained_model.pipeline

    assert isinstance(model, Pipeline) and list(model.named_steps) == ["features", "curve"]
    assert isinstance(model.named_steps["curve"], MonotoneCountCurve)


class TestLiterature:
    @pytest.mark.parametrize("category", sorted(CURVES))
    def test_the_mid_range_slope_is_between_0_78_and_0_95(self, trained_model, category):
        ranks = np.array([1_000, 3_000, 10_000, 30_000])

        slope = -np.polyfit(np.log(ranks), log_rate(trained_model, category, ranks), 1)[0]

        assert 0.78 <= slope <= 0.95, slope

    def test_books_at_rank_1000_sell_200_to_2200_a_month(self, trained_model):
        assert 200 <= curve(trained_model, "books", [1000])[0] <= 2200

    @pytest.mark.parametrize("category", sorted(CURVES))
    def test_never_rises_with_rank(self, trained_model, category):
        ranks = np.unique(np.geomspace(1, 50_000_000, 5000).astype(int))

        assert np.all(np.diff(log_rate(trained_model, category, ranks)) <= 1e-12)
        assert np.all(np.diff(curve(trained_model, category, ranks)) <= 0)

    def test_flatter_at_the_top_than_in_the_middle_and_steeper_in_the_tail(self, trained_model):
        """The shipped data's shape (slope 0.5 below rank 100, 0.87 in the middle, 1.12 past 100,000),
        found without the concavity the model before imposed."""

        def slope(low, high):
            values = log_rate(trained_model, "books", [low, high])
            return (values[0] - values[1]) / math.log(high / low)

        assert slope(2, 50) < slope(1_000, 10_000) < slope(200_000, 900_000)


class TestHoldout:
    def test_metrics_overall_and_per_category(self, trained_model):
        metrics = trained_model.metadata["metrics"]

        assert metrics["overall"]["rows"] == 8000
        assert set(metrics["per_category"]) == {segment(market, name) for market in SCALES for name in CURVES}
        # The data's own noise is sigma 0.40-0.55 in log space: a model that found the curve sits near it.
        assert 0.3 < metrics["overall"]["rmse_log1p"] < 0.6
        assert metrics["overall"]["within_2x"] > 0.8
        assert 0.15 < metrics["overall"]["median_ape"] < 0.5

    def test_the_80_percent_interval_covers_about_80_percent_of_unseen_data(self, trained_model, tmp_path):
        from ml.data import read_training_csv
        from ml.predictor import Predictor

        write_csv(tmp_path / "fresh.csv", rows=16_000, seed=7)  # data the model has not seen
        fresh = read_training_csv(tmp_path / "fresh.csv", progress=False)
        model = Predictor.from_metadata(trained_model.pipeline, version=1, metadata=trained_model.metadata)

        _, low, high, _ = model.estimate_arrays(fresh.ranks.astype(float), fresh.categories, fresh.marketplaces)
        inside = np.mean((fresh.sales >= low) & (fresh.sales <= high))

        assert 0.77 <= inside <= 0.83, inside
        assert abs(trained_model.metadata["model_card"]["coverage"]["overall"] - inside) <= 0.03

    def test_the_holdout_metrics_are_no_worse_than_the_concave_model_before(self, trained_model, sample_dataset):
        """Issue 20: the shipped holdout metrics must not get worse; the model before, on the same split.

        RMSE of log1p is the one exception, by 0.001 to 0.002: it is minimised by exp(mean log1p) - 1, the
        geometric-mean estimate the model before made and issue 20 replaced with the median (docs/model.md)."""
        before = concave_model_metrics(sample_dataset)
        after = trained_model.metadata["metrics"]["overall"]

        assert after["median_ape"] <= before["median_ape"] + 0.003, (after, before)
        assert after["within_2x"] >= before["within_2x"] + 0.005, (after, before)
        assert after["rmse_log1p"] <= before["rmse_log1p"] + 0.002, (after, before)

    def test_metadata_names_the_data_and_the_library(self, trained_model):
        meta = trained_model.metadata

        assert meta["training_data"]["rows"] == 40_000 and len(meta["training_data"]["sha256"]) == 64
        assert meta["sklearn_version"] == __import__("sklearn").__version__
        assert "residual_quantiles" not in meta  # the model before kept them; the card has the coverage now
        assert meta["rank_range"]["books"][0] >= 1


class TestCommand:
    def test_trains_stores_activates_and_prints_the_table(self, mongo_db):
        out = io.StringIO()

        call_command("train_model", "--csv", str(SAMPLE_CSV), stdout=out, stderr=io.StringIO())

        text = out.getvalue()
        assert "Model version 1 active." in text
        assert "RMSE log1p" in text and "books" in text and "overall" in text
        assert "in 80% interval" in text  # the model card's holdout coverage, per category
        assert model_registry().active_version() == 1

    def test_no_activate_and_if_no_active(self, mongo_db):
        call_command("train_model", "--csv", str(SAMPLE_CSV), "--no-activate", stdout=io.StringIO())
        assert model_registry().active_version() is None and model_registry().get(1)

        call_command("train_model", "--csv", str(SAMPLE_CSV), stdout=io.StringIO())
        out = io.StringIO()
        call_command("train_model", "--csv", str(SAMPLE_CSV), "--if-no-active", stdout=out)

        assert "Model version 2 is active; nothing to train." in out.getvalue()
        assert [meta["version"] for meta in model_registry().list()] == [2, 1]

    def test_if_no_active_replaces_an_active_version_this_key_refuses(self, mongo_db, settings):
        call_command("train_model", "--csv", str(SAMPLE_CSV), stdout=io.StringIO())
        settings.MODEL_SIGNING_KEY = "a-key-the-version-was-not-signed-with"
        out, err = io.StringIO(), io.StringIO()

        call_command("train_model", "--csv", str(SAMPLE_CSV), "--if-no-active", stdout=out, stderr=err)

        assert err.getvalue().startswith(
            "Model version 1 is active but cannot be served: model version 1: the signature does not verify with "
            "this key"
        )
        assert err.getvalue().rstrip().endswith("Training a new version.")
        assert "Model version 2 active." in out.getvalue()
        assert model_registry().active_version() == 2
        model_registry().load(2)  # signed with the key in use

    def test_bad_rows_fail_or_are_skipped(self, mongo_db, tmp_path):
        path = tmp_path / "mixed.csv"
        path.write_text(SAMPLE_CSV.read_text() + "books,zero,1\n")

        with pytest.raises(CommandError, match="line 40002: bestseller_rank 'zero'"):
            call_command("train_model", "--csv", str(path), stdout=io.StringIO())
        out = io.StringIO()
        call_command("train_model", "--csv", str(path), "--skip-bad-rows", stdout=out)
        assert "1 bad rows skipped" in out.getvalue()

    def test_an_unusable_file_exits_non_zero_with_a_message_and_no_traceback(self, tmp_path):
        (tmp_path / "empty.csv").write_text("")

        result = subprocess.run(
            [sys.executable, "manage.py", "train_model", "--csv", str(tmp_path / "empty.csv")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            # A database nobody answers at: the file is refused before it would be reached
            env={
                "PATH": "/usr/bin:/bin",
                "SECRET_KEY": "x" * 40,
                "DJANGO_ENV_FILE": "/dev/null",
                "MONGO_URI": "mongodb://127.0.0.1:1/never-contacted",
            },
        )

        assert result.returncode != 0
        assert "is empty" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_category_with_too_few_rows_is_named_in_a_data_error(tmp_path):
    from ml.data import DataError, read_training_csv
    from ml.train import train

    path = tmp_path / "few.csv"
    path.write_text(SAMPLE_CSV.read_text() + "".join(f"garden,{rank},5\n" for rank in range(1, 6)))

    with pytest.raises(DataError, match=r"too few rows to fit a curve for 1 category.*'garden' has 5 valid rows"):
        train(read_training_csv(path, progress=False))
