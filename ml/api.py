"""HTTP for the model registry: GET /models, GET /models/{version}, POST /models/{version}/activate,
GET /models/{version}/accuracy and POST /models/{version}/replay."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_keys import HasScope
from core.audit import api_actor
from core.http import http_date
from core.openapi import COMMON, EnvelopeAutoSchema, error_response
from ml.card_serializers import MSG_NO_CARD, MSG_UNREADABLE_CARD, ModelCardSerializer, readable_card
from ml.markets import markets_of
from ml.registry import ArtifactRefused, UnknownVersion
from ml.services import model_activate
from ml.serving import model_registry

MSG_UNKNOWN_VERSION = "There is no model version {version}; GET /models lists them."


class ModelRefused(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "model_refused"


def model_resource(metadata: dict[str, Any], active: int | None) -> dict[str, Any]:
    """What the API shows of a version: no storage ids, no signature."""
    shown = {key: value for key, value in metadata.items() if key not in ("_id", "artifact", "signature", "status")}
    shown["created"] = http_date(metadata["created"])
    shown["active"] = metadata["version"] == active
    shown["markets"] = markets_of(metadata["categories"])  # versions before marketplaces: all "us"
    shown["artifact"] = {"sha256": metadata["artifact"]["sha256"], "bytes": metadata["artifact"]["bytes"]}
    shown["_links"] = {"self": {"title": "models", "href": f"models/{metadata['version']}"}}
    card = metadata.get("model_card")
    readable = readable_card(card) is not None
    shown["model_card"] = card if readable else None
    shown["model_card_note"] = (
        None if readable else (MSG_NO_CARD if card is None else MSG_UNREADABLE_CARD).format(version=metadata["version"])
    )
    return shown


class ModelSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    active = serializers.BooleanField()
    created = serializers.CharField(help_text="RFC 1123 date the version was trained.")
    sklearn_version = serializers.CharField()
    training_data = serializers.DictField(help_text="source file name, sha256, rows, bad rows skipped, split, seed")
    categories = serializers.ListField(
        child=serializers.CharField(),
        help_text="Its curves, one per marketplace x category: the category alone in us, else marketplace/category.",
    )
    markets = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Marketplace -> the categories this version estimates there.",
    )
    metrics = serializers.DictField(help_text="holdout metrics: overall and per_category")
    interval = serializers.ListField(child=serializers.FloatField(), help_text="the quantiles of the stored interval")
    residual_quantiles = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="versions trained before the model card only: log1p residual quantiles",
    )
    rank_range = serializers.DictField(help_text="per category: the lowest and highest rank trained on")
    artifact = serializers.DictField()
    _links = serializers.DictField()
    model_card = ModelCardSerializer(
        allow_null=True,
        help_text="Per category: the fitted slope by decade of rank, interval coverage overall and by rank band, "
        "training rows, holdout median error and sigma; and the coverage over all categories. Null for versions "
        "trained before model cards (model_card_note says so).",
    )
    model_card_note = serializers.CharField(
        allow_null=True, help_text="Why there is no model card (null when there is one)."
    )


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
        metadata = metadata_or_404(registry, version)
        return Response(model_resource(metadata, registry.active_version()))


def metadata_or_404(registry, version: int) -> dict[str, Any]:
    metadata = registry.get(version)
    if metadata is None:
        raise NotFound(MSG_UNKNOWN_VERSION.format(version=version))
    return metadata


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
