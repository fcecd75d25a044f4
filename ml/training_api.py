"""HTTP for training through the API: POST /models (a training CSV, admin API key) and
GET /models/jobs/{id} (the training job it started). The jobs themselves: ml/jobs.py runs them,
ml/job_store.py keeps them."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_keys import HasScope
from core.audit import api_actor
from core.errors import BadQuery, PayloadTooLarge, ServiceUnavailable
from core.http import http_date
from core.limits import whole_number
from core.openapi import COMMON, ErrorDetailSerializer, error_response
from ml.api import ModelListView
from ml.data import REQUIRED_COLUMNS
from ml.job_store import DONE, FAILED, QUEUED, RUNNING, STALE_SECONDS, SUCCEEDED, training_jobs
from ml.jobs import TrainingUpload, start_training
from ml.train import ISSUE_SEED, MAX_SEED

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/csv"
DEFAULT_NAME = "upload.csv"
MAX_NAME = 100
OPTIONS = ("activate", "skip_bad_rows", "seed", "name")
PHASES = [QUEUED, "reading", "fitting", "storing", "activating", DONE]

MSG_TOO_LARGE = (
    "The training CSV is larger than the {limit:,} bytes this service accepts (MODEL_TRAINING_MAX_BYTES); "
    "train on a smaller file, or raise the setting."
)
MSG_SEND_CSV = (
    "Send the training CSV as the body with Content-Type: text/csv (a header line naming "
    f"{','.join(REQUIRED_COLUMNS)}, optionally marketplace, or monthly_sales_min/_max in place of monthly_sales; "
    "then one row per product-month), for example "
    "curl -H 'Content-Type: text/csv' --data-binary @my_sales.csv."
)
MSG_EMPTY = "The body is empty. " + MSG_SEND_CSV
MSG_TRUNCATED = (
    "The body ended after {got:,} of the {declared:,} bytes its Content-Length announced; nothing was trained."
)
MSG_NOT_SAVED = "The service could not save the upload to a temporary file right now; nothing was trained. Retry later."
MSG_UNKNOWN_JOB = "There is no training job {id}; POST a training CSV to /models to start one."
ISSUE_BOOLEAN = "must be true or false"
ISSUE_NAME = f"must be 1 to {MAX_NAME} printable characters (the name recorded as the training data's source)"
ISSUE_UNKNOWN = "unknown parameter: POST /models takes " + ", ".join(OPTIONS)


class TrainingCsvParser(BaseParser):
    """text/csv, streamed to a temporary file within MODEL_TRAINING_MAX_BYTES (not MAX_BODY_BYTES)."""

    media_type = MEDIA_TYPE

    def parse(self, stream, media_type=None, parser_context=None) -> TrainingUpload:
        limit = settings.MODEL_TRAINING_MAX_BYTES
        too_large = lambda: PayloadTooLarge(MSG_TOO_LARGE.format(limit=limit))  # noqa: E731
        request = (parser_context or {}).get("request")
        declared = str(request.META.get("CONTENT_LENGTH") or "") if request is not None else ""
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise too_large()  # refused before a byte is read
        try:
            upload = TrainingUpload.receive(stream, limit, too_large)
        except OSError as exc:
            logger.error("could not save a training upload: %s", exc)
            raise ServiceUnavailable(MSG_NOT_SAVED) from exc
        if declared.isascii() and declared.isdigit() and upload.bytes != int(declared):
            upload.discard()
            raise ParseError(MSG_TRUNCATED.format(got=upload.bytes, declared=int(declared)))
        return upload


def _boolean(name: str, value: str, issues: dict[str, str]) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    issues[name] = ISSUE_BOOLEAN
    return False


def training_options(query: Any) -> dict[str, Any]:
    """activate (default true), skip_bad_rows (default false), seed (default 0), name: as train_model's."""
    issues: dict[str, str] = {}
    for key in query:
        if key not in OPTIONS:
            issues[str(key)[:64]] = ISSUE_UNKNOWN
    options: dict[str, Any] = {
        "activate": _boolean("activate", query.get("activate", "true"), issues),
        "skip_bad_rows": _boolean("skip_bad_rows", query.get("skip_bad_rows", "false"), issues),
        "seed": 0,
        "name": query.get("name", DEFAULT_NAME),
    }
    seed = whole_number(query.get("seed", "0"))
    if seed is not None and seed <= MAX_SEED:
        options["seed"] = seed
    else:
        issues["seed"] = ISSUE_SEED
    name = options["name"]
    if not 1 <= len(name) <= MAX_NAME or not name.isprintable() or not name.strip():
        issues["name"] = ISSUE_NAME
    if issues:
        param, issue = next(iter(issues.items()))
        raise BadQuery(param, issue + (f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""))
    return options


