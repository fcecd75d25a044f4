"""Every index the service needs, created explicitly (``manage.py ensure_indexes``, and at start-up
with the embedded store). Idempotent; ESTIMATION_TTL_DAYS changes are applied here."""

from __future__ import annotations

from django.conf import settings

from estimations.services import estimation_store
from ml.services import replay_reports
from ml.serving import model_registry

from .api_keys import api_key_store
from .audit import audit_log
from .mongo import get_database
from .throttling import COLLECTION as THROTTLE_COUNTERS
from .throttling import MongoCounters


def ensure_all_indexes() -> dict[str, list[str]]:
    """Per collection, the names of its indexes as created (or found)."""
    return {
        "estimations": estimation_store().ensure_indexes(ttl_days=settings.ESTIMATION_TTL_DAYS),
        "audit": audit_log().ensure_indexes(),
        "api_keys": api_key_store().ensure_indexes(),
        "models": model_registry().ensure_indexes(),
        "replays": replay_reports().ensure_indexes(),
        THROTTLE_COUNTERS: MongoCounters(get_database()[THROTTLE_COUNTERS]).ensure_indexes(),
    }
