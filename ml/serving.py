"""Which model answers requests, and how a newly activated one is picked up without a restart.

Each process keeps the model it serves in memory as a ``FastModel``. At most every
MODEL_REFRESH_SECONDS, one request thread (never more than one at a time; the others go on with the
current model) reads the active version from MongoDB; if it changed, the new version is fetched,
verified, loaded and swapped in. A version that fails verification is refused with a logged error and
the process keeps serving what it had.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time

from django.conf import settings
from pymongo.errors import PyMongoError
from rest_framework.exceptions import APIException

from estimator_project.mongo import get_database
from estimator_project.observability import ACTIVE_MODEL, MODEL_LOAD_FAILURES

from .fast import FastModel
from .registry import ArtifactRefused, ModelRegistry, UnknownVersion

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


class ModelHolder:
    def __init__(self) -> None:
        self.model: FastModel | None = None
        self.checked_at = float("-inf")
        self.refused: dict[int, str] = {}  # version -> why it was not loaded
        self.active_refused: int | None = None  # the active version, when it is one of those
        self._lock = threading.Lock()

    def get(self) -> FastModel:
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
                raise NoActiveModel(MSG_REFUSED.format(version=refused, reason=self.refused[refused]))
            raise NoActiveModel()
        return self.model

    def refresh(self) -> None:
        self.checked_at = time.monotonic()
        registry = model_registry()
        try:
            version = registry.active_version()
        except PyMongoError:
            if self.model is None:
                raise  # nothing to serve: the request answers 503 (database unavailable)
            logger.warning("could not read the active model version; still serving version %s", self.model.version)
            return
        self.active_refused = version if version in self.refused else None
        if version is None or (self.model is not None and version == self.model.version) or version in self.refused:
            return
        try:
            loaded = registry.load(version)
        except (ArtifactRefused, UnknownVersion) as exc:
            self.refused[version] = str(exc)
            self.active_refused = version
            MODEL_LOAD_FAILURES.inc()
            kept = self.model.version if self.model else "none"
            logger.error("refused to load model version %s: %s (still serving: %s)", version, exc, kept)
            return
        self.model = FastModel.from_metadata(loaded.pipeline, version=version, metadata=loaded.metadata)
        ACTIVE_MODEL.set(version)
        logger.info("now serving model version %s", version)


_holder = ModelHolder()


def get_estimator() -> FastModel:
    """The active model, as this process serves it. Raises NoActiveModel (503) when there is none."""
    return _holder.get()


def refused_active_version() -> tuple[int, str] | None:
    """The active version and why this process refused to load it, when it did (else None)."""
    holder = _holder
    version = holder.active_refused
    return (version, holder.refused[version]) if version is not None else None


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
