"""Model operations as named functions, used by the management commands, the API and start-up."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from .data import read_training_csv
from .serving import model_registry
from .train import train

logger = logging.getLogger(__name__)


def model_train(
    *, csv_path: Path, activate: bool = True, skip_bad_rows: bool = False, seed: int = 0, progress: bool | None = None
) -> dict[str, Any]:
    """Read and check the CSV, train, store a new version, and (by default) activate it."""
    dataset = read_training_csv(csv_path, skip_bad_rows=skip_bad_rows, progress=progress)
    trained = train(dataset, seed=seed)
    registry = model_registry()
    registry.ensure_indexes()
    metadata = registry.save(trained)
    if activate:
        registry.activate(metadata["version"])
    metadata["active"] = activate
    return metadata


def model_activate(*, version: int) -> dict[str, Any]:
    return model_registry().activate(version)


def ensure_default_model() -> dict[str, Any] | None:
    """Train the default model from the shipped CSV when no version is active. None if one was."""
    if model_registry().active_version() is not None:
        return None
    logger.info("no active model: training the default one from %s", settings.DEFAULT_TRAINING_CSV)
    return model_train(csv_path=Path(settings.DEFAULT_TRAINING_CSV), progress=False)
