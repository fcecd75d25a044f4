"""The OpenAPI kit every API shares: the error envelope's schema, the common error answers, page metadata,
the envelope-aware AutoSchema and the postprocessing hook (drf-spectacular)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class LinkSerializer(serializers.Serializer):
    title = serializers.CharField()
    href = serializers.CharField()


class MetaSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    max_results = serializers.IntegerField()
    total = serializers.IntegerField()


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.IntegerField(help_text="The HTTP status code.")
    message = serializers.CharField(help_text="What went wrong and what to do about it.")


class ItemStatusSerializer(serializers.Serializer):
    _status = serializers.ChoiceField(choices=["OK", "ERR"])
    _issues = serializers.DictField(child=serializers.CharField(), required=False)


class ErrorSerializer(serializers.Serializer):
    """Eve's error envelope, used by every error the API answers."""

    _status = serializers.ChoiceField(choices=["ERR"])
    _error = ErrorDetailSerializer()
    _issues = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="Per field: what is wrong with it."
    )
    _items = ItemStatusSerializer(many=True, required=False, help_text="Bulk insert: each item's status.")


class EnvelopeAutoSchema(AutoSchema):
    """The list action answers Eve's envelope object (_items, _links, _meta), not a bare array."""

    def _is_list_view(self, serializer=None) -> bool:
        return False

    def get_operation_id(self) -> str:
        # Named after the viewset action (estimations_list, estimations_retrieve, ...), since the
        # list action no longer looks like a list to drf-spectacular.
        action = getattr(self.view, "action", None)
        return f"{self.view.basename}_{action}" if action else super().get_operation_id()


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ERR_400 = error_response("Malformed request: bad JSON, or a bad where/sort/projection/page/after parameter.")
ERR_503 = error_response(
    "The database is unreachable or failed. The message says whether a write may have been applied, and "
    "how to check and retry safely (GET, then If-Match or the same Idempotency-Key)."
)
ERR_406 = error_response("No representation matches the Accept header.")
ERR_405 = error_response("The URL does not take this method; see the Allow header.")

ERR_401 = error_response(
    "An API key is needed (`Authorization: Api-Key <key>`), or the one sent is unknown or revoked."
)
ERR_403 = error_response("The API key lacks the scope this needs.")
ERR_429 = error_response("Too many requests from this client; see Retry-After.")

# Answered by gunicorn before the app (so not in the error envelope): a request line over 8,190 bytes.
ERR_414 = OpenApiResponse(description="The URL is longer than 8,190 bytes (answered by the server, not the API).")

COMMON = {401: ERR_401, 405: ERR_405, 406: ERR_406, 414: ERR_414, 429: ERR_429, 503: ERR_503}

# Every other operation works without a key (writes: unless configured).
KEY_REQUIRED = {"models_activate", "models_replay", "models_replays", "audit_list", "models_train", "models_job"}


def canonical_paths(result, generator, request, public):
    """drf-spectacular postprocessing hook.

    Publishes Eve's paths (/estimations/{id}) without the trailing slash the router also accepts, and
    marks the API key optional (``{}`` in ``security``) wherever a request without one is served.
    """
    result["paths"] = {
        (path.rstrip("/") if path != "/" else path): operations for path, operations in result["paths"].items()
    }
    for operations in result["paths"].values():
        for operation in operations.values():
            if operation.get("security") and operation["operationId"] not in KEY_REQUIRED:
                operation["security"] = [*operation["security"], {}]
    return result


NULL = {"type": "object", "nullable": True, "enum": [None]}


def nullable_references(result, generator, request, public):
    """drf-spectacular postprocessing hook: a nullable nested serializer becomes anyOf [its $ref, null].
    In OpenAPI 3.0.3, `nullable` beside an allOf does not reach into the $ref, so validators refuse a null."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("nullable") is True and len(node.get("allOf", ())) == 1 and "type" not in node:
                del node["nullable"]
                node["anyOf"] = [node.pop("allOf")[0], NULL]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result
