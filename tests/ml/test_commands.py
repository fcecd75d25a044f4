"""list_models, activate_model and the drawn curves of train_model."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from django.core.management import CommandError, call_command

from ml.serving import model_registry

from ..conftest import SAMPLE_CSV
from .test_registry import tamper_bytes


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
    curves = svg.findall(".//{http://www.w3.org/2000/svg}polyline")
    bands = svg.findall(".//{http://www.w3.org/2000/svg}polygon")
    assert {curve.get("data-category") for curve in curves} == set(model_registry().get(1)["categories"])
    assert len(bands) == len(curves) == 8
