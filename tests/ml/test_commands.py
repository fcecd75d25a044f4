"""list_models, activate_model and the drawn curves of train_model."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ml.pipeline import MIN_ROWS_PER_CATEGORY
from ml.serving import model_registry
from ml.train import HOLDOUT_FRACTION, ISSUE_SEED
from tests.helpers import SAMPLE_CSV, tamper_bytes

ROOT = Path(__file__).resolve().parent.parent.parent


def run(name: str, *args) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_list_models_without_any(mongo_db):
    assert "No model versions yet" in run("list_models")


def test_list_models_marks_the_active_one(mongo_db, trained_model):
    registry = model_registry()
    registry.save(trained_model)
    registry.activate(registry.save(trained_model)["version"])

    lines = run("list_models").splitlines()

    assert lines[0].split()[:2] == ["version", "active"]
    assert lines[2].split()[:2] == ["2", "*"] and lines[3].split()[0] == "1"
    assert "sample_sales.csv" in lines[2] and "%" in lines[2]


def test_activate_model_promotes_and_rolls_back(mongo_db, trained_model):
    registry = model_registry()
    registry.save(trained_model)
    registry.save(trained_model)

    assert "Model version 2 is active" in run("activate_model", "2")
    assert "Model version 1 is active" in run("activate_model", "1")
    assert registry.active_version() == 1


def test_activate_model_refuses_unknown_and_tampered_versions(mongo_db, trained_model):
    registry = model_registry()
    good = registry.save(trained_model)["version"]
    registry.activate(good)
    bad = registry.save(trained_model)["version"]
    tamper_bytes(registry, bad)

    with pytest.raises(CommandError, match="there is no model version 9"):
        run("activate_model", "9")
    with pytest.raises(CommandError, match="checksum"):
        run("activate_model", str(bad))
    assert registry.active_version() == good


def test_train_model_draws_the_curves(mongo_db, tmp_path):
    chart = tmp_path / "curves.svg"

    out = run("train_model", "--csv", str(SAMPLE_CSV), "--plot", str(chart))

    assert f"Drew the curves to {chart}" in out
    svg = ET.parse(chart).getroot()
    curves = svg.findall(".//{http://www.w3.org/2000/svg}polyline[@class='curve']")
    bands = svg.findall(".//{http://www.w3.org/2000/svg}polygon[@class='band']")
    trained = model_registry().get(1)["categories"]  # its segments: "books" in us, "uk/books" elsewhere
    assert {curve.get("data-segment") for curve in curves} == set(trained)
    assert len(bands) == len(curves) == len(trained) == 24


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1e3"])
def test_train_model_refuses_a_seed_out_of_the_apis_bound_as_an_argument_error(seed):
    with pytest.raises(CommandError) as refused:
        run("train_model", "--csv", str(SAMPLE_CSV), "--seed", seed)

    assert str(refused.value) == f"Error: argument --seed: {ISSUE_SEED}, not {seed!r}"
    assert ISSUE_SEED == "must be a whole number from 0 to 4,294,967,295"  # as POST /models?seed= says


def test_train_model_with_a_negative_seed_exits_2_with_one_line_and_no_traceback():
    result = subprocess.run(
        [sys.executable, "manage.py", "train_model", "--seed", "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 40, "DJANGO_ENV_FILE": os.devnull},
    )

    assert result.returncode == 2  # as argparse's own argument errors
    assert result.stderr.splitlines()[-1] == (
        "manage.py train_model: error: argument --seed: must be a whole number from 0 to 4,294,967,295, not '-1'"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("where", "problem"), [("missing/c.svg", "there is no directory"), (".", "it is a directory")])
def test_train_model_refuses_a_chart_it_cannot_write_before_training_anything(mongo_db, tmp_path, where, problem):
    chart = tmp_path / where

    with pytest.raises(CommandError) as refused:
        run("train_model", "--csv", str(SAMPLE_CSV), "--plot", str(chart))

    assert str(refused.value).startswith(f"--plot {chart}: the chart cannot be written there ({problem}")
    assert str(refused.value).endswith("nothing was trained.")
    assert model_registry().list() == [] and model_registry().active_version() is None


def test_the_readmes_training_section_says_how_the_commands_run_and_the_rows_a_category_needs():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Training on your own CSV", 1)[1].split("\n## ", 1)[0]
    commands = [line for line in section.splitlines() if "manage.py" in line and not line.startswith("`")]

    assert commands and all(line.removeprefix("$ ").startswith(".venv/bin/python manage.py ") for line in commands), (
        commands
    )
    assert "`MONGO_URI`" in section and "`POST /models`" in section
    needs = f"at least {MIN_ROWS_PER_CATEGORY} rows left to fit after the random {HOLDOUT_FRACTION:.0%} holdout"
    assert needs in " ".join(section.split())  # the numbers ml/ checks, read from it
