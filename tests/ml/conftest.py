"""Fixtures of the ml tests."""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture
def private_temp_dir(tmp_path, monkeypatch):
    """Uploads go to this test's own directory, so a test can see that none is left behind."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(uploads))
    return uploads
