"""Model operations as named functions, used by the management commands, the API and start-up."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from estimator_project.audit import MODEL_ACTIVATE, MODEL_ROLLBACK, MODEL_TRAIN, Actor, audit_log

from .data import read_training_csv
from .serving import model_registry
from .train import train

logger = logging.getLogger(__name__)


STARTUP = Actor(name="service", via="startup")


def model_train(
    *,
    csv_path: Path,
    actor: Actor,
    activate: bool = True,
    skip_bad_rows: bool = False,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Read and check the CSV, train, store a new version, and (by default) activate it."""
    dataset = read_training_csv(csv_path, skip_bad_rows=skip_bad_rows, progress=progress)
    trained = train(dataset, seed=seed)
    registry = model_registry()
    registry.ensure_indexes()
    metadata = registry.save(trained)
    audit_log().record(
        MODEL_TRAIN,
        actor,
        {"model_version": metadata["version"]},
        {"source": dataset.source, "sha256": dataset.sha256, "rows": dataset.rows},
    )
    if activate:
        model_activate(version=metadata["version"], actor=actor)
    metadata["active"] = activate
    return metadata


def model_activate(*, version: int, actor: Actor) -> dict[str, Any]:
    """Activate ``version`` after verifying it; going back to an older version is a rollback."""
    registry = model_registry()
    previous = registry.active_version()
    metadata = registry.activate(version)
    action = MODEL_ROLLBACK if previous is not None and version < previous else MODEL_ACTIVATE
    audit_log().record(action, actor, {"model_version": version}, {"previous_version": previous})
    return metadata


def ensure_default_model() -> dict[str, Any] | None:
    """Train the default model from the shipped CSV when no version is active. None if one was."""
    if model_registry().active_version() is not None:
        return None
    logger.info("no active model: training the default one from %s", settings.DEFAULT_TRAINING_CSV)
    return model_train(csv_path=Path(settings.DEFAULT_TRAINING_CSV), actor=STARTUP, progress=False)
