"""Reads of the estimations resource, as named functions (HackSoft's selectors): one estimation, a page
of the list with its count, the export, and what model operations read of the stored estimations.

Views and the apps above call these; these know nothing of requests or responses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from rest_framework.exceptions import NotFound

from core.errors import BadQuery
from estimations.keyset import encode_after
from estimations.list_query import ListQuery
from estimations.store import estimation_store

MSG_EXPORT_TOO_LARGE = (
    "matches {total} estimations, more than the {limit} an export holds (EXPORT_MAX_ROWS): narrow it, "
    'e.g. with a range of _created such as {{"_created": {{"$gte": "2026-01-01"}}}}, and export in parts.'
)


MSG_NO_ESTIMATION = "No estimation has this id: an id is the 24 hexadecimal digits GET /estimations shows as _id."


def estimation_get(*, estimation_id: str, from_primary: bool = False) -> dict[str, Any]:
    """The stored estimation, read from the database on every call: what a GET answers (with the reads'
    preference) and, ``from_primary``, what a write checks its etag against, the same on every host."""
    document = estimation_store().get(estimation_id, from_primary=from_primary)
    if document is None:
        raise NotFound(MSG_NO_ESTIMATION)
    return document


class ListPage(NamedTuple):
    items: list[dict[str, Any]]
    total: int  # what the where matches (Eve's _meta.total)
    after: str | None  # the token continuing after the page's last item, when more follow


def estimation_list(*, query: ListQuery) -> ListPage:
    store = estimation_store()
    documents = store.find(query, lookahead=1)
    page, more = documents[: query.max_results], len(documents) > query.max_results
    after = encode_after(query.sort, page[-1], query.page + 1) if more and page else None
    return ListPage([query.shown(document) for document in page], store.count(query.filter), after)


def estimation_export(
    *, query: ListQuery, max_rows: int | None = None, max_time_ms: int | None = None
) -> tuple[Iterator[dict[str, Any]], int]:
    """Every estimation the query's filter matches, in its sort (pages do not apply), streamed; and how
    many matched when it started. More than ``max_rows`` is refused before anything is sent."""
    store = estimation_store()
    total = store.count(query.filter)
    if max_rows is not None and total > max_rows:
        raise BadQuery("where", MSG_EXPORT_TOO_LARGE.format(total=total, limit=max_rows))
    return store.export(query, max_rows=max_rows, max_time_ms=max_time_ms), total


# --- for model operations (modelops: live accuracy, replay, inspection) ------------------------


def estimations_with_actuals(*, version: int, projection: dict[str, int]) -> Iterable[dict[str, Any]]:
    """Model ``version``'s estimations with recorded actuals, as ``projection`` shows them."""
    return estimation_store().with_actuals(version, projection)


def versions_with_actuals() -> set[int]:
    """The model versions that made an estimation with recorded actuals."""
    return estimation_store().versions_with_actuals()


def estimations_newest(*, filter_: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """The ``limit`` estimations last created that ``filter_`` (a MongoDB filter) matches, newest first."""
    return estimation_store().newest(filter_, limit=limit)


def estimations_sample(*, projection: dict[str, int], size: int | None) -> tuple[Iterable[dict[str, Any]], int]:
    """All stored estimations and how many, or a random ``size`` of them when there are more."""
    return estimation_store().sample(projection, size)