def job_href(job_id: Any) -> str:
    return f"models/jobs/{job_id}"


def job_resource(job: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a training job."""
    shown: dict[str, Any] = {
        "_id": str(job["_id"]),
        "status": job["status"],
        "created": http_date(job["created"]),
        "started": http_date(job["started"]) if job.get("started") else None,
        "finished": http_date(job["finished"]) if job.get("finished") else None,
        "heartbeat": http_date(job["heartbeat"]),
        "request": job["request"],
        "actor": job["actor"],
        "progress": {**job["progress"], "fraction": job["progress"].get("fraction")},
        "version": job.get("version"),
        "active": job.get("active"),
        "warnings": job.get("warnings") or [],
        "held_back": job.get("held_back"),
        "_links": {"self": {"title": "model job", "href": job_href(job["_id"])}},
    }
    if job["status"] == SUCCEEDED:
        shown["_links"]["model"] = {"title": "models", "href": f"models/{job['version']}"}
    if job.get("error"):
        shown["_error"] = job["error"]
    if job.get("issues"):
        shown["_issues"] = job["issues"]
    return shown


class TrainingProgressSerializer(serializers.Serializer):
    phase = serializers.ChoiceField(choices=PHASES, help_text="Where the job is: " + ", ".join(PHASES) + ".")
    rows_read = serializers.IntegerField(help_text="Valid rows read so far.")
    bytes_read = serializers.IntegerField(help_text="Bytes of the CSV read so far.")
    bytes_total = serializers.IntegerField(help_text="The CSV's size in bytes.")
    fraction = serializers.FloatField(
        allow_null=True, help_text="While reading: the share of the CSV read; 1 when done; null where unknown."
    )


class TrainingRequestSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The training data's source name, as recorded in the model's metadata.")
    bytes = serializers.IntegerField(help_text="Size of the uploaded CSV.")
    activate = serializers.BooleanField()
    skip_bad_rows = serializers.BooleanField()
    seed = serializers.IntegerField()


class TrainingJobSerializer(serializers.Serializer):
    _id = serializers.CharField()
    status = serializers.ChoiceField(choices=[QUEUED, RUNNING, SUCCEEDED, FAILED])
    created = serializers.CharField(help_text="RFC 1123 date the CSV was received.")
    started = serializers.CharField(allow_null=True, help_text="When training began (null while queued).")
    finished = serializers.CharField(allow_null=True, help_text="When it succeeded or failed.")
    heartbeat = serializers.CharField(
        help_text="The last sign of life of the worker training it; a job without one for "
        f"{STALE_SECONDS:.0f} s reads as failed."
    )
    request = TrainingRequestSerializer()
    actor = serializers.DictField(help_text="The API key that started it (name, via).")
    progress = TrainingProgressSerializer()
    version = serializers.IntegerField(allow_null=True, help_text="The new model version, once stored.")
    active = serializers.BooleanField(allow_null=True, help_text="Whether the new version was activated.")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="What activating the new version stops accepting, compared with the version active when it "
        "was trained (a category the active one serves, or DEFAULT_CATEGORY); empty when nothing narrows.",
    )
    held_back = serializers.CharField(
        allow_null=True,
        help_text="Why the new version was stored but not activated although activate=true: it lacks "
        "DEFAULT_CATEGORY or a category the active version serves (the first version activates all the same). "
        "It says how to activate it anyway (POST /models/{version}/activate, or manage.py activate_model). "
        "Null otherwise.",
    )
    _error = ErrorDetailSerializer(required=False, help_text="Why it failed (the error envelope's _error).")
    _issues = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Bad rows by line ('line 3'), as train_model lists them.",
    )
    _links = serializers.DictField(help_text="self; on success, model: the new version's metadata.")


TRAINING_PARAMETERS = [
    OpenApiParameter(
        "activate",
        OpenApiTypes.BOOL,
        description="Activate the new version (default true), unless it lacks DEFAULT_CATEGORY or a category the "
        "active version serves: it is then stored, not activated, and the job's held_back says why.",
    ),
    OpenApiParameter(
        "skip_bad_rows",
        OpenApiTypes.BOOL,
        description="Skip and count rows that fail validation (default false: any bad row fails the job).",
    ),
    OpenApiParameter(
        "seed", {"type": "integer", "minimum": 0, "maximum": MAX_SEED}, description="Seed of the holdout split (0)."
    ),
    OpenApiParameter(
        "name",
        {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
        description=f"The training data's source name in the model's metadata (default {DEFAULT_NAME}).",
    ),
]
TRAINING_CSV = {
    "type": "string",
    "description": f"The training CSV, as manage.py train_model reads it: a header naming {','.join(REQUIRED_COLUMNS)} "
    "(any order), optionally marketplace (empty: us), or monthly_sales_min and monthly_sales_max (a range, such as a "
    "'bought in past month' badge) in place of monthly_sales; other columns are ignored; then one row per "
    "product-month. At most MODEL_TRAINING_MAX_BYTES "
    "(100 MiB unless changed); MAX_BODY_BYTES does not apply.",
}
ADMIN_403 = error_response("The key lacks the admin scope.")


class ModelsView(ModelListView):
    # GET /models as before (open); POST /models trains a new version from a CSV (admin API key).

    parser_classes = [TrainingCsvParser]
    # A chunked upload (no Content-Length) is read up to this, not MAX_BODY_BYTES (request_body.py).
    max_body_bytes = staticmethod(lambda: settings.MODEL_TRAINING_MAX_BYTES)

    def get_permissions(self):
        if self.request.method == "POST":
            return [HasScope.of("admin")()]
        return super().get_permissions()

    @extend_schema(
        operation_id="models_train",
        summary="Train a new version from a CSV (as manage.py train_model); answers a job to poll; admin API key",
        parameters=[
            *TRAINING_PARAMETERS,
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                response=[202],
                description="The job's URL, to poll.",
            ),
        ],
        request={MEDIA_TYPE: TRAINING_CSV},
        responses={
            202: OpenApiResponse(
                TrainingJobSerializer,
                description="Received and queued; Location names the job. Poll it: GET /models/jobs/{id}.",
            ),
            400: error_response("A bad query parameter, an empty body, or one shorter than its Content-Length."),
            403: ADMIN_403,
            413: error_response("The CSV is larger than MODEL_TRAINING_MAX_BYTES."),
            415: error_response("Send the CSV with Content-Type: text/csv."),
            **COMMON,
        },
    )
    def post(self, request: Request) -> Response:
        options = training_options(request.query_params)
        try:
            upload = request.data
        except UnsupportedMediaType as exc:
            raise UnsupportedMediaType(request.content_type, detail=MSG_SEND_CSV) from exc
        if not isinstance(upload, TrainingUpload):  # no body at all: DRF parses nothing
            if request.content_type.split(";")[0].strip().lower() != MEDIA_TYPE:
                raise UnsupportedMediaType(request.content_type, detail=MSG_SEND_CSV)
            raise ParseError(MSG_EMPTY)
        job = start_training(upload=upload, options=options, actor=api_actor(request.user))
        href = job_href(job["_id"])
        location = f"{request.scheme}://{request.get_host()}/{href}"
        return Response(job_resource(job), status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class ModelJobView(APIView):
    permission_classes = [HasScope.of("admin")]

    @extend_schema(
        operation_id="models_job",
        summary="A training job: status, progress, and the new version or why it failed; admin API key",
        parameters=[OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The job's _id.")],
        responses={
            200: TrainingJobSerializer,
            403: ADMIN_403,
            404: error_response("No training job with this id."),
            **COMMON,
        },
    )
    def get(self, request: Request, id: str) -> Response:  # noqa: A002 - the URL's name
        job = training_jobs().get(id)
        if job is None:
            raise NotFound(MSG_UNKNOWN_JOB.format(id=id[:40]))
        return Response(job_resource(job))
