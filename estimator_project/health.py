"""Health endpoints for orchestrators: /health/live (the process answers) and /health/ready (it can
serve: the database answers and a model is loaded). Not ready answers 503 in the error envelope, with
each check's result so an operator sees why. ``checks.indexes`` says what indexes are missing without
making the service unready: it serves on the indexes in place (docs/operations.md, "Indexes")."""

from __future__ import annotations

from django.http import JsonResponse
from pymongo.errors import PyMongoError

from estimations.errors import envelope
from ml.serving import NoActiveModel, get_estimator, refused_active_version

from . import indexes
from .mongo import get_database

MSG_NOT_READY = "Not ready: {reasons}."


def live(request) -> JsonResponse:
    return JsonResponse({"status": "live"})


def ready(request) -> JsonResponse:
    checks = {"database": _database()}
    checks["model"] = _model() if checks["database"] == "ok" else "not checked: no database"
    checks["indexes"] = indexes.readiness() if checks["database"] == "ok" else "not checked: no database"
    if checks["database"] == "ok" and checks["model"].startswith("version"):
        return JsonResponse({"status": "ready", "checks": checks})
    reasons = "; ".join(f"{name}: {result}" for name, result in checks.items())
    return JsonResponse(envelope(503, MSG_NOT_READY.format(reasons=reasons), checks=checks), status=503)


def _database() -> str:
    try:
        get_database().command("ping")
    except PyMongoError as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"


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
