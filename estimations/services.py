"""Writes of the estimations resource, as named functions (HackSoft's services): create, bulk create,
CSV import, replace or patch (recording actuals too), delete. Each validates, estimates with the model
being served, builds the document (documents.py) and stores it (store.py).

Views call these and only translate HTTP; these know nothing of requests or responses.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import NotFound

from core.errors import (
    MSG_BULK_TOO_LARGE,
    MSG_VALIDATION,
    MSG_VALIDATION_UPDATE,
    PayloadTooLarge,
    PreconditionFailed,
    ValidationFailed,
)
from core.http import utc_now
from core.observability import ESTIMATIONS
from core.runtime import in_turns
from estimations import validation
from estimations.csv_io import CsvRows
from estimations.documents import new_document, replacement
from estimations.fields import ESTIMATE_INPUTS, INPUT_FIELDS
from estimations.selectors import MSG_NO_ESTIMATION
from estimations.store import IDEMPOTENCY_FIELDS, IDEMPOTENCY_INPUT, EstimationStore, Outcome, estimation_store
from ml.predictor import Estimator
from ml.serving import get_estimator

MSG_EMPTY_BULK = "A bulk insert needs at least one estimation; the list was empty."
MSG_IDEMPOTENCY_CONFLICT = "This Idempotency-Key was already used for a different estimation."
ISSUE_KEY_REUSED = "already used with another body; send a new key for a new estimation"
MSG_CSV_INVALID = (
    "Insertion failure: {count} CSV row(s) contain(s) error(s); nothing was stored. See _issues, by line{shown}."
)
MAX_LINES_REPORTED = 100


def _rules(estimator: Estimator) -> validation.Rules:
    return validation.Rules(categories=estimator.categories, default_category=settings.DEFAULT_CATEGORY)


def estimation_create(
    *,
    data: Any,
    from_form: bool = False,
    idempotency_key: str | None = None,
    store: EstimationStore | None = None,
    estimator: Estimator | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate, estimate, store. Returns (document, created): with an ``idempotency_key`` already
    used for the same input, the document stored then (as it is now, after any PUT or PATCH) and
    False; for another input, a 422. ``store`` and ``estimator``: the process's, unless given."""
    store, estimator = store or estimation_store(), estimator or get_estimator()
    fields, issues = validation.validate(data, _rules(estimator), from_form=from_form)
    if issues:
        raise ValidationFailed(MSG_VALIDATION.format(count=1), issues=issues)
    estimate = estimator.estimate(fields["bestseller_rank"], fields["category"])
    document = new_document(fields, estimate, estimator.version)
    if idempotency_key is None:
        created = True
        document = store.insert(document)
    else:
        digest = _input_digest(fields)
        document, created = store.insert_once(document, idempotency_key, digest)
        if not created and not _same_input(document, fields, digest):
            raise ValidationFailed(MSG_IDEMPOTENCY_CONFLICT, issues={"Idempotency-Key": ISSUE_KEY_REUSED})
    if created:
        ESTIMATIONS.labels(str(estimator.version)).inc()
    return document, created


