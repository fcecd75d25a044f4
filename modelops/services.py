"""Replaying a model version over the stored estimations, beside the active one, and keeping the reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.audit import MODEL_REPLAY, Actor, audit_log
from estimations.selectors import estimations_sample
from ml.registry import RegistryError
from ml.serving import model_registry
from modelops.replay import FIELDS, replay
from modelops.replay_reports import replay_reports


class NothingToCompare(RegistryError):
    """A replay needs an active model to compare the candidate with."""


def model_replay(*, version: int, sample: int | None, actor: Actor, progress: bool = False) -> dict[str, Any]:
    """Re-estimate stored estimations with ``version`` beside the active model; store and return the report.

    Both versions are verified before they are loaded (as for serving). Stored estimations are only read.
    """
    registry = model_registry()
    active_version = registry.active_version()
    if active_version is None:
        raise NothingToCompare("no model version is active, so there is nothing to compare the candidate with")
    candidate, active = (registry.load_predictor(number) for number in (version, active_version))
    documents, total = estimations_sample(projection=FIELDS, size=sample)
    report = {
        "created": datetime.now(UTC),
        "version": version,
        "against_version": active_version,
        "actor": actor.as_document(),
        "sample": sample,
        **replay(documents, candidate=candidate, active=active, total=total, progress=progress),
    }
    reports = replay_reports()
    reports.ensure_indexes()
    reports.save(report)
    audit_log().record(
        MODEL_REPLAY,
        actor,
        {"model_version": version},
        {"report_id": str(report["_id"]), "against_version": active_version, "rows": report["rows"]},
    )
    return report
