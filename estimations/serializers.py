"""Serializers that describe the resource for OpenAPI and give the browsable API its form.

Input is validated by ``estimations.validation`` (fast enough for 10,000-item bulk inserts); these
classes state the same schema for clients, and a test checks that the two agree.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from core.openapi import LinkSerializer, MetaSerializer
from estimations import validation
from ml.serving import known_categories

CATEGORY_HELP = (
    "The Amazon category the rank is in. Omitted: the service's DEFAULT_CATEGORY, stored so the answer "
    "shows what was assumed."
)


SKU_HELP = (
    "Your own product identifier, free text up to 64 printable characters (not starting with = + - @), "
    "indexed and filterable."
)


class EstimationFormSerializer(serializers.Serializer):
    """What the browsable API's form asks for: a rank, a category and an optional sku (the actuals are
    JSON-only: they are recorded later, with PATCH)."""

    bestseller_rank = serializers.IntegerField(
        min_value=validation.MIN_RANK,
        max_value=validation.MAX_RANK,
        help_text="The product's Amazon Best Seller Rank in its category (1 is the best seller).",
    )
    category = serializers.CharField(required=False, max_length=validation.MAX_CATEGORY_LENGTH, help_text=CATEGORY_HELP)
    sku = serializers.CharField(
        required=False,
        max_length=validation.MAX_SKU_LENGTH,
        help_text=SKU_HELP + " Left empty in the form: none.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The active model's categories, so the form and the schema list what it knows (without an
        # active model there is nothing to list, and the field stays a plain string).
        categories = list(known_categories())
        if categories:
            # DEFAULT_CATEGORY first: it is what an untouched form sends, as a POST without one stores.
            categories.sort(key=lambda name: name != settings.DEFAULT_CATEGORY)
            self.fields["category"] = serializers.ChoiceField(
                choices=categories, required=False, help_text=CATEGORY_HELP
            )


class EstimationInputSerializer(EstimationFormSerializer):
    """Everything a client may write (the OpenAPI request body)."""

    sku = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=validation.MAX_SKU_LENGTH,
        help_text=SKU_HELP + " null removes it.",
    )
    actual_sales = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=validation.MAX_ACTUAL_SALES,
        help_text="Units the product really sold in actual_period (send both; null for both removes them). "
        "Recording actuals keeps the estimate and its model_version: they measure that model's live accuracy.",
    )
    actual_period = serializers.RegexField(
        validation.PERIOD.pattern,
        required=False,
        allow_null=True,
        help_text="The month actual_sales were sold in, as YYYY-MM.",
    )


class ItemLinksSerializer(serializers.Serializer):
    self = LinkSerializer()
    parent = LinkSerializer(required=False)
    collection = LinkSerializer(required=False)


class EstimationSerializer(serializers.Serializer):
    _id = serializers.CharField(help_text="The estimation's id (a 24-hex-digit ObjectId).")
    bestseller_rank = serializers.IntegerField(required=False)
    category = serializers.CharField(required=False)
    estimated_sales = serializers.IntegerField(required=False, help_text="Estimated unit sales per month.")
    estimated_sales_low = serializers.IntegerField(
        required=False, help_text="Low end of the 80% interval (10th percentile of the model's holdout errors)."
    )
    estimated_sales_high = serializers.IntegerField(
        required=False, help_text="High end of the 80% interval (90th percentile of the model's holdout errors)."
    )
    extrapolated = serializers.BooleanField(
        required=False,
        help_text="True when the rank lies outside the ranks the model saw for this category in training: "
        "the estimate is an extrapolation and its interval is widened accordingly.",
    )
    model_version = serializers.IntegerField(required=False, help_text="The model version that made the estimate.")
    sku = serializers.CharField(required=False, help_text=SKU_HELP)
    actual_sales = serializers.IntegerField(required=False, help_text="Units really sold in actual_period.")
    actual_period = serializers.CharField(required=False, help_text="The month of actual_sales, YYYY-MM.")
    _created = serializers.CharField(help_text="RFC 1123 date, e.g. 'Thu, 25 Jun 2020 06:42:02 GMT'.")
    _updated = serializers.CharField(help_text="RFC 1123 date of the last change.")
    _etag = serializers.CharField(help_text="Send it back in If-Match to change or delete the estimation.")
    _links = ItemLinksSerializer()


class EstimationWrittenSerializer(EstimationSerializer):
    _status = serializers.ChoiceField(choices=["OK"])


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
