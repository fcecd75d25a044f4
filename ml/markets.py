"""Amazon's marketplaces: the codes a model's curves and an estimation name, and each one's currency.

A model has one curve per marketplace x category (Garg & Telang, MIS Quarterly 2013: one shape, a scale per
market); an estimation or training row without a marketplace is in DEFAULT_MARKETPLACE's.
"""

from __future__ import annotations

DEFAULT_MARKETPLACE = "us"
# Code -> ISO 4217 currency of its prices (amazon.com, .co.uk, .de, ...): the codes sellers' tools use.
CURRENCIES: dict[str, str] = {
    "us": "USD",
    "ca": "CAD",
    "mx": "MXN",
    "br": "BRL",
    "uk": "GBP",
    "de": "EUR",
    "fr": "EUR",
    "it": "EUR",
    "es": "EUR",
    "nl": "EUR",
    "be": "EUR",
    "se": "SEK",
    "pl": "PLN",
    "tr": "TRY",
    "ae": "AED",
    "sa": "SAR",
    "eg": "EGP",
    "in": "INR",
    "jp": "JPY",
    "sg": "SGD",
    "au": "AUD",
}
MARKETPLACES = tuple(CURRENCIES)
# A segment (one fitted curve) is named by its category in DEFAULT_MARKETPLACE, else "marketplace/category":
# so versions trained before marketplaces (bare categories) name theirs as new ones do.
SEPARATOR = "/"


def segment(marketplace: str, category: str) -> str:
    return category if marketplace == DEFAULT_MARKETPLACE else f"{marketplace}{SEPARATOR}{category}"


def split_segment(name: str) -> tuple[str, str]:
    """(marketplace, category) of a segment name (a category may hold "/": only a known code before it splits)."""
    marketplace, separator, category = name.partition(SEPARATOR)
    if separator and marketplace in CURRENCIES and marketplace != DEFAULT_MARKETPLACE:
        return marketplace, category
    return DEFAULT_MARKETPLACE, name


def shown(name: str) -> str:
    """A segment as messages name it: its category in DEFAULT_MARKETPLACE, else "category (marketplace)"."""
    marketplace, category = split_segment(name)
    return category if marketplace == DEFAULT_MARKETPLACE else f"{category} ({marketplace})"


def markets_of(names) -> dict[str, list[str]]:
    """Segment names as marketplace -> its categories (both sorted)."""
    markets: dict[str, list[str]] = {}
    for marketplace, category in sorted(map(split_segment, names)):
        markets.setdefault(marketplace, []).append(category)
    return markets


def in_order(names) -> list[str]:
    """Segment names as messages list them: DEFAULT_MARKETPLACE's categories first, then each marketplace's."""
    return sorted(names, key=lambda name: (split_segment(name)[0] != DEFAULT_MARKETPLACE, split_segment(name)))
