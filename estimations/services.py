"""What the estimations resource does, as named functions: validate, estimate, store.

Views call these and only translate HTTP; these know nothing of requests or responses.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import NotFound

from estimator_project.mongo import get_database
from estimator_project.observability import ESTIMATIONS
from ml.estimators import Estimator
from ml.fast import Estimate

from . import validation
from .documents import stamp
from .errors import (
    MSG_BULK_TOO_LARGE,
    MSG_NOT_FOUND,
    MSG_VALIDATION,
    MSG_VALIDATION_UPDATE,
    PayloadTooLarge,
    PreconditionFailed,
    ValidationFailed,
)
from .query import ListQuery
from .store import COLLECTION, EstimationStore, Outcome

MSG_EMPTY_BULK = "A bulk insert needs at least one estimation; the list was empty."
MSG_IDEMPOTENCY_CONFLICT = "This Idempotency-Key was already used for a different estimation."
ISSUE_KEY_REUSED = "already used with another body; send a new key for a new estimation"


def estimation_store() -> EstimationStore:
    return EstimationStore(get_database()[COLLECTION])


def _rules(estimator: Estimator) -> validation.Rules:
    return validation.Rules(categories=estimator.categories, default_category=settings.DEFAULT_CATEGORY)


def _content(rank: int, category: str, estimate: Estimate, estimator: Estimator) -> dict[str, Any]:
    return {
        "bestseller_rank": rank,
        "category": category,
        "estimated_sales": estimate.sales,
        "estimated_sales_low": estimate.low,
        "estimated_sales_high": estimate.high,
        "model_version": estimator.version,
    }


def _estimated(fields: dict[str, Any], estimator: Estimator) -> dict[str, Any]:
    rank, category = fields["bestseller_rank"], fields["category"]
    return _content(rank, category, estimator.estimate(rank, category), estimator)


def estimation_create(
    *,
    store: EstimationStore,
    estimator: Estimator,
    data: Any,
    from_form: bool = False,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate, estimate, store. Returns (document, created): with an ``idempotency_key`` already
    used for the same input, the document stored then and False; for another input, a 422."""
    fields, issues = validation.validate(data, _rules(estimator), from_form=from_form)
    if issues:
        raise ValidationFailed(MSG_VALIDATION.format(count=1), issues=issues)
    document = stamp(_estimated(fields, estimator))
    if idempotency_key is None:
        created = True
        document = store.insert(document)
    else:
        document, created = store.insert_once(document, idempotency_key)
        if not created and any(document.get(name) != fields[name] for name in validation.INPUT_FIELDS):
            raise ValidationFailed(MSG_IDEMPOTENCY_CONFLICT, issues={"Idempotency-Key": ISSUE_KEY_REUSED})
    if created:
        ESTIMATIONS.labels(str(estimator.version)).inc()
    return document, created


def estimation_create_many(*, store: EstimationStore, estimator: Estimator, items: list[Any]) -> list[dict[str, Any]]:
    """Eve's bulk insert: every item valid, or nothing stored and each item's issues reported."""
    if not items:
        raise ValidationFailed(MSG_EMPTY_BULK)
    if len(items) > settings.BULK_MAX_ITEMS:
        raise PayloadTooLarge(MSG_BULK_TOO_LARGE.format(limit=settings.BULK_MAX_ITEMS, count=len(items)))
    rules = _rules(estimator)
    validated = [validation.validate(item, rules) for item in items]
    failures = sum(1 for _, issues in validated if issues)
    if failures:
        report = [{"_status": "ERR", "_issues": issues} if issues else {"_status": "OK"} for _, issues in validated]
        raise ValidationFailed(MSG_VALIDATION.format(count=failures), items=report)

    ranks = [fields["bestseller_rank"] for fields, _ in validated]
    categories = [fields["category"] for fields, _ in validated]
    estimates = estimator.estimate_many(ranks, categories)
    documents = [
        stamp(_content(rank, category, estimate, estimator))
        for rank, category, estimate in zip(ranks, categories, estimates, strict=True)
    ]
    stored = store.insert_many(documents)
    ESTIMATIONS.labels(str(estimator.version)).inc(len(stored))
    return stored


def estimation_get(*, store: EstimationStore, estimation_id: str) -> dict[str, Any]:
    document = store.get(estimation_id)
    if document is None:
        raise NotFound(MSG_NOT_FOUND)
    return document


def estimation_list(*, store: EstimationStore, query: ListQuery) -> tuple[list[dict[str, Any]], int]:
    return store.find(query), store.count(query.filter)


def estimation_update(
    *,
    store: EstimationStore,
    estimator: Estimator,
    estimation_id: str,
    if_match: list[str] | None,
    data: Any,
    partial: bool,
    from_form: bool = False,
) -> dict[str, Any]:
    """PUT (``partial=False``): the new input replaces the old. PATCH (``partial=True``): the given
    fields change and the rest stay. Either way the estimate is made again with the current model.
    """
    current = estimation_get(store=store, estimation_id=estimation_id)
    if if_match is not None and current["_etag"] not in if_match:
        raise PreconditionFailed()
    fields, issues = validation.validate(data, _rules(estimator), partial=partial, from_form=from_form)
    if issues:
        raise ValidationFailed(MSG_VALIDATION_UPDATE, issues=issues)
    if partial:
        fields = {"bestseller_rank": current["bestseller_rank"], "category": current["category"], **fields}
    document = {
        "_id": current["_id"],
        "_created": current["_created"],
        **stamp(_estimated(fields, estimator), new=False),
    }
    # Conditional on the version just read: a write that landed in between makes this one 412.
    _raise_unless_done(store.replace_if_match(document, [current["_etag"]]))
    return document


def estimation_delete(*, store: EstimationStore, estimation_id: str, if_match: list[str] | None) -> None:
    _raise_unless_done(store.delete_if_match(estimation_id, if_match))


def _raise_unless_done(outcome: Outcome) -> None:
    if outcome is Outcome.NOT_FOUND:
        raise NotFound(MSG_NOT_FOUND)
    if outcome is Outcome.STALE:
        raise PreconditionFailed()
