"""Health endpoints for orchestrators: /health/live (the process answers) and /health/ready (it can
serve: the database answers and a model is loaded). Not ready answers 503 in the error envelope, with
each check's result so an operator sees why."""

from __future__ import annotations

from django.http import JsonResponse
from pymongo.errors import PyMongoError

from estimations.errors import envelope
from ml.serving import NoActiveModel, get_estimator

from .mongo import get_database

MSG_NOT_READY = "Not ready: {reasons}."


def live(request) -> JsonResponse:
    return JsonResponse({"status": "live"})


def ready(request) -> JsonResponse:
    checks = {"database": _database()}
    checks["model"] = _model() if checks["database"] == "ok" else "not checked: no database"
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
        return f"version {get_estimator().version}"
    except (NoActiveModel, PyMongoError):
        return "no active model (run: python manage.py train_model)"
