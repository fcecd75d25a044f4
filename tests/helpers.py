"""Shared helpers for the tests: requests to the API, checks of the error envelope, stored documents,
fresh processes and the sample data. Fixtures live in conftest.py; the live server in live.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import gridfs
import pytest
from bson import ObjectId

from estimations.documents import stamp
from ml.predictor import Estimate
from ml.registry import BUCKET

if TYPE_CHECKING:
    from ml.registry import ModelRegistry
    from ml.train import TrainedModel

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "data" / "sample_sales.csv"
URL = "/estimations"
UNREACHABLE_URI = "mongodb://127.0.0.1:9/elections"  # the discard port: nothing listens there


# --- the API -----------------------------------------------------------------------------------------


def post_json(api, body, **extra):
    return api.post(URL, data=json.dumps(body), content_type="application/json", **extra)


def send(api, method: str, created: dict, body=None, if_match: str | None = "current"):
    """PUT/PATCH/DELETE one created estimation, with its current etag as If-Match unless told otherwise."""
    headers = {}
    if if_match is not None:
        headers["HTTP_IF_MATCH"] = created["_etag"] if if_match == "current" else if_match
    data = None if body is None else json.dumps(body)
    return getattr(api, method)(f"/estimations/{created['_id']}", data=data, content_type="application/json", **headers)


def assert_error_envelope(response, code: int) -> dict:
    assert response.status_code == code, response.content
    body = response.json()
    assert body["_status"] == "ERR", body
    assert body["_error"]["code"] == code, body
    assert body["_error"]["message"], body
    return body


def assert_hostile_request_changes_nothing(client, mongo_db, keys, method, path, body, content_type, headers, expected):
    """A hostile request (a row of the hostile-input tables) answers ``expected`` in the envelope, storing nothing."""
    # Given a collection with one estimation in it (and, where the case says so, an admin's key)
    client.post("/estimations", {"bestseller_rank": 5}, content_type="application/json")
    before = list(mongo_db["estimations"].find())
    if headers.get("admin"):
        headers = {"HTTP_AUTHORIZATION": f"Api-Key {keys['admin']}"}
    # When the hostile request arrives, its bytes as given (generic() does not re-encode the body)
    response = client.generic(method.upper(), path, body or b"", content_type or "application/octet-stream", **headers)

    # Then it answers the expected 4xx in Eve's envelope, and nothing stored changed
    assert response.status_code == expected, response.content[:300]
    envelope = response.json()
    assert envelope["_status"] == "ERR" and envelope["_error"]["code"] == expected
    assert envelope["_error"]["message"]
    assert list(mongo_db["estimations"].find()) == before


# --- what is stored ----------------------------------------------------------------------------------


def stored_count(mongo_db) -> int:
    return mongo_db["estimations"].count_documents({})


def stored(mongo_db, created) -> dict:
    return mongo_db["estimations"].find_one({"_id": ObjectId(created["_id"])})


def new_document(rank: int = 10) -> dict:
    """A stamped estimation document, ready for the store."""
    return stamp({"bestseller_rank": rank, "category": "books", "estimated_sales": 1, "model_version": "t"})


def replace(collection, query: dict, change) -> None:
    """Edit a stored document by replacing it whole (keeps BSON types on every server)."""
    document = collection.find_one(query)
    change(document)
    collection.replace_one({"_id": document["_id"]}, document)


def tamper_bytes(registry: ModelRegistry, version: int) -> None:
    """Swap the version's artifact for a copy with one byte changed, as someone with database access could."""
    file_id = registry.get(version)["artifact"]["file_id"]
    data = bytearray(registry.bucket.open_download_stream(file_id).read())
    data[len(data) // 2] ^= 0xFF
    forged_id = registry.bucket.upload_from_stream(f"model-v{version}.joblib", bytes(data))
    replace(registry.models, {"version": version}, lambda meta: meta["artifact"].update(file_id=forged_id))


def point_active_at(registry: ModelRegistry, version: int) -> None:
    """Make ``version`` active behind the API's back (activation would refuse it), as with database access."""
    registry.state.replace_one({"_id": "active"}, {"_id": "active", "version": version})


def file_id(registry: ModelRegistry, version: int):
    return registry.get(version)["artifact"]["file_id"]


def delete_a_chunk(registry: ModelRegistry, version: int) -> None:
    """Delete a chunk of the version's artifact from the bucket's chunks collection."""
    fid = file_id(registry, version)
    assert registry.database[f"{BUCKET}.chunks"].delete_one({"files_id": fid}).deleted_count >= 1
    with pytest.raises(gridfs.errors.CorruptGridFile):  # what the reproduction met
        registry.bucket.open_download_stream(fid).read()


def reupload(registry: ModelRegistry, version: int, data: bytes) -> None:
    """Store ``data`` as a new file and point the version at it: the artifact changed."""
    new_id = registry.bucket.upload_from_stream(f"model-v{version}.joblib", data)
    replace(registry.models, {"version": version}, lambda meta: meta["artifact"].update(file_id=new_id))


def known_departure(on_nx: bool, what: str) -> None:
    """Mark a check that MongoDB passes and nx-27017 does not (MongoDB's behaviour is the spec)."""
    if on_nx:
        pytest.xfail(f"nx-27017 departs from MongoDB: {what}")


# --- fresh processes ---------------------------------------------------------------------------------


def run_python(code: str, env_overrides: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh process: this environment without the settings the tests decide (no env
    file, no key, no DEBUG, no database, no metrics directory), then ``env_overrides``."""
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG", "MONGO_URI")}
    env = {key: value for key, value in env.items() if not key.startswith("PROMETHEUS")}
    env.update({"DJANGO_SETTINGS_MODULE": "estimator_project.settings", "DJANGO_ENV_FILE": os.devnull})
    env.update({**env_overrides, "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def run_django(env_overrides: dict[str, str], show: str = "") -> subprocess.CompletedProcess:
    """Start Django in a fresh process with this environment; print 'started' and the named settings."""
    return run_python(
        "import django, json; django.setup(); from django.conf import settings; print('started'); "
        f"print(json.dumps({{name: getattr(settings, name) for name in {show.split()!r}}}, default=str))",
        env_overrides,
    )


def hostile_table_test(cases):
    """The test of a table of hostile requests: (name, method, path, body, content type, headers, status)."""

    @pytest.mark.parametrize(
        ("method", "path", "body", "content_type", "headers", "expected"),
        [case[1:] for case in cases],
        ids=[case[0] for case in cases],
    )
    def test(client, mongo_db, active_model, keys, method, path, body, content_type, headers, expected):
        assert_hostile_request_changes_nothing(
            client, mongo_db, keys, method, path, body, content_type, headers, expected
        )

    return test


def queue_length(group) -> int:
    """How many documents wait behind a GroupInsert's write in progress (what its tests synchronise on)."""
    return len(group._queue)


def legacy_trained_model() -> TrainedModel:
    """A version as train() made it before issue 20 (ml/legacy.py): residual quantiles, no model card."""
    from datetime import UTC, datetime

    import numpy as np
    import sklearn

    from ml.data import read_training_csv
    from ml.legacy import build_legacy_pipeline
    from ml.pipeline import model_input
    from ml.train import INTERVAL, TrainedModel

    data = read_training_csv(SAMPLE_CSV, progress=False)
    X = model_input(data.categories, data.ranks)
    pipeline = build_legacy_pipeline().fit(X, data.sales)
    names = [str(name) for name in pipeline.regressor_.named_steps["features"].categories_]
    residuals = np.log1p(data.sales) - pipeline.regressor_.predict(X)
    rows = {name: data.categories == name for name in names}
    metadata = {
        "created": datetime.now(UTC),
        "sklearn_version": sklearn.__version__,
        "training_data": {"source": "sample_sales.csv", "sha256": data.sha256, "rows": data.rows},
        "categories": names,
        "metrics": {"overall": {"rows": 0}, "per_category": {}},
        "interval": list(INTERVAL),
        "residual_quantiles": {
            name: [float(q) for q in np.quantile(residuals[rows[name]], INTERVAL)] for name in names
        },
        "rank_range": {name: [int(data.ranks[rows[name]].min()), int(data.ranks[rows[name]].max())] for name in names},
    }
    return TrainedModel(pipeline=pipeline, metadata=metadata)


# --- a fake model (issue 21's estimator contract) ------------------------------------------------


@dataclass
class FakeModel:
    """Sells 1,000,000 / rank units, whatever the category (in "de": half that); over a history, the
    mean of its samples' ranks' sales."""

    version: int = 7
    categories: tuple[str, ...] = ("books", "toys_games")
    markets: dict = field(default_factory=lambda: {"us": ("books", "toys_games"), "de": ("books",)})

    def estimate(self, rank: int, category: str, marketplace: str = "us") -> Estimate:
        if category not in self.markets[marketplace]:
            raise KeyError((marketplace, category))
        sales = 1_000_000 // rank // (2 if marketplace == "de" else 1)
        return Estimate(sales, sales // 2, sales * 2, False, round(sales / 30.4375, 1))

    def estimate_many(self, ranks, categories, marketplaces=None) -> list[Estimate]:
        marketplaces = marketplaces or ["us"] * len(ranks)
        return [self.estimate(*row) for row in zip(ranks, categories, marketplaces, strict=True)]

    def estimate_history(self, seconds, ranks, category, marketplace="us") -> Estimate:
        sales = sum(self.estimate(rank, category, marketplace).sales for rank in ranks) // len(ranks)
        return Estimate(sales, sales // 2, sales * 2, False, round(sales / 30.4375, 1))
