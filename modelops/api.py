"""HTTP for the model registry: GET /models, GET /models/{version}, POST /models/{version}/activate,
GET /models/{version}/accuracy and POST /models/{version}/replay."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_keys import HasScope
from core.audit import api_actor
from core.errors import ValidationFailed
from core.http import http_date
from core.openapi import COMMON, EnvelopeAutoSchema, error_response
from core.parsers import LimitedJSONParser
from ml.api import ERR_404, MSG_UNKNOWN_VERSION, VERSION, ModelRefused, metadata_or_404
from ml.registry import ArtifactRefused, UnknownVersion
from ml.serving import model_registry
from modelops import segments
from modelops.accuracy import holdout_metrics, live_accuracy, recorded_actuals
from modelops.drift import COVERAGE, MEDIAN_ERROR, RULE, version_drift
from modelops.replay_reports import replay_reports
from modelops.services import NothingToCompare, model_replay


class MetricsSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    rmse_log1p = serializers.FloatField(allow_null=True, required=False, help_text="RMSE of log1p(sales).")
    median_ape = serializers.FloatField(
        allow_null=True, required=False, help_text="Median absolute % error (as a fraction), months with sales."
    )
    within_2x = serializers.FloatField(allow_null=True, required=False, help_text="Share within a factor of 2.")


class MetricsByCategorySerializer(serializers.Serializer):
    overall = MetricsSerializer()
    per_marketplace = serializers.DictField(
        child=MetricsSerializer(), required=False, help_text="Per marketplace code (us, uk, ...), all its categories."
    )
    per_category = serializers.DictField(
        child=MetricsSerializer(),
        help_text='Per segment: "uk/books", or the bare category in us ("books"), as versions trained before '
        "marketplaces name theirs.",
    )


class DriftCategorySerializer(serializers.Serializer):
    actuals = serializers.IntegerField(
        help_text="Recorded actual sales on this version's estimates in the marketplace and category."
    )
    needed = serializers.IntegerField(help_text="How many more actuals before an alarm can be raised (0: enough).")
    live_coverage = serializers.FloatField(
        allow_null=True, help_text="Share of the actuals within [estimated_sales_low, estimated_sales_high]."
    )
    holdout_coverage = serializers.FloatField(allow_null=True, help_text="The model card's holdout coverage.")
    coverage_floor = serializers.FloatField(help_text="Live coverage under this raises the alarm.")
    live_median_error = serializers.FloatField(
        allow_null=True, help_text="Median |estimated_sales - actual| / actual, over actuals > 0."
    )
    holdout_median_error = serializers.FloatField(allow_null=True, help_text="The model card's holdout median_error.")
    median_error_limit = serializers.FloatField(
        allow_null=True, help_text="Live median error over this (a multiple of the holdout's) raises the alarm."
    )
    alarm = serializers.BooleanField()
    reasons = serializers.ListField(
        child=serializers.ChoiceField(choices=[COVERAGE, MEDIAN_ERROR]), help_text="Which figures drifted."
    )
    message = serializers.CharField(help_text="The figures in a sentence: what drifted, live against holdout.")


class DriftSerializer(serializers.Serializer):
    alarm = serializers.BooleanField(help_text="True when any segment's alarm is raised.")
    drifted = serializers.ListField(
        child=serializers.CharField(), help_text='The segments ("uk/books"; "books" in us) whose alarm is raised.'
    )
    holdout_figures = serializers.BooleanField(
        help_text="False for versions trained without a model card: no holdout figures, so no alarm."
    )
    note = serializers.CharField(allow_null=True)
    rule = serializers.CharField(help_text="The alarm rule, with its margins.")
    per_category = serializers.DictField(
        child=DriftCategorySerializer(), help_text='Per segment, keyed "uk/books" ("books" in us).'
    )


class AccuracySerializer(serializers.Serializer):
    version = serializers.IntegerField()
    active = serializers.BooleanField()
    live = MetricsByCategorySerializer(help_text="The version's stored estimates against the actuals clients recorded.")
    holdout = MetricsByCategorySerializer(help_text="What the holdout said when the version was trained.")
    drift = DriftSerializer(help_text="Drift alarms, live against the model card's holdout figures. " + RULE)
    _links = serializers.DictField()


class ModelAccuracyView(APIView):
    @extend_schema(
        operation_id="models_accuracy",
        summary="Live accuracy of a version, from recorded actual sales, beside its holdout figures; drift alarms",
        description=RULE,
        parameters=[VERSION],
        responses={200: AccuracySerializer, 404: ERR_404, **COMMON},
    )
    def get(self, request: Request, version: int) -> Response:
        registry = model_registry()
        metadata = metadata_or_404(registry, version)
        recorded = recorded_actuals(version)
        live = live_accuracy(version=version, segment_names=segments.of_version(metadata), recorded=recorded)
        return Response(
            {
                "version": version,
                "active": registry.active_version() == version,
                "live": live,
                "holdout": holdout_metrics(metadata),
                "drift": version_drift(metadata, recorded),
                "_links": {
                    "self": {"title": "accuracy", "href": f"models/{version}/accuracy"},
                    "model": {"title": "models", "href": f"models/{version}"},
                },
            }
        )


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


class ReplaySkippedSerializer(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Estimations of this segment left out of the replay.")
    lacking = serializers.ListField(
        child=serializers.ChoiceField(choices=["candidate", "active"]),
        help_text="Which model has no curve for the segment (empty: their rank_history could not be read).",
    )
    message = serializers.CharField(help_text="The same in a sentence.")


class ReplayReportSerializer(serializers.Serializer):
    _id = serializers.CharField()
    created = serializers.CharField()
    version = serializers.IntegerField(help_text="The candidate version.")
    against_version = serializers.IntegerField(help_text="The version active when the replay ran.")
    actor = serializers.DictField()
    sample = serializers.IntegerField(allow_null=True)
    rows = serializers.IntegerField()
    skipped_rows = serializers.IntegerField(
        help_text="Estimations in a marketplace and category one of the two models lacks (see skipped)."
    )
    skipped = serializers.DictField(
        child=ReplaySkippedSerializer(), required=False, help_text='Per segment ("uk/books"; "books" in us) skipped.'
    )
    overall = ReplayCategorySerializer()
    per_marketplace = serializers.DictField(child=ReplayCategorySerializer(), required=False)
    per_category = serializers.DictField(
        child=ReplayCategorySerializer(), help_text='Per segment, keyed "uk/books" ("books" in us).'
    )


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
