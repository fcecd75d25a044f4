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
from estimations import rank_history, validation
from estimations.csv_io import CsvRows
from estimations.documents import LEGACY_MARKETPLACE, new_document, replacement
from estimations.fields import DIGEST_WITH_NULLS, ESTIMATE_INPUTS, INPUT_FIELDS
from estimations.selectors import MSG_NO_ESTIMATION
from estimations.store import IDEMPOTENCY_FIELDS, IDEMPOTENCY_INPUT, EstimationStore, Outcome, estimation_store
from ml import history
from ml.predictor import Estimate, Estimator
from ml.serving import get_estimator

MSG_EMPTY_BULK = "A bulk insert needs at least one estimation; the list was empty."
MSG_IDEMPOTENCY_CONFLICT = "This Idempotency-Key was already used for a different estimation."
ISSUE_KEY_REUSED = "already used with another body; send a new key for a new estimation"
MSG_CSV_INVALID = (
    "Insertion failure: {count} CSV row(s) contain(s) error(s); nothing was stored. See _issues, by line{shown}."
)
MAX_LINES_REPORTED = 100


Gaps = list[dict[str, Any]]


def _rules(estimator: Estimator) -> validation.Rules:
    return validation.Rules(
        categories=estimator.categories,
        default_category=settings.DEFAULT_CATEGORY,
        markets=estimator.markets,
        default_marketplace=settings.DEFAULT_MARKETPLACE,
    )


def _estimate(estimator: Estimator, fields: dict[str, Any]) -> tuple[Estimate, Gaps]:
    """The estimate of validated input: over its rank_history when it has one (with the gaps it bridged)."""
    marketplace = fields.get("marketplace", LEGACY_MARKETPLACE)
    samples = fields.get("rank_history")
    if not samples:
        return estimator.estimate(fields["bestseller_rank"], fields["category"], marketplace), []
    seconds = rank_history.seconds(samples)
    estimate = estimator.estimate_history(seconds, rank_history.ranks(samples), fields["category"], marketplace)
    return estimate, rank_history.gap_spans(samples, history.gaps(seconds))


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
    estimate, gaps = _estimate(estimator, fields)
    document = new_document(fields, estimate, estimator.version, gaps=gaps)
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
    given = {name: fields.get(name) for name in DIGEST_WITH_NULLS}
    for name in INPUT_FIELDS:
        if name not in given and fields.get(name) is not None:
            given[name] = fields[name]
    if given.get("marketplace") == LEGACY_MARKETPLACE:
        del given["marketplace"]  # as a POST from before marketplaces stored it
    if "rank_history" in given:
        given["rank_history"] = rank_history.shown(given["rank_history"])
    return hashlib.sha256(json.dumps(given, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _same_input(stored: dict[str, Any], fields: dict[str, Any], digest: str) -> bool:
    """Whether a retry sent the input that stored ``stored``: by its digest, which updates keep (documents
    stored before there was one: by their input fields)."""
    if IDEMPOTENCY_INPUT in stored:
        return stored[IDEMPOTENCY_INPUT] == digest
    stored = {"marketplace": LEGACY_MARKETPLACE, **stored}
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
    """Estimate valid inputs (the snapshots in one vectorised call, each history on its own) and store
    them all, or none."""
    snapshots = [index for index, fields in enumerate(inputs) if not fields.get("rank_history")]
    estimates: list[tuple[Estimate, Gaps] | None] = [None] * len(inputs)
    if snapshots:
        ranks = [inputs[index]["bestseller_rank"] for index in snapshots]
        categories = [inputs[index]["category"] for index in snapshots]
        marketplaces = [inputs[index].get("marketplace", LEGACY_MARKETPLACE) for index in snapshots]
        for index, estimate in zip(snapshots, estimator.estimate_many(ranks, categories, marketplaces), strict=True):
            estimates[index] = (estimate, [])
    now = utc_now()  # one insert, one moment: Eve stamps a bulk insert's documents alike
    documents = []
    for fields, made in in_turns(zip(inputs, estimates, strict=True)):
        estimate, gaps = made or _estimate(estimator, fields)  # a history: estimated here, in turns too
        documents.append(new_document(fields, estimate, estimator.version, now=now, gaps=gaps))
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
    before = {"marketplace": LEGACY_MARKETPLACE, **current}  # stored before there were marketplaces: us
    if partial:
        fields = {**{name: before[name] for name in INPUT_FIELDS if name in before}, **fields}
    estimate: Estimate | None = None  # the same inputs: the estimate stays
    gaps: Gaps = []
    if any(fields.get(name) != before.get(name) for name in ESTIMATE_INPUTS):
        _check_merged(fields, _rules(estimator))
        estimate, gaps = _estimate(estimator, fields)
    document = replacement(current, fields, estimate, estimator.version, gaps)
    # The Idempotency-Key stays with the document, so a retry of the POST that made it stores no copy.
    document.update({name: current[name] for name in IDEMPOTENCY_FIELDS if name in current})
    # Conditional on the version just read: a write that landed in between makes this one 412.
    _raise_unless_done(store.replace_if_match(document, [current["_etag"]]))
    return document


def _check_merged(fields: dict[str, Any], rules: validation.Rules) -> None:
    """A PATCH's input with what it kept: the rank is the history's latest; the marketplace and category
    (perhaps kept from a model that knew them) are the current model's."""
    samples = fields.get("rank_history")
    issues = {}
    if samples and fields["bestseller_rank"] != samples[-1]["rank"]:
        latest = samples[-1]["rank"]
        issues["bestseller_rank"] = rank_history.ISSUE_RANK_DIFFERS.format(
            rank=fields["bestseller_rank"], latest=latest
        )
    if problem := validation.CHECKS["marketplace"](fields["marketplace"], rules):
        issues["marketplace"] = problem
    elif problem := validation.category_issue(fields["category"], rules.categories) or (
        validation.market_category_issue(fields["marketplace"], fields["category"], rules)
    ):
        issues["category"] = problem
    if issues:
        raise ValidationFailed(MSG_VALIDATION_UPDATE, issues=issues)


def estimation_delete(*, estimation_id: str, if_match: list[str] | None, store: EstimationStore | None = None) -> None:
    _raise_unless_done((store or estimation_store()).delete_if_match(estimation_id, if_match))


def _raise_unless_done(outcome: Outcome) -> None:
    if outcome is Outcome.NOT_FOUND:
        raise NotFound(MSG_NO_ESTIMATION)
    if outcome is Outcome.STALE:
        raise PreconditionFailed()
