"""Serializers that describe the resource for OpenAPI and give the browsable API its form.

The estimation's are made from the field table (``estimations.fields``), as the validator's rules are;
input itself is validated by ``estimations.validation``, fast enough for 10,000-item bulk inserts.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from pymongo.errors import PyMongoError
from rest_framework import serializers

from core.openapi import LinkSerializer, MetaSerializer
from estimations.fields import FIELDS, MAX_HISTORY_POINTS, MAX_RANK, MIN_RANK, Field
from ml.serving import NoActiveModel, get_estimator, known_categories


class SampleSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="ISO 8601 date-time with an offset or Z, e.g. 2026-11-30T12:00:00Z.")
    rank = serializers.IntegerField(min_value=MIN_RANK, max_value=MAX_RANK)


class GapSerializer(serializers.Serializer):
    # "from" is a Python keyword: the fields are declared in get_fields.
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.DateTimeField(help_text="The last sample before the gap."),
            "to": serializers.DateTimeField(help_text="The first sample after it."),
        }


def _history(**options: Any) -> serializers.Field:
    return serializers.ListField(child=SampleSerializer(), **options)


def _gaps(**options: Any) -> serializers.Field:
    return serializers.ListField(child=GapSerializer(), **options)


# The serializer field of each kind an answer shows (ids and dates are shown as strings).
SHOWN_KINDS: dict[str, Any] = {
    "integer": serializers.IntegerField,
    "number": serializers.FloatField,
    "string": serializers.CharField,
    "boolean": serializers.BooleanField,
    "id": serializers.CharField,
    "date": serializers.CharField,
    "history": _history,
    "gaps": _gaps,
}


def known_marketplaces() -> tuple[str, ...]:
    """The active model's marketplaces, or none (for forms and the schema, which must render anyway)."""
    try:
        return tuple(sorted(get_estimator().markets))
    except (NoActiveModel, PyMongoError):
        return ()


def sent_field(field: Field, *, form: bool = False) -> serializers.Field:
    """The serializer field a client sends ``field`` as (in the browsable API's form, with ``form``)."""
    sent = field.sent
    if sent is None:
        raise ValueError(f"{field.name} is read-only")
    options: dict[str, Any] = {} if sent.required and not sent.instead else {"required": False}
    if sent.nullable and not form:
        options["allow_null"] = True
    if sent.minimum is not None:
        options["min_value"] = sent.minimum
    if sent.maximum is not None:
        options["max_value"] = sent.maximum
    if sent.max_length is not None:
        options["max_length"] = sent.max_length
    options["help_text"] = sent.form_help if form and sent.form_help else sent.help
    if sent.pattern is not None:
        return serializers.RegexField(sent.pattern, **options)
    if field.kind == "history":
        return _history(min_length=1, max_length=MAX_HISTORY_POINTS, **options)
    return SHOWN_KINDS[field.kind](**options)


def shown_field(field: Field) -> serializers.Field:
    """The serializer field an answer shows ``field`` as: content only when present (a projection may
    leave it out), the meta fields and links always."""
    if field.kind == "links":
        return ItemLinksSerializer()
    options: dict[str, Any] = {"required": False} if field.content else {}
    if field.help:
        options["help_text"] = field.help
    return SHOWN_KINDS[field.kind](**options)


class EstimationFormSerializer(serializers.Serializer):
    """What the browsable API's form asks for: the fields the table marks for the form (a rank, a
    marketplace, a category, an optional price and sku; rank_history and the actuals are JSON-only)."""

    form = True

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = {
            field.name: sent_field(field, form=self.form)
            for field in FIELDS
            if field.sent is not None and (field.sent.form or not self.form)
        }
        # The active model's categories, so the form and the schema list what it knows (without an
        # active model there is nothing to list, and the field stays a plain string).
        categories = list(known_categories())
        if categories:
            # DEFAULT_CATEGORY first: it is what an untouched form sends, as a POST without one stores.
            categories.sort(key=lambda name: name != settings.DEFAULT_CATEGORY)
            declared["category"] = serializers.ChoiceField(
                choices=categories, required=False, help_text=declared["category"].help_text
            )
        marketplaces = list(known_marketplaces())
        if marketplaces:  # DEFAULT_MARKETPLACE first, as for the category
            marketplaces.sort(key=lambda name: name != settings.DEFAULT_MARKETPLACE)
            declared["marketplace"] = serializers.ChoiceField(
                choices=marketplaces, required=False, help_text=declared["marketplace"].help_text
            )
        return declared


class EstimationInputSerializer(EstimationFormSerializer):
    """Everything a client may write (the OpenAPI request body)."""

    form = False


class ItemLinksSerializer(serializers.Serializer):
    self = LinkSerializer()
    parent = LinkSerializer(required=False)
    collection = LinkSerializer(required=False)


class EstimationSerializer(serializers.Serializer):
    # An estimation as answers show it: every field of the table, in its order.
    def get_fields(self) -> dict[str, serializers.Field]:
        return {field.name: shown_field(field) for field in FIELDS}


class EstimationWrittenSerializer(EstimationSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), "_status": serializers.ChoiceField(choices=["OK"])}


class BulkCreatedSerializer(serializers.Serializer):
    _status = serializers.ChoiceField(choices=["OK"])
    _items = EstimationWrittenSerializer(many=True)


class PageLinksSerializer(serializers.Serializer):
    self = LinkSerializer()
    parent = LinkSerializer()
    next = LinkSerializer(required=False)
    prev = LinkSerializer(required=False)
    last = LinkSerializer(required=False)
    # The stable next page (keyset pagination): continues after this page's last item.
    after = LinkSerializer(required=False)


class EstimationPageSerializer(serializers.Serializer):
    _items = EstimationSerializer(many=True)
    _links = PageLinksSerializer()
    _meta = MetaSerializer()


class HomeLinksSerializer(serializers.Serializer):
    child = LinkSerializer(many=True)


class HomeSerializer(serializers.Serializer):
    _links = HomeLinksSerializer()
