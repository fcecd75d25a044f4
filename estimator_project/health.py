"""Health endpoints for orchestrators: /health/live (the process answers) and /health/ready (the
database answers and a model is loaded; otherwise 503 in the error envelope, with each check's result).

More: docs/architecture.md, "estimator_project/health.py".
"""

from __future__ import annotations

import pymongo
from django.conf import settings
from django.http import JsonResponse
from pymongo.errors import PyMongoError
from pymongo.read_preferences import ReadPreference

from core.errors import envelope
from core.mongo import get_database, reads_preference
from ml.serving import NoActiveModel, get_estimator, refused_active_version
from modelops import indexes

MSG_NOT_READY = "Not ready: {reasons}."
DATABASE_OK = "ok"
NO_PRIMARY = "no primary (election in progress?): reads are served, writes answer 503 until one is elected"
NO_PRIMARY_NO_READS = (
    "no primary (election in progress?): reads (MONGO_READ_PREFERENCE={mode}) and writes answer 503 until one "
    "is elected"
)


def _serves(database: str) -> bool:
    """Whether the service is ready as far as the database goes: it answers, with or without a primary."""
    return database == DATABASE_OK or database.startswith("no primary")


def live(request) -> JsonResponse:
    return JsonResponse({"status": "live"})


def ready(request) -> JsonResponse:
    checks = {"database": _database()}
    answers = _serves(checks["database"])
    checks["model"] = _model() if answers else "not checked: no database"
    if checks["database"] == DATABASE_OK:
        checks["indexes"] = indexes.readiness()
    else:  # listed from the primary only
        checks["indexes"] = "not checked: no primary" if answers else "not checked: no database"
    if answers and checks["model"].startswith("version"):
        return JsonResponse({"status": "ready", "checks": checks})
    reasons = "; ".join(f"{name}: {result}" for name, result in checks.items())
    return JsonResponse(envelope(503, MSG_NOT_READY.format(reasons=reasons), checks=checks), status=503)


def _ping(read_preference) -> None:
    """One ping, to a member the read preference selects, within MONGO_READY_TIMEOUT_MS (server
    selection included; also within what is left of the request's own budget)."""
    with pymongo.timeout(settings.MONGO_READY_TIMEOUT_MS / 1000):
        get_database().command("ping", read_preference=read_preference)


def _database() -> str:
    try:
        _ping(ReadPreference.PRIMARY)
        return DATABASE_OK
    except PyMongoError as exc:
        no_primary = exc
    # No primary answered. Is the database gone, or between two primaries? Ask the members that the
    # reads may go to; with MONGO_READ_PREFERENCE=primary (no read goes elsewhere), any member.
    preference = reads_preference()
    can_read = preference != ReadPreference.PRIMARY
    try:
        _ping(preference if can_read else ReadPreference.NEAREST)
    except PyMongoError:
        return f"unreachable ({type(no_primary).__name__})"
    if can_read:
        return NO_PRIMARY
    return NO_PRIMARY_NO_READS.format(mode=settings.MONGO_READ_PREFERENCE)


def _model() -> str:
    try:
        served = f"version {get_estimator().version}"
    except (NoActiveModel, PyMongoError):
        served = ""
    refused = refused_active_version()
    if refused is None:
        return served or "no active model (run: python manage.py train_model)"
    version, reason = refused
    if served:  # still serving what it had: ready, and saying why the newer one is not served
        return f"{served} (active version {version} refused: {reason})"
    return f"active version {version} refused: {reason}; run: python manage.py train_model"
