"""GET /audit: the audit trail, newest first, for admin keys."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_keys import HasScope
from core.audit import ACTIONS, audit_log
from core.errors import BadQuery
from core.http import http_date
from core.openapi import COMMON, ERR_400, EnvelopeAutoSchema, MetaSerializer, error_response
from core.pagination import positive_int

DEFAULT_PAGE = 25
MAX_PAGE = 200


class ActorSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The API key's name, or the user who ran the command.")
    via = serializers.ChoiceField(choices=["api", "command", "startup"])


class AuditEntrySerializer(serializers.Serializer):
    _id = serializers.CharField()
    at = serializers.CharField(help_text="RFC 1123 date.")
    action = serializers.ChoiceField(choices=ACTIONS)
    actor = ActorSerializer()
    target = serializers.DictField(help_text="What it was done to: a model_version, or a key_name.")
    details = serializers.DictField()


class AuditPageSerializer(serializers.Serializer):
    _items = AuditEntrySerializer(many=True)
    _meta = MetaSerializer()


def audit_resource(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "_id": str(entry["_id"]), "at": http_date(entry["at"])}


class AuditListView(APIView):
    permission_classes = [HasScope.of("admin")]
    schema = EnvelopeAutoSchema()

    @extend_schema(
        operation_id="audit_list",
        summary="The audit trail: model trainings, activations, rollbacks, replays, API keys; admin keys only",
        parameters=[
            OpenApiParameter("action", {"type": "string", "enum": list(ACTIONS)}, description="Only this action."),
            OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="Page number, from 1."),
            OpenApiParameter(
                "max_results", {"type": "integer", "minimum": 1}, description=f"Entries per page (at most {MAX_PAGE})."
            ),
        ],
        responses={
            200: AuditPageSerializer,
            400: ERR_400,
            403: error_response("The key lacks the admin scope."),
            **COMMON,
        },
    )
    def get(self, request: Request) -> Response:
        action = request.query_params.get("action") or None
        if action is not None and action not in ACTIONS:
            raise BadQuery("action", f"must be one of {', '.join(ACTIONS)}.")
        page = positive_int(request.query_params.get("page"), "page", default=1)
        per_page = min(
            positive_int(request.query_params.get("max_results"), "max_results", default=DEFAULT_PAGE), MAX_PAGE
        )
        entries, total = audit_log().find(action=action, skip=(page - 1) * per_page, limit=per_page)
        return Response(
            {
                "_items": [audit_resource(entry) for entry in entries],
                "_meta": {"page": page, "max_results": per_page, "total": total},
            }
        )
