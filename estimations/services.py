"""What the estimations resource does, as named functions: validate, estimate, store.

Views call these and only translate HTTP; these know nothing of requests or responses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from django.conf import settings
from rest_framework.exceptions import NotFound

from core.errors import (
    MSG_BULK_TOO_LARGE,
    MSG_NOT_FOUND,
    MSG_VALIDATION,
    MSG_VALIDATION_UPDATE,
    BadQuery,
    PayloadTooLarge,
    PreconditionFailed,
    ValidationFailed,
)
from core.http import utc_now
from core.mongo import database_name, get_client, reads_preference
from core.observability import ESTIMATIONS
from core.runtime import in_turns
from estimations import validation
from estimations.csv_io import CsvRows
from estimations.documents import stamp, with_retention
from estimations.fields import ESTIMATE_FIELDS, ESTIMATE_INPUTS, INPUT_FIELDS
from estimations.query import ListQuery, encode_after
from estimations.store import COLLECTION, IDEMPOTENCY_FIELDS, IDEMPOTENCY_INPUT, EstimationStore, Outcome
from ml.predictor import Estimate, Estimator

MSG_EMPTY_BULK = "A bulk insert needs at least one estimation; the list was empty."
MSG_IDEMPOTENCY_CONFLICT = "This Idempotency-Key was already used for a different estimation."
ISSUE_KEY_REUSED = "already used with another body; send a new key for a new estimation"


_store: tuple[Any, str, EstimationStore] | None = None


def estimation_store() -> EstimationStore:
    """The store of the process's client and database, made once for each."""
    global _store
    client, database = get_client(), database_name()
    current = _store
    if current is None or current[0] is not client or current[1] != database:
        collection = client[database][COLLECTION]
        # GET one, the list and the export may be served by a secondary (MONGO_READ_PREFERENCE); the rest
        # stays on the client's primary.
        reads = collection.with_options(read_preference=reads_preference())
        wait = settings.MONGO_TIMEOUT_MS / 1000 if settings.MONGO_TIMEOUT_MS > 0 else None
        current = _store = (client, database, EstimationStore(collection, reads=reads, insert_wait_seconds=wait))
    return current[2]


def _rules(estimator: Estimator) -> validation.Rules:
    return validation.Rules(categories=estimator.categories, default_category=settings.DEFAULT_CATEGORY)


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """The input fields with a value (None: the field is absent, or removed)."""
    return {name: value for name, value in fields.items() if value is not None}


def _content(fields: dict[str, Any], estimate: Estimate, estimator: Estimator) -> dict[str, Any]:
    """The input fields given with the estimate made from them."""
    content = _given(fields)
    content["estimated_sales"] = estimate.sales
    content["estimated_sales_low"] = estimate.low
    content["estimated_sales_high"] = estimate.high
    content["extrapolated"] = bool(estimate.extrapolated)
    content["model_version"] = estimator.version
    return content


def _estimated(fields: dict[str, Any], estimator: Estimator) -> dict[str, Any]:
    return _content(fields, estimator.estimate(fields["bestseller_rank"], fields["category"]), estimator)


def _retained(document: dict[str, Any]) -> dict[str, Any]:
    return with_retention(document, keep_actuals=settings.ESTIMATION_TTL_KEEP_ACTUALS)


