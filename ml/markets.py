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
# A segment (one fitted curve) is named "marketplace/category": the code holds no "/", so the first one splits.
SEPARATOR = "/"


def segment(marketplace: str, category: str) -> str:
    return f"{marketplace}{SEPARATOR}{category}"


def split_segment(name: str) -> tuple[str, str]:
    """(marketplace, category) of a segment name."""
    marketplace, _, category = name.partition(SEPARATOR)
    return marketplace, category
