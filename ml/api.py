"""HTTP for the model registry: GET /models, GET /models/{version}, POST /models/{version}/activate,
GET /models/{version}/accuracy and POST /models/{version}/replay."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from estimations.documents import http_date
from estimations.errors import ValidationFailed
from estimations.parsers import LimitedJSONParser
from estimations.schema import COMMON, EnvelopeAutoSchema, error_response
from estimations.services import estimation_store
from estimator_project.api_keys import HasScope
from estimator_project.audit import api_actor

from .accuracy import live_accuracy
from .registry import ArtifactRefused, UnknownVersion
from .services import NothingToCompare, model_activate, model_replay, replay_reports
from .serving import model_registry

MSG_UNKNOWN_VERSION = "There is no model version {version}; GET /models lists them."


class ModelRefused(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "model_refused"


def model_resource(metadata: dict[str, Any], active: int | None) -> dict[str, Any]:
    """What the API shows of a version: no storage ids, no signature."""
    shown = {key: value for key, value in metadata.items() if key not in ("_id", "artifact", "signature", "status")}
    shown["created"] = http_date(metadata["created"])
    shown["active"] = metadata["version"] == active
    shown["artifact"] = {"sha256": metadata["artifact"]["sha256"], "bytes": metadata["artifact"]["bytes"]}
    shown["_links"] = {"self": {"title": "models", "href": f"models/{metadata['version']}"}}
    return shown


class ModelSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    active = serializers.BooleanField()
    created = serializers.CharField(help_text="RFC 1123 date the version was trained.")
    sklearn_version = serializers.CharField()
    training_data = serializers.DictField(help_text="source file name, sha256, rows, bad rows skipped, split, seed")
    categories = serializers.ListField(child=serializers.CharField())
    metrics = serializers.DictField(help_text="holdout metrics: overall and per_category")
    interval = serializers.ListField(child=serializers.FloatField(), help_text="the quantiles of the stored interval")
    residual_quantiles = serializers.DictField()
    rank_range = serializers.DictField(help_text="per category: the lowest and highest rank trained on")
    artifact = serializers.DictField()
    _links = serializers.DictField()


class ModelActivationSerializer(ModelSerializer):
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="What this activation stopped accepting, one sentence each: no DEFAULT_CATEGORY (a POST "
        "without a category answers 422), or categories the previously active version served. Empty: nothing.",
    )


class ModelListSerializer(serializers.Serializer):
    _items = ModelSerializer(many=True)
    active_version = serializers.IntegerField(allow_null=True)


VERSION = OpenApiParameter("version", int, OpenApiParameter.PATH, description="The model version number.")
ERR_404 = error_response("No model version with this number.")


class ModelListView(APIView):
    schema = EnvelopeAutoSchema()

    @extend_schema(
        operation_id="models_list",
        summary="Model versions with their holdout metrics",
        responses={200: ModelListSerializer, **COMMON},
    )
    def get(self, request: Request) -> Response:
        registry = model_registry()
        active = registry.active_version()
        return Response({"_items": [model_resource(m, active) for m in registry.list()], "active_version": active})


class ModelDetailView(APIView):
    @extend_schema(
        operation_id="models_retrieve",
        summary="One model version",
        parameters=[VERSION],
        responses={200: ModelSerializer, 404: ERR_404, **COMMON},
    )
    def get(self, request: Request, version: int) -> Response:
        registry = model_registry()
        metadata = _metadata_or_404(registry, version)
        return Response(model_resource(metadata, registry.active_version()))


class MetricsSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    rmse_log1p = serializers.FloatField(allow_null=True, required=False, help_text="RMSE of log1p(sales).")
    median_ape = serializers.FloatField(
        allow_null=True, required=False, help_text="Median absolute % error (as a fraction), months with sales."
    )
    within_2x = serializers.FloatField(allow_null=True, required=False, help_text="Share within a factor of 2.")


class MetricsByCategorySerializer(serializers.Serializer):
    overall = MetricsSerializer()
    per_category = serializers.DictField(child=MetricsSerializer())


class AccuracySerializer(serializers.Serializer):
    version = serializers.IntegerField()
    active = serializers.BooleanField()
    live = MetricsByCategorySerializer(help_text="The version's stored estimates against the actuals clients recorded.")
    holdout = MetricsByCategorySerializer(help_text="What the holdout said when the version was trained.")
    _links = serializers.DictField()


def _metadata_or_404(registry, version: int) -> dict[str, Any]:
    metadata = registry.get(version)
    if metadata is None:
        raise NotFound(MSG_UNKNOWN_VERSION.format(version=version))
    return metadata


class ModelAccuracyView(APIView):
    @extend_schema(
        operation_id="models_accuracy",
        summary="Live accuracy of a version, from recorded actual sales, beside its holdout figures",
        parameters=[VERSION],
        responses={200: AccuracySerializer, 404: ERR_404, **COMMON},
    )
    def get(self, request: Request, version: int) -> Response:
        registry = model_registry()
        metadata = _metadata_or_404(registry, version)
        live = live_accuracy(estimation_store().collection, version=version, categories=metadata["categories"])
        return Response(
            {
                "version": version,
                "active": registry.active_version() == version,
                "live": live,
                "holdout": metadata["metrics"],
                "_links": {
                    "self": {"title": "accuracy", "href": f"models/{version}/accuracy"},
                    "model": {"title": "models", "href": f"models/{version}"},
                },
            }
        )


class ModelActivateView(APIView):
    permission_classes = [HasScope.of("admin")]

    @extend_schema(
        operation_id="models_activate",
        summary="Activate a version (promote or roll back); needs an admin API key",
        description="The answer's `warnings` say what the switch stopped accepting (empty: nothing).",
        parameters=[VERSION],
        request=None,
        responses={
            200: ModelActivationSerializer,
            403: error_response("The key lacks the admin scope."),
            404: ERR_404,
            409: error_response(
                "The version was not activated: its artifact is missing, damaged or fails verification (the "
                "message says which)."
            ),
            **COMMON,
        },
    )
    def post(self, request: Request, version: int) -> Response:
        try:
            metadata = model_activate(version=version, actor=api_actor(request.user))
        except UnknownVersion as exc:
            raise NotFound(MSG_UNKNOWN_VERSION.format(version=version)) from exc
        except ArtifactRefused as exc:
            raise ModelRefused(f"Version {version} was not activated: {exc}.") from exc
        return Response(model_resource(metadata, version))


MSG_REPLAY_SAMPLE = "The replay request is invalid: see _issues."
ISSUE_SAMPLE = "must be a whole number from 1 to {limit:,} (REPLAY_MAX_SAMPLE)"
ISSUE_REPLAY_FIELD = "unknown field: the body takes only 'sample'"


class ReplayRequestSerializer(serializers.Serializer):
    sample = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="How many stored estimations to re-estimate, drawn at random when there are more "
        "(default and most: the REPLAY_MAX_SAMPLE setting, 100,000 unless changed).",
    )


class ReplayCategorySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    median_ratio = serializers.FloatField(
        allow_null=True, help_text="Typical (candidate + 1) / (active + 1) ratio of the estimates."
    )
    mean_abs_log1p_change = serializers.FloatField(allow_null=True)
    share_over_2x = serializers.FloatField(allow_null=True, help_text="Share of estimates changed by more than 2x.")
    with_actuals = serializers.IntegerField(help_text="Estimations with recorded actual sales.")
    candidate = serializers.DictField(
        allow_null=True, help_text="The candidate's metrics on those actuals (as in /accuracy); null without any."
    )
    active = serializers.DictField(allow_null=True, help_text="The active model's metrics on the same actuals.")
    closer = serializers.CharField(
        allow_null=True,
        help_text="candidate, active or tie: the lower RMSE log1p on the actuals; null without any.",
    )


class ReplayReportSerializer(serializers.Serializer):
    _id = serializers.CharField()
    created = serializers.CharField()
    version = serializers.IntegerField(help_text="The candidate version.")
    against_version = serializers.IntegerField(help_text="The version active when the replay ran.")
    actor = serializers.DictField()
    sample = serializers.IntegerField(allow_null=True)
    rows = serializers.IntegerField()
    skipped_rows = serializers.IntegerField(help_text="Estimations in a category one of the two models lacks.")
    overall = ReplayCategorySerializer()
    per_category = serializers.DictField(child=ReplayCategorySerializer())


class ReplayListSerializer(serializers.Serializer):
    _items = ReplayReportSerializer(many=True)


def replay_resource(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "_id": str(report["_id"]), "created": http_date(report["created"])}


def _replay_sample(data: Any) -> int:
    limit = settings.REPLAY_MAX_SAMPLE
    if data in (None, "") or (hasattr(data, "keys") and not data):
        return limit
    if not isinstance(data, dict):
        raise ValidationFailed(
            MSG_REPLAY_SAMPLE, issues={"_document": 'must be a JSON object such as {"sample": 1000}'}
        )
    issues = {str(key)[:64]: ISSUE_REPLAY_FIELD for key in data if key != "sample"}
    sample = data.get("sample", limit)
    if not isinstance(sample, int) or isinstance(sample, bool) or not 1 <= sample <= limit:
        issues["sample"] = ISSUE_SAMPLE.format(limit=limit)
    if issues:
        raise ValidationFailed(MSG_REPLAY_SAMPLE, issues=issues)
    return sample


class ModelReplayView(APIView):
    permission_classes = [HasScope.of("admin")]
    parser_classes = [LimitedJSONParser]  # a form or any other body: 415, as the schema says
    schema = EnvelopeAutoSchema()

    @extend_schema(
        operation_id="models_replay",
        summary="Shadow replay: re-estimate stored estimations with this version beside the active one "
        "(nothing stored changes); admin API key",
        parameters=[VERSION],
        request=ReplayRequestSerializer,
        responses={
            201: ReplayReportSerializer,
            403: error_response("The key lacks the admin scope."),
            404: ERR_404,
            409: error_response("A version failed verification, or no version is active to compare with."),
            415: error_response("Send application/json."),
            422: error_response("The sample is not a whole number within REPLAY_MAX_SAMPLE."),
            **COMMON,
        },
    )
    def post(self, request: Request, version: int) -> Response:
        sample = _replay_sample(request.data)
        try:
            report = model_replay(version=version, sample=sample, actor=api_actor(request.user))
        except UnknownVersion as exc:
            raise NotFound(MSG_UNKNOWN_VERSION.format(version=version)) from exc
        except (ArtifactRefused, NothingToCompare) as exc:
            raise ModelRefused(f"No replay of version {version}: {exc}.") from exc
        return Response(replay_resource(report), status=status.HTTP_201_CREATED)


class ModelReplaysView(APIView):
    permission_classes = [HasScope.of("admin")]

    @extend_schema(
        operation_id="models_replays",
        summary="Stored replay reports of this version, newest first; admin API key",
        parameters=[VERSION],
        responses={
            200: ReplayListSerializer,
            403: error_response("The key lacks the admin scope."),
            404: error_response("Not a model version number."),
            **COMMON,
        },
    )
    def get(self, request: Request, version: int) -> Response:
        return Response({"_items": [replay_resource(report) for report in replay_reports().for_version(version)]})
