"""Model operations as named functions, used by the management commands, the API and start-up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings

from core.audit import MODEL_ACTIVATE, MODEL_ROLLBACK, MODEL_TRAIN, Actor, audit_log
from ml.data import read_training_csv
from ml.markets import DEFAULT_MARKETPLACE, in_order, segment, shown, split_segment
from ml.registry import ModelRegistry
from ml.serving import model_registry
from ml.train import train

logger = logging.getLogger(__name__)


STARTUP = Actor(name="service", via="startup")

T = TypeVar("T")


def _here(work: Callable[[], T]) -> T:
    return work()


def _no_report(phase: str, **counts: int) -> None:
    pass


Warn = Callable[[list[str]], None]


def model_train(
    *,
    csv_path: Path,
    actor: Actor,
    activate: bool = True,
    skip_bad_rows: bool = False,
    seed: int = 0,
    progress: bool | None = None,
    name: str | None = None,
    on_progress: Callable[..., None] = _no_report,
    run_cpu: Callable[[Callable[[], Any]], Any] = _here,
    warn: Warn | None = None,
) -> dict[str, Any]:
    """Read and check the CSV, train, store a new version, and (by default) activate it.

    ``metadata["warnings"]`` says what activating the new version stops accepting (activation_changes);
    when it is activated, ``warn`` is given them first. A version that would take a category off the live
    service (held_back_reason) is stored but not activated, even when ``activate`` is asked:
    ``metadata["active"]`` is then False and ``metadata["held_back"]`` says why and how to activate it
    anyway (None otherwise).

    For the API's training jobs (ml/jobs.py): ``name`` is what messages and the metadata call the file;
    ``on_progress(phase, **counts)`` hears each phase (reading, with bytes_read, bytes_total and rows_read
    as it goes; fitting; storing; activating); ``run_cpu(work)`` runs the CPU-bound steps (reading and
    fitting) and returns their result, while the database writes stay in the caller's thread.
    """

    def on_read(done: int, total: int, rows: int) -> None:
        on_progress("reading", bytes_read=done, bytes_total=total, rows_read=rows)

    on_progress("reading", bytes_read=0, rows_read=0)
    dataset = run_cpu(
        lambda: read_training_csv(csv_path, skip_bad_rows=skip_bad_rows, progress=progress, name=name, on_read=on_read)
    )
    on_progress("fitting", rows_read=dataset.rows)
    trained = run_cpu(lambda: train(dataset, seed=seed))
    on_progress("storing")
    registry = model_registry()
    registry.ensure_indexes()
    metadata = registry.save(trained)
    audit_log().record(
        MODEL_TRAIN,
        actor,
        {"model_version": metadata["version"]},
        {"source": dataset.source, "sha256": dataset.sha256, "rows": dataset.rows},
    )
    current = _active_metadata(registry)
    changes = activation_changes(current=current, candidate=metadata)
    held_back = held_back_reason(current=current, candidate=metadata) if activate else None
    if held_back is not None:
        logger.warning("model version %s stored, not activated: %s", metadata["version"], held_back)
        activate = False
    if activate:
        on_progress("activating")
        metadata["warnings"] = model_activate(version=metadata["version"], actor=actor, warn=warn)["warnings"]
    else:
        metadata["warnings"] = changes
    metadata["active"] = activate
    metadata["held_back"] = held_back
    return metadata


def held_back_reason(*, current: dict[str, Any] | None, candidate: dict[str, Any]) -> str | None:
    """Why a training run must not activate ``candidate`` on its own, and how to activate it anyway; None
    when it may: nothing is active yet (the first version), or it serves DEFAULT_CATEGORY and every
    category the active version serves. An explicit activation (activate_model, POST
    /models/{version}/activate) only warns."""
    if current is None:
        return None
    version, segments = candidate["version"], set(candidate["categories"])
    default = _default_segment()
    lacks = in_order(set(current["categories"]) - segments) if current["version"] != version else []
    if default not in segments and default not in lacks:
        lacks = in_order([*lacks, default])
    if not lacks:
        return None
    named = ", ".join(shown(name) + (" (DEFAULT_CATEGORY)" if name == default else "") for name in lacks)
    several = len(lacks) > 1
    return (
        f"version {version} was stored but not activated: it lacks categor{'ies' if several else 'y'} {named}, "
        f"so activating it in place of version {current['version']} would make estimations "
        f"{'in them' if several else 'in it'} answer 422. To activate it anyway: POST /models/{version}/activate "
        f"with an admin API key, or python manage.py activate_model {version}"
    )


def _default_segment() -> str:
    return segment(settings.DEFAULT_MARKETPLACE, settings.DEFAULT_CATEGORY)


def activation_changes(*, current: dict[str, Any] | None, candidate: dict[str, Any]) -> list[str]:
    """What activating ``candidate`` in place of ``current`` (versions' metadata; None: no active version)
    stops accepting, one sentence each; empty when it accepts all that the current one does."""
    version, segments = candidate["version"], set(candidate["categories"])
    changes = []
    if _default_segment() not in segments:
        default, marketplace = settings.DEFAULT_CATEGORY, settings.DEFAULT_MARKETPLACE
        served = sorted(category for market, category in map(split_segment, segments) if market == marketplace)
        where = "" if marketplace == DEFAULT_MARKETPLACE else f" in marketplace '{marketplace}' (DEFAULT_MARKETPLACE)"
        changes.append(
            f"version {version} has no category '{default}' (DEFAULT_CATEGORY){where}, so a POST without a "
            f"category will answer 422; train on data with '{default}' rows, or set DEFAULT_CATEGORY to one of "
            f"{', '.join(served) or 'its categories'}"
        )
    if current is not None and current["version"] != version:
        lost = in_order(set(current["categories"]) - segments)
        if lost:
            changes.append(
                f"version {version} lacks {len(lost)} categor{'y' if len(lost) == 1 else 'ies'} that version "
                f"{current['version']} serves ({', '.join(map(shown, lost))}): estimations in them will answer 422"
            )
    return changes


def _active_metadata(registry: ModelRegistry) -> dict[str, Any] | None:
    active = registry.active_version()
    return registry.get(active) if active is not None else None


def model_activate(*, version: int, actor: Actor, warn: Warn | None = None) -> dict[str, Any]:
    """Activate ``version`` after verifying it; going back to an older version is a rollback.

    What this stops accepting (activation_changes) is logged, given to ``warn`` before the switch, and
    returned as ``metadata["warnings"]``."""
    registry = model_registry()
    previous = registry.active_version()
    candidate = registry.get(version)
    current = registry.get(previous) if previous is not None else None
    changes = activation_changes(current=current, candidate=candidate) if candidate is not None else []
    if changes and warn is not None:
        warn(changes)
    metadata = registry.activate(version)
    for change in changes:
        logger.warning("activating model version %s: %s", version, change)
    action = MODEL_ROLLBACK if previous is not None and version < previous else MODEL_ACTIVATE
    audit_log().record(action, actor, {"model_version": version}, {"previous_version": previous})
    return {**metadata, "warnings": changes}


def ensure_default_model() -> dict[str, Any] | None:
    """Train the default model from the shipped CSV when no version is active. None if one was."""
    if model_registry().active_version() is not None:
        return None
    logger.info("no active model: training the default one from %s", settings.DEFAULT_TRAINING_CSV)
    return model_train(csv_path=Path(settings.DEFAULT_TRAINING_CSV), actor=STARTUP, progress=False)
