"""Every index the service needs, created explicitly (``manage.py ensure_indexes``, and at start-up:
the image's start chain runs ``manage.py ensure_indexes --at-start``; the embedded store's server builds
its own). Idempotent and conflict-resolving (index_sync.py); ESTIMATION_TTL_DAYS changes are applied here.

More: docs/architecture.md, "modelops/indexes.py".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

from core.api_keys import api_key_store
from core.audit import audit_log
from core.mongo import database_name
from core.throttling import COLLECTION as THROTTLE_COUNTERS
from core.throttling import mongo_counters
from estimations.store import estimation_store
from ml.serving import model_registry
from modelops.replay_reports import replay_reports

logger = logging.getLogger(__name__)

RUN = "python manage.py ensure_indexes"


@dataclass
class Rollout:
    """Per collection, the names its indexes are in place under; and what failed, with why."""

    in_place: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, PyMongoError] = field(default_factory=dict)


class IndexesNotEnsured(Exception):
    def __init__(self, rollout: Rollout):
        self.rollout = rollout
        super().__init__("; ".join(f"{name}: {exc}" for name, exc in rollout.failed.items()))


def _ensurers() -> dict[str, Callable[[], list[str]]]:
    return {
        "estimations": lambda: estimation_store().ensure_indexes(ttl_days=settings.ESTIMATION_TTL_DAYS),
        "audit": lambda: audit_log().ensure_indexes(),
        "api_keys": lambda: api_key_store().ensure_indexes(),
        "models": lambda: model_registry().ensure_indexes(),
        "replays": lambda: replay_reports().ensure_indexes(),
        THROTTLE_COUNTERS: lambda: mongo_counters().ensure_indexes(),
    }


def ensure_all_indexes() -> dict[str, list[str]]:
    """Per collection, the names of its indexes as created (or found). Every collection is tried; when
    any failed, ``IndexesNotEnsured`` says which and why (after the others are done)."""
    rollout = Rollout()
    for name, ensure in _ensurers().items():
        try:
            rollout.in_place[name] = ensure()
        except PyMongoError as exc:
            rollout.failed[name] = exc
            if isinstance(exc, ServerSelectionTimeoutError):
                break  # no server: the other collections would only say the same
    forget_check()
    if rollout.failed:
        raise IndexesNotEnsured(rollout)
    return rollout.in_place


def differences() -> list[str]:
    """What ``ensure_all_indexes`` would change, one line each ("estimations.rank: missing")."""
    found = estimation_store().index_differences(ttl_days=settings.ESTIMATION_TTL_DAYS)
    for store in (audit_log(), api_key_store(), model_registry(), replay_reports(), mongo_counters()):
        found += store.index_differences()
    return found


def summary(found: list[str]) -> str:
    """'missing: a.x, a.y; differs: b.z (run: ...)' for what ``differences`` found, or 'ok'."""
    if not found:
        return "ok"
    missing = [line.split(": ", 1)[0] for line in found if line.endswith(": missing")]
    differing = [line.split(": ", 1)[0] for line in found if not line.endswith(": missing")]
    parts = [f"{label}: {', '.join(names)}" for label, names in (("missing", missing), ("differs", differing)) if names]
    return f"{'; '.join(parts)} (run: {RUN})"


# --- at start -----------------------------------------------------------------------------------


def describe_failure(exc: PyMongoError) -> str:
    from core.commands import describe_database_error

    if exc.timeout and not isinstance(exc, ServerSelectionTimeoutError):
        return (
            f"it did not finish within INDEX_BUILD_TIMEOUT_MS={settings.INDEX_BUILD_TIMEOUT_MS} ms "
            f"({type(exc).__name__})"
        )
    return describe_database_error(exc).rstrip(".")


def ensure_at_start(*, defer: bool) -> bool:
    """What a start chain runs: build (or, deferred, only report) and never raise. One log line says what
    is missing or what failed, and what to run; whether every index is in place."""
    try:
        if defer:
            found = differences()
            if found:
                logger.warning(
                    "ENSURE_INDEXES=defer: no index built at start; the API serves on the indexes in place. "
                    "Missing or differing: %s. Build them with: %s",
                    "; ".join(found),
                    RUN,
                )
            return not found
        ensure_all_indexes()
        return True
    except IndexesNotEnsured as exc:
        failures = "; ".join(f"{name}: {describe_failure(error)}" for name, error in exc.rollout.failed.items())
        logger.error(
            "Index build at start failed on %s. The API starts all the same, on the indexes in place "
            "(/health/ready reports what is missing). Build them with: %s",
            failures,
            RUN,
        )
    except PyMongoError as exc:
        logger.error(
            "Index check at start failed: %s. The API starts all the same, on the indexes in place. Check them "
            "with: %s --check",
            describe_failure(exc),
            RUN,
        )
    return False


# --- what /health/ready reports -------------------------------------------------------------------

_lock = threading.Lock()
_checked: dict[tuple[str, str], tuple[float, str]] = {}


def forget_check() -> None:
    with _lock:
        _checked.clear()


def readiness() -> str:
    """``checks.indexes`` of /health/ready: 'ok', or what is missing and what to run. Listing indexes
    costs a command per collection, so the answer is kept INDEX_CHECK_SECONDS in this process."""
    where = (settings.MONGO_URI, database_name())
    now = time.monotonic()
    with _lock:
        kept = _checked.get(where)
    if kept and now - kept[0] < settings.INDEX_CHECK_SECONDS:
        return kept[1]
    try:
        answer = summary(differences())
    except PyMongoError as exc:
        answer = f"not checked ({type(exc).__name__})"
    with _lock:
        _checked[where] = (now, answer)
    return answer
