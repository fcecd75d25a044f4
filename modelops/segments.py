"""Segments (marketplace x category, named "uk/books", "books" in us) as model operations read them: of a stored
estimation (no marketplace: "us"), of a served model, of a version's metadata (old ones: bare categories)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ml.markets import DEFAULT_MARKETPLACE, segment, split_segment


def of_document(document: Mapping[str, Any]) -> tuple[str, str]:
    """(marketplace, category) of a stored estimation; one stored before marketplaces is in "us"."""
    return document.get("marketplace") or DEFAULT_MARKETPLACE, document["category"]


def name_of(key: Any) -> str:
    """A breakdown's key as ml.markets names the segment (a bare category is us's, as in versions trained
    before marketplaces)."""
    return segment(*split_segment(str(key)))


def keyed(mapping: Any) -> dict[str, Any]:
    """A per-category mapping of a version (card, holdout metrics) keyed by segment name; not a dict: {}."""
    return {name_of(key): value for key, value in mapping.items()} if isinstance(mapping, dict) else {}


def of_model(model: Any) -> set[tuple[str, str]]:
    """The (marketplace, category) pairs a served model estimates (``markets``; older ones: us only)."""
    markets = getattr(model, "markets", None)
    if not isinstance(markets, dict):
        markets = {DEFAULT_MARKETPLACE: tuple(model.categories)}
    return {(marketplace, category) for marketplace, names in markets.items() for category in names}


def of_version(metadata: Mapping[str, Any]) -> list[str]:
    """The segment names a registry version was trained for, sorted (from its markets, card or categories)."""
    markets = metadata.get("markets")
    if isinstance(markets, dict):
        return sorted(segment(str(mp), str(name)) for mp, names in markets.items() for name in names)
    card = metadata.get("model_card")
    names = set(keyed(card.get("per_category"))) if isinstance(card, dict) else set()
    names |= set(keyed((metadata.get("metrics") or {}).get("per_category")))
    return sorted(names | {name_of(name) for name in metadata.get("categories") or []})


def by_marketplace(names: Iterable[str]) -> dict[str, list[str]]:
    """Segment names grouped by marketplace (us first, then by code), each group sorted by category."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[split_segment(name)[0]].append(name)
    order = sorted(groups, key=lambda code: (code != DEFAULT_MARKETPLACE, code))
    return {code: sorted(groups[code], key=lambda name: split_segment(name)[1]) for code in order}


def label(name: str) -> str:
    """What a person reads: "uk / books", "us / books"."""
    marketplace, category = split_segment(name)
    return f"{marketplace} / {category}"
