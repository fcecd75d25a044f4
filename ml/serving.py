"""Which model answers requests, and how a newly activated one is picked up without a restart.

More: docs/architecture.md, "ml/serving.py".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from pymongo.errors import PyMongoError
from rest_framework.exceptions import APIException

from core.mongo import get_database
from core.observability import ACTIVE_MODEL, MODEL_LOAD_FAILURES, MODEL_REFRESH_FAILURES
from ml.predictor import ServedModel
from ml.registry import ModelRegistry, RegistryError

logger = logging.getLogger(__name__)

MSG_NO_MODEL = (
    "No sales model is active yet, so nothing can be estimated. Train one with "
    "`python manage.py train_model --csv data/sample_sales.csv` (`make run` does this), "
    "or activate a trained version with `python manage.py activate_model VERSION`."
)


MSG_REFUSED = (
    "Model version {version} is active, but this service refused to load it: {reason}. Train a new version "
    "with `python manage.py train_model`, or activate one that loads with `python manage.py activate_model VERSION`."
)


class NoActiveModel(APIException):
    status_code = 503
    default_detail = MSG_NO_MODEL
    default_code = "no_active_model"


def signing_key() -> bytes:
    """MODEL_SIGNING_KEY, or a key derived from SECRET_KEY when it is not set."""
    if settings.MODEL_SIGNING_KEY:
        return settings.MODEL_SIGNING_KEY.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"model-signing", hashlib.sha256).digest()


def model_registry() -> ModelRegistry:
    return ModelRegistry(get_database(), signing_key())


@dataclass(frozen=True)
class Refusal:
    reason: str  # why the version was not loaded
    seen: tuple[Any, ...]  # its activation, metadata and file when it was refused (what would have to change)


class ModelHolder:
    def __init__(self) -> None:
        self.model: ServedModel | None = None
        self.checked_at = float("-inf")
        self.refused: dict[int, Refusal] = {}  # version -> why it was not loaded, and what it was then
        self.active_refused: int | None = None  # the active version, when it is one of those
        self._lock = threading.Lock()

    def get(self) -> ServedModel:
        if self.model is None or time.monotonic() - self.checked_at >= settings.MODEL_REFRESH_SECONDS:
            # Without a model every thread must wait for one; with one, only one thread refreshes.
            if self._lock.acquire(blocking=self.model is None):
                try:
                    if self.model is None or time.monotonic() - self.checked_at >= settings.MODEL_REFRESH_SECONDS:
                        self.refresh()
                finally:
                    self._lock.release()
        if self.model is None:
            refused = self.active_refused
            if refused is not None:
                raise NoActiveModel(MSG_REFUSED.format(version=refused, reason=self.refused[refused].reason))
            raise NoActiveModel()
        return self.model

    def refresh(self) -> None:
        self.checked_at = time.monotonic()
        try:
            self._check()
        except Exception as exc:
            if self.model is None:
                raise  # nothing to serve: the request fails (503 for a database error)
            MODEL_REFRESH_FAILURES.inc()
            if isinstance(exc, PyMongoError):
                logger.warning(
                    "could not read the active model from the database (%s); still serving version %s",
                    type(exc).__name__,
                    self.model.version,
                )
            else:
                logger.exception("checking for a new active model failed; still serving version %s", self.model.version)

    def _check(self) -> None:
        registry = model_registry()
        state = registry.active_state() or {}
        version = state.get("version")
        if version is None or (self.model is not None and version == self.model.version):
            self.active_refused = None
            return
        # What the version is now: a refusal stands until it is activated again or its artifact changes.
        seen = (state.get("activated"), *registry.artifact_state(version))
        refusal = self.refused.get(version)
        if refusal is not None and refusal.seen == seen:
            self.active_refused = version
            return
        if refusal is not None:
            logger.info("model version %s was activated again or its artifact changed: trying it again", version)
        self._load(registry, version, seen)

    def _load(self, registry: ModelRegistry, version: int, seen: tuple[Any, ...]) -> None:
        try:
            model = registry.load_predictor(version)
        except PyMongoError:
            raise  # the database, not the version: tried again at the next check
        except Exception as exc:  # RegistryError says why; anything else is still this version's fault
            if isinstance(exc, RegistryError):
                reason = str(exc)
            else:
                reason = f"model version {version} could not be loaded ({type(exc).__name__})"
                logger.exception("loading model version %s failed", version)
            self.refused[version] = Refusal(reason=reason, seen=seen)
            self.active_refused = version
            MODEL_LOAD_FAILURES.inc()
            kept = self.model.version if self.model else "none"
            logger.error("refused to load model version %s: %s (still serving: %s)", version, reason, kept)
            return
        self.refused.pop(version, None)
        self.active_refused = None
        self.model = model
        ACTIVE_MODEL.set(version)
        logger.info("now serving model version %s", version)


_holder = ModelHolder()


def get_estimator() -> ServedModel:
    """The active model, as this process serves it. Raises NoActiveModel (503) when there is none."""
    return _holder.get()


def refused_active_version() -> tuple[int, str] | None:
    """The active version and why this process refused to load it, when it did (else None)."""
    holder = _holder
    version = holder.active_refused
    refusal = holder.refused.get(version) if version is not None else None
    return None if version is None or refusal is None else (version, refusal.reason)


def known_categories() -> tuple[str, ...]:
    """The active model's categories, or none (for forms and the schema, which must render anyway)."""
    try:
        return get_estimator().categories
    except (NoActiveModel, PyMongoError):
        return ()


def reset() -> None:
    """Forget the served model (tests, which switch databases)."""
    global _holder
    _holder = ModelHolder()
