"""The model card as the API shows it (GET /models/{version}): typed serializers for the OpenAPI schema.
The fields are those every new version's metadata holds under "model_card"; see docs/model-card.md."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

MSG_NO_CARD = (
    "Not recorded: version {version} was trained before the service kept model cards. Train a new version "
    "(POST /models or manage.py train_model) to get one."
)
MSG_UNREADABLE_CARD = (
    "Unreadable: version {version}'s stored model card is not of the shape the service writes (was it edited "
    "in the database?). Train a new version to get one; estimates are not affected."
)


def share(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(min_value=0, max_value=1, allow_null=True, help_text=help_text)


class CardCoverageSerializer(serializers.Serializer):
    overall = share("Share of holdout months inside their 80% interval, all ranks.")
    head = share("The same for ranks in the head band (null: no holdout rows there).")
    middle = share("The same for ranks in the middle band (null: no holdout rows there).")
    tail = share("The same for ranks in the tail band (null: no holdout rows there).")


def rank_span(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, allow_null=True), min_length=2, max_length=2, help_text=help_text
    )


class CardBandsSerializer(serializers.Serializer):
    head = rank_span("[first, last] rank of the head band, inclusive.")
    middle = rank_span("[first, last] rank of the middle band, inclusive.")
    tail = rank_span("[first, last] rank of the tail band, inclusive; last null: no upper end.")


class CardDecadeSlopeSerializer(serializers.Serializer):
    from_rank = serializers.IntegerField(min_value=1)
    to_rank = serializers.IntegerField(min_value=1)
    slope = serializers.FloatField(
        help_text="The fitted log-log slope over this decade of rank: positive means sales fall as rank grows "
        "(0.8: ten times the rank, 10^-0.8 = 0.16 times the sales)."
    )


class CardCategorySerializer(serializers.Serializer):
    marketplace = serializers.CharField(
        required=False, help_text="The segment's marketplace code (absent in cards made before marketplaces: us)."
    )
    category = serializers.CharField(required=False, help_text="The segment's category (absent in older cards).")
    training_rows = serializers.IntegerField(min_value=0, help_text="Rows the curve was fitted on.")
    holdout_rows = serializers.IntegerField(min_value=0, help_text="Rows held out to measure it.")
    slope_by_decade = CardDecadeSlopeSerializer(many=True, help_text="One entry per decade, rank 1 to 1,000,000.")
    coverage = CardCoverageSerializer(help_text="This category's holdout interval coverage, overall and by band.")
    median_error = serializers.FloatField(
        allow_null=True,
        help_text="Holdout median of |estimate - actual| / actual, over months with sales (0.21: a 21% miss).",
    )
    sigma = serializers.FloatField(help_text="The fitted log-normal spread of the monthly sales rate.")


class ModelCardSerializer(serializers.Serializer):
    statistic = serializers.ChoiceField(
        choices=["median", "mean"], help_text="What `estimated_sales` is: here, the median of next month's units."
    )
    interval = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1), help_text="The interval's quantiles: [0.1, 0.9]."
    )
    bands = CardBandsSerializer(help_text="The rank bands coverage is reported by.")
    coverage = CardCoverageSerializer(help_text="Holdout interval coverage over all segments.")
    per_category = serializers.DictField(
        child=CardCategorySerializer(),
        help_text='Per segment, keyed "marketplace/category" ("uk/books"), or by bare category in us ("books", '
        "as every key of a card made before marketplaces): its rows, fit and coverage.",
    )


def readable_card(card: Any) -> dict[str, Any] | None:
    """The stored card if it has the shape the service writes, else None: one reading for the API, the
    drift alarms and the page, so a card edited out of shape shows nowhere and raises nothing."""
    return card if card is not None and ModelCardSerializer(data=card).is_valid() else None
