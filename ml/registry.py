"""The model registry in MongoDB: artifact bytes in GridFS, metadata in ``models``, the active version
in ``model_state``. Every API replica reads the same registry, so none needs a shared disk.

More: docs/architecture.md, "ml/registry.py".
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import gridfs
import joblib
import sklearn
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core import index_sync
from ml.legacy import LegacyPredictor
from ml.predictor import Predictor, ServedModel
from ml.train import TrainedModel

logger = logging.getLogger(__name__)

MODELS = "models"
STATE = "model_state"
BUCKET = "model_artifacts"
INDEXES = [IndexModel([("version", ASCENDING)], name="version", unique=True)]
ACTIVE = "active"
READY, UPLOADING = "ready", "uploading"


class RegistryError(Exception):
    """A registry operation that cannot be done; the message says why."""


class UnknownVersion(RegistryError):
    pass


class ArtifactRefused(RegistryError):
    """The artifact is missing, damaged or failed verification, and was not loaded."""


@dataclass
class LoadedModel:
    """A stored version's artifact, verified and unpickled, with its metadata."""

    version: int
    pipeline: Any
    metadata: dict[str, Any]


def _signed_payload(artifact_sha256: str, metadata: dict[str, Any]) -> bytes:
    """What the signature covers besides the bytes: every field serving trusts."""
    fields = {
        "version": metadata["version"],
        "sklearn_version": metadata["sklearn_version"],
        "artifact_sha256": artifact_sha256,
        "categories": metadata["categories"],
        "residual_quantiles": metadata.get("residual_quantiles"),  # versions before issue 20 only
        "rank_range": metadata["rank_range"],
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def sign(key: bytes, artifact_sha256: str, metadata: dict[str, Any]) -> str:
    return hmac.new(key, _signed_payload(artifact_sha256, metadata), hashlib.sha256).hexdigest()


class ModelRegistry:
    def __init__(self, database: Database, signing_key: bytes):
        self.database = database
        self.models = database[MODELS]
        self.state = database[STATE]
        self.bucket = gridfs.GridFSBucket(database, bucket_name=BUCKET)
        self._key = signing_key

    def ensure_indexes(self) -> list[str]:
        return index_sync.ensure(self.models, INDEXES)

    def index_differences(self) -> list[str]:
        """What ``ensure_indexes`` would change, one line each; empty: all in place."""
        return index_sync.described(self.models, INDEXES)

    # --- writing ------------------------------------------------------------------------------

    def save(self, trained: TrainedModel) -> dict[str, Any]:
        """Store a new version (the next number) and return its metadata. Not activated here."""
        artifact = trained.artifact()
        version = self._claim_version()
        try:
            file_id = self.bucket.upload_from_stream(
                f"model-v{version}.joblib", artifact, metadata={"version": version}
            )
            digest = hashlib.sha256(artifact).hexdigest()
            document = {**trained.metadata, "version": version, "status": READY}
            document["artifact"] = {"file_id": file_id, "sha256": digest, "bytes": len(artifact)}
            document["signature"] = sign(self._key, digest, document)
            # A whole-document replace: every field keeps its BSON type.
            self.models.replace_one({"version": version}, document)
        except Exception:
            self.models.delete_one({"version": version, "status": UPLOADING})
            raise
        return document

    def _claim_version(self) -> int:
        for _ in range(20):
            latest = self.models.find_one({}, {"version": 1}, sort=[("version", DESCENDING)])
            version = (latest["version"] if latest else 0) + 1
            try:
                self.models.insert_one({"version": version, "status": UPLOADING, "created": datetime.now(UTC)})
                return version
            except DuplicateKeyError:
                continue  # another training run took this number: take the next
        raise RegistryError("could not claim a model version number; too many concurrent saves")

    def activate(self, version: int) -> dict[str, Any]:
        """Make ``version`` the active one, after checking that it loads. Returns its metadata."""
        self.load_predictor(version)  # refuse to activate what serving would refuse to load
        now = datetime.now(UTC)
        self.state.replace_one({"_id": ACTIVE}, {"_id": ACTIVE, "version": version, "activated": now}, upsert=True)
        return self.get(version) or {}

    # --- reading ------------------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        return list(self.models.find({"status": READY}, {"_id": 0}).sort("version", DESCENDING))

    def get(self, version: int) -> dict[str, Any] | None:
        return self.models.find_one({"version": version, "status": READY}, {"_id": 0})

    def active_version(self) -> int | None:
        state = self.active_state()
        return state["version"] if state else None

    def active_state(self) -> dict[str, Any] | None:
        """The active version and when it was activated: ``{"version": N, "activated": date}``, or None."""
        return self.state.find_one({"_id": ACTIVE})

    def artifact_state(self, version: int) -> tuple[dict[str, Any] | None, tuple[Any, ...] | None]:
        """What loading ``version`` would read, short of the bytes: its metadata and its GridFS file's
        upload date and length (None where missing). Serving compares it to tell a changed artifact."""
        metadata = self.models.find_one({"version": version}, {"_id": 0})
        artifact = metadata.get("artifact") if metadata else None
        file_id = artifact.get("file_id") if isinstance(artifact, dict) else None
        stored = None
        if file_id is not None:
            for grid_out in self.bucket.find({"_id": file_id}, limit=1):
                stored = (grid_out.upload_date, grid_out.length)
        return metadata, stored

    def load_predictor(self, version: int) -> ServedModel:
        """Version ``version`` as the Predictor that serves it: fetched and verified (``load``), then read
        into its segments. Raises what ``load`` raises; a pipeline or metadata the Predictor cannot read is
        refused too (ArtifactRefused)."""
        loaded = self.load(version)
        try:
            if "model_card" not in loaded.metadata:  # trained before issue 20
                return LegacyPredictor.from_metadata(loaded.pipeline, version=version, metadata=loaded.metadata)
            return Predictor.from_metadata(loaded.pipeline, version=version, metadata=loaded.metadata)
        except Exception as exc:  # verified, yet not a model this service can serve
            logger.exception("reading model version %s into a predictor failed", version)
            raise ArtifactRefused(f"model version {version} could not be loaded ({type(exc).__name__})") from exc

    def load(self, version: int) -> LoadedModel:
        """Fetch and verify version ``version``; only then unpickle it.

        Every way the stored version can be wrong (no metadata, a missing, truncated or damaged
        artifact, checksum, signature, scikit-learn version, bytes that do not unpickle) raises a
        RegistryError saying which; only a database that does not answer raises PyMongoError."""
        metadata = self.get(version)
        if metadata is None:
            raise UnknownVersion(f"there is no model version {version}")
        if metadata.get("sklearn_version") != sklearn.__version__:
            raise ArtifactRefused(
                f"model version {version} was made by scikit-learn {metadata.get('sklearn_version')} and this "
                f"service runs scikit-learn {sklearn.__version__}; retrain it with this version"
            )
        try:
            file_id, checksum = metadata["artifact"]["file_id"], str(metadata["artifact"]["sha256"])
        except (KeyError, TypeError) as exc:
            raise ArtifactRefused(f"model version {version}: its metadata names no artifact") from exc
        artifact = self._artifact(version, file_id)
        digest = hashlib.sha256(artifact).hexdigest()
        if not hmac.compare_digest(digest, checksum):
            raise ArtifactRefused(f"model version {version}: the artifact's bytes do not match its checksum")
        try:
            expected = sign(self._key, digest, metadata)
        except KeyError as exc:
            raise ArtifactRefused(f"model version {version}: its metadata lacks {exc}, which is signed") from exc
        if not hmac.compare_digest(expected, str(metadata.get("signature", ""))):
            raise ArtifactRefused(
                f"model version {version}: the signature does not verify with this key (it was signed with "
                "another MODEL_SIGNING_KEY, or another SECRET_KEY when MODEL_SIGNING_KEY is unset, or it was "
                "tampered with)"
            )
        try:
            pipeline = joblib.load(io.BytesIO(artifact))
        except Exception as exc:  # signed by us, yet this process cannot rebuild it (e.g. a missing module)
            raise ArtifactRefused(
                f"model version {version}: the artifact verified but could not be loaded "
                f"({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        return LoadedModel(version=version, pipeline=pipeline, metadata=metadata)

    def _artifact(self, version: int, file_id: Any) -> bytes:
        """The artifact's bytes from GridFS. A missing file, or one with missing or wrong-sized chunks, is
        refused (GridFS errors are PyMongoErrors, but no retry mends them)."""
        try:
            return self.bucket.open_download_stream(file_id).read()
        except gridfs.errors.NoFile as exc:
            raise ArtifactRefused(f"model version {version} has no artifact in the registry") from exc
        except gridfs.errors.GridFSError as exc:  # CorruptGridFile: a chunk missing, truncated or out of place
            raise ArtifactRefused(
                f"model version {version}: its artifact is damaged in the registry ({str(exc)[:200]})"
            ) from exc
