"""A list request's query: where, sort, projection, max_results and page or after, parsed into one
``ListQuery`` that the store reads with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import BadQuery
from core.pagination import positive_int
from estimations.fields import META_FIELDS
from estimations.keyset import parse_after, with_keyset
from estimations.query import parse_projection, parse_where
from estimations.sorting import parse_sort


@dataclass(frozen=True)
class ListQuery:
    filter: dict[str, Any]
    sort: list[tuple[str, int]]
    projection: dict[str, int] | None
    page: int
    max_results: int
    # With ``after``: the sort-key values of the item the page continues after (keyset pagination).
    after: tuple[Any, ...] | None = None

    @property
    def skip(self) -> int:
        return 0 if self.after is not None else (self.page - 1) * self.max_results

    @property
    def range_filter(self) -> dict[str, Any]:
        """The client's ``where``, and with ``after`` only what comes after that item in the sort."""
        if self.after is None:
            return self.filter
        return with_keyset(self.filter, self.sort, self.after)

    def fetched_projection(self) -> dict[str, int] | None:
        """The projection to read with: the client's, keeping the sort keys (the ``after`` token needs
        them); ``shown`` then takes off what the client did not ask for."""
        if self.projection is None:
            return None
        keys = {field for field, _ in self.sort}
        if 1 in self.projection.values():
            return {**self.projection, **dict.fromkeys(keys - self.projection.keys(), 1)}
        kept = {field: flag for field, flag in self.projection.items() if field not in keys}
        return kept or None

    def shown(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` (read with fetched_projection) as the client's projection shows it."""
        if self.projection is None:
            return document
        if 1 in self.projection.values():
            return {key: value for key, value in document.items() if key in self.projection or key in META_FIELDS}
        return {key: value for key, value in document.items() if key not in self.projection}


MSG_PAGE_TOO_DEEP = (
    "page {page} with max_results {size} skips {skip} estimations, more than the {limit} a page may skip "
    "(PAGINATION_MAX_SKIP): follow _links.after (or _links.next) from a page before, which continues after "
    "its last item at any depth."
)


MSG_AFTER_WITH_PAGE = "cannot be combined with page: after continues from an item, page counts from the start."


def parse_list_query(params: Any, *, default_max: int, limit: int, max_skip: int | None = None) -> ListQuery:
    sort = parse_sort(params.get("sort"))
    max_results = min(positive_int(params.get("max_results"), "max_results", default=default_max), limit)
    raw_after = params.get("after")
    after: tuple[Any, ...] | None = None
    if raw_after is not None:
        if params.get("page") is not None:
            raise BadQuery("after", MSG_AFTER_WITH_PAGE)
        after, page = parse_after(raw_after, sort)
    else:
        page = positive_int(params.get("page"), "page", default=1)
        skip = (page - 1) * max_results
        if max_skip is not None and skip > max_skip:
            raise BadQuery("page", MSG_PAGE_TOO_DEEP.format(page=page, size=max_results, skip=skip, limit=max_skip))
    return ListQuery(
        filter=parse_where(params.get("where")),
        sort=sort,
        projection=parse_projection(params.get("projection")),
        page=page,
        max_results=max_results,
        after=after,
    )