def estimation_create(
    *,
    store: EstimationStore,
    estimator: Estimator,
    data: Any,
    from_form: bool = False,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Validate, estimate, store. Returns (document, created): with an ``idempotency_key`` already
    used for the same input, the document stored then (as it is now, after any PUT or PATCH) and
    False; for another input, a 422."""
    fields, issues = validation.validate(data, _rules(estimator), from_form=from_form)
    if issues:
        raise ValidationFailed(MSG_VALIDATION.format(count=1), issues=issues)
    document = _retained(stamp(_estimated(fields, estimator)))
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


def estimation_create_many(*, store: EstimationStore, estimator: Estimator, items: list[Any]) -> list[dict[str, Any]]:
    """Eve's bulk insert: every item valid, or nothing stored and each item's issues reported."""
    _check_bulk_size(len(items))
    rules = _rules(estimator)
    validated = [validation.validate(item, rules) for item in in_turns(items)]
    failures = sum(1 for _, issues in validated if issues)
    if failures:
        report = [{"_status": "ERR", "_issues": issues} if issues else {"_status": "OK"} for _, issues in validated]
        raise ValidationFailed(MSG_VALIDATION.format(count=failures), items=report)

    return _store_many(store, estimator, [fields for fields, _ in validated])


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
        _retained(stamp(_content(fields, estimate, estimator), now=now))
        for fields, estimate in in_turns(zip(inputs, estimates, strict=True))
    ]
    stored = store.insert_many(documents)
    ESTIMATIONS.labels(str(estimator.version)).inc(len(stored))
    return stored


MSG_CSV_INVALID = (
    "Insertion failure: {count} CSV row(s) contain(s) error(s); nothing was stored. See _issues, by line{shown}."
)
MAX_LINES_REPORTED = 100


def estimation_import_csv(*, store: EstimationStore, estimator: Estimator, upload: CsvRows) -> list[dict[str, Any]]:
    """A CSV product list: every row valid, or nothing stored and the bad rows reported by line."""
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


MSG_EXPORT_TOO_LARGE = (
    "matches {total} estimations, more than the {limit} an export holds (EXPORT_MAX_ROWS): narrow it, "
    'e.g. with a range of _created such as {{"_created": {{"$gte": "2026-01-01"}}}}, and export in parts.'
)


def estimation_export(
    *, store: EstimationStore, query: ListQuery, max_rows: int | None = None, max_time_ms: int | None = None
) -> tuple[Iterator[dict[str, Any]], int]:
    """Every estimation the query's filter matches, in its sort (pages do not apply), streamed; and how
    many matched when it started. More than ``max_rows`` is refused before anything is sent."""
    total = store.count(query.filter)
    if max_rows is not None and total > max_rows:
        raise BadQuery("where", MSG_EXPORT_TOO_LARGE.format(total=total, limit=max_rows))
    return store.export(query, max_rows=max_rows, max_time_ms=max_time_ms), total


def estimation_get(*, store: EstimationStore, estimation_id: str, from_primary: bool = False) -> dict[str, Any]:
    """The stored estimation, read from the database on every call: what a GET answers (with the reads'
    preference) and, ``from_primary``, what a write checks its etag against, the same on every host."""
    document = store.get(estimation_id, from_primary=from_primary)
    if document is None:
        raise NotFound(MSG_NOT_FOUND)
    return document


class ListPage(NamedTuple):
    items: list[dict[str, Any]]
    total: int  # what the where matches (Eve's _meta.total)
    after: str | None  # the token continuing after the page's last item, when more follow


def estimation_list(*, store: EstimationStore, query: ListQuery) -> ListPage:
    documents = store.find(query, lookahead=1)
    page, more = documents[: query.max_results], len(documents) > query.max_results
    after = encode_after(query.sort, page[-1], query.page + 1) if more and page else None
    return ListPage([query.shown(document) for document in page], store.count(query.filter), after)


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
    fields change and the rest stay. A new rank or category makes a new estimate with the current
    model; otherwise (recording actuals, naming a SKU) the estimate and its model version stay, so
    the actuals judge the model that made it.
    """
    current = estimation_get(store=store, estimation_id=estimation_id, from_primary=True)
    if if_match is not None and current["_etag"] not in if_match:
        raise PreconditionFailed()
    fields, issues = validation.validate(data, _rules(estimator), partial=partial, from_form=from_form)
    if issues:
        raise ValidationFailed(MSG_VALIDATION_UPDATE, issues=issues)
    if partial:
        fields = {**{name: current[name] for name in INPUT_FIELDS if name in current}, **fields}
    if all(fields[name] == current.get(name) for name in ESTIMATE_INPUTS):
        kept = {name: current[name] for name in ESTIMATE_FIELDS if name in current}
        content = {**_given(fields), **kept}
    else:
        if fields["category"] not in estimator.categories:  # kept from a model that knew it; this one does not
            problem = validation.category_issue(fields["category"], estimator.categories)
            raise ValidationFailed(MSG_VALIDATION_UPDATE, issues={"category": problem or validation.ISSUE_REQUIRED})
        content = _estimated(fields, estimator)
    document = _retained({"_id": current["_id"], "_created": current["_created"], **stamp(content, new=False)})
    # The Idempotency-Key stays with the document, so a retry of the POST that made it stores no copy.
    document.update({name: current[name] for name in IDEMPOTENCY_FIELDS if name in current})
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