def _input_digest(fields: dict[str, Any]) -> str:
    """What a retry with the same Idempotency-Key must send again: a digest of the validated input."""
    given = {name: fields.get(name) for name in INPUT_FIELDS}
    return hashlib.sha256(json.dumps(given, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _same_input(stored: dict[str, Any], fields: dict[str, Any], digest: str) -> bool:
    """Whether a retry sent the input that stored ``stored``: by its digest, which updates keep (documents
    stored before there was one: by their input fields)."""
    if IDEMPOTENCY_INPUT in stored:
        return stored[IDEMPOTENCY_INPUT] == digest
    return all(stored.get(name) == fields.get(name) for name in INPUT_FIELDS)


def estimation_create_many(
    *, items: list[Any], store: EstimationStore | None = None, estimator: Estimator | None = None
) -> list[dict[str, Any]]:
    """Eve's bulk insert: every item valid, or nothing stored and each item's issues reported."""
    store, estimator = store or estimation_store(), estimator or get_estimator()
    _check_bulk_size(len(items))
    rules = _rules(estimator)
    validated = [validation.validate(item, rules) for item in in_turns(items)]
    failures = sum(1 for _, issues in validated if issues)
    if failures:
        report = [{"_status": "ERR", "_issues": issues} if issues else {"_status": "OK"} for _, issues in validated]
        raise ValidationFailed(MSG_VALIDATION.format(count=failures), items=report)
    return _store_many(store, estimator, [fields for fields, _ in validated])


def estimation_import_csv(
    *, upload: CsvRows, store: EstimationStore | None = None, estimator: Estimator | None = None
) -> list[dict[str, Any]]:
    """A CSV product list: every row valid, or nothing stored and the bad rows reported by line."""
    store, estimator = store or estimation_store(), estimator or get_estimator()
    _check_bulk_size(len(upload.rows))
    rules = _rules(estimator)
    inputs, problems = [], {}
    for line, cells in in_turns(upload.rows):
        fields, issues = validation.validate(cells, rules, from_form=True)  # numbers arrive as text
        if issues:
            problems[f"line {line}"] = "; ".join(f"{field}: {issue}" for field, issue in issues.items())
        else:
            inputs.append(fields)
    if problems:
        shown = dict(list(problems.items())[:MAX_LINES_REPORTED])
        note = f" (the first {MAX_LINES_REPORTED})" if len(problems) > MAX_LINES_REPORTED else ""
        raise ValidationFailed(MSG_CSV_INVALID.format(count=len(problems), shown=note), issues=shown)
    return _store_many(store, estimator, inputs)


def _check_bulk_size(count: int) -> None:
    """A bulk insert (JSON list or CSV) holds 1 to BULK_MAX_ITEMS estimations."""
    if not count:
        raise ValidationFailed(MSG_EMPTY_BULK)
    if count > settings.BULK_MAX_ITEMS:
        raise PayloadTooLarge(MSG_BULK_TOO_LARGE.format(limit=settings.BULK_MAX_ITEMS, count=count))


def _store_many(store: EstimationStore, estimator: Estimator, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Estimate valid inputs in one vectorised call and store them all, or none."""
    ranks = [fields["bestseller_rank"] for fields in inputs]
    categories = [fields["category"] for fields in inputs]
    estimates = estimator.estimate_many(ranks, categories)
    now = utc_now()  # one insert, one moment: Eve stamps a bulk insert's documents alike
    documents = [
        new_document(fields, estimate, estimator.version, now=now)
        for fields, estimate in in_turns(zip(inputs, estimates, strict=True))
    ]
    stored = store.insert_many(documents)
    ESTIMATIONS.labels(str(estimator.version)).inc(len(stored))
    return stored


def estimation_update(
    *,
    estimation_id: str,
    if_match: list[str] | None,
    data: Any,
    partial: bool,
    from_form: bool = False,
    store: EstimationStore | None = None,
    estimator: Estimator | None = None,
) -> dict[str, Any]:
    """PUT (``partial=False``): the new input replaces the old. PATCH (``partial=True``): the given
    fields change and the rest stay. A new rank or category makes a new estimate with the current
    model; otherwise (recording actuals, naming a SKU) the estimate and its model version stay, so
    the actuals judge the model that made it.
    """
    store, estimator = store or estimation_store(), estimator or get_estimator()
    current = store.get(estimation_id, from_primary=True)  # the version the write is conditional on
    if current is None:
        raise NotFound(MSG_NO_ESTIMATION)
    if if_match is not None and current["_etag"] not in if_match:
        raise PreconditionFailed()
    fields, issues = validation.validate(data, _rules(estimator), partial=partial, from_form=from_form)
    if issues:
        raise ValidationFailed(MSG_VALIDATION_UPDATE, issues=issues)
    if partial:
        fields = {**{name: current[name] for name in INPUT_FIELDS if name in current}, **fields}
    if all(fields[name] == current.get(name) for name in ESTIMATE_INPUTS):
        estimate = None  # the same rank and category: the estimate stays
    elif fields["category"] not in estimator.categories:  # kept from a model that knew it; this one does not
        problem = validation.category_issue(fields["category"], estimator.categories)
        raise ValidationFailed(MSG_VALIDATION_UPDATE, issues={"category": problem or validation.ISSUE_REQUIRED})
    else:
        estimate = estimator.estimate(fields["bestseller_rank"], fields["category"])
    document = replacement(current, fields, estimate, estimator.version)
    # The Idempotency-Key stays with the document, so a retry of the POST that made it stores no copy.
    document.update({name: current[name] for name in IDEMPOTENCY_FIELDS if name in current})
    # Conditional on the version just read: a write that landed in between makes this one 412.
    _raise_unless_done(store.replace_if_match(document, [current["_etag"]]))
    return document


def estimation_delete(*, estimation_id: str, if_match: list[str] | None, store: EstimationStore | None = None) -> None:
    _raise_unless_done((store or estimation_store()).delete_if_match(estimation_id, if_match))


def _raise_unless_done(outcome: Outcome) -> None:
    if outcome is Outcome.NOT_FOUND:
        raise NotFound(MSG_NO_ESTIMATION)
    if outcome is Outcome.STALE:
        raise PreconditionFailed()
