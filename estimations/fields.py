"""The estimation's fields, in one table (FIELDS): each one's type, part of the document, query and CSV
roles, help text and limits. Validation, the query parser's allow-lists, the CSV columns, the serializers
and the OpenAPI text read their field lists from it; tests/estimations/test_fields.py checks they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ml.history import MAX_HISTORY_DAYS, MAX_HISTORY_POINTS

# integer, number, string and boolean are JSON's; id (an ObjectId) and date (a BSON date) are stored as such
# and shown as strings; history is a list of {"at": date, "rank": integer} samples and gaps a list of
# {"from": date, "to": date} (dates shown as ISO 8601 UTC); links is the computed _links object.
Kind = Literal["integer", "number", "string", "boolean", "id", "date", "history", "gaps", "links"]
# input: what the estimate is made from (a change makes a new estimate); label: the client's own, kept as
# sent; estimate: what the model adds; actual: what a client records afterwards; meta: what the store
# stamps; link: computed for the answer, never stored.
Part = Literal["input", "label", "estimate", "actual", "meta", "link"]
CONTENT_PARTS = ("input", "label", "estimate", "actual")


@dataclass(frozen=True)
class Sent:
    """How a client sends a field (POST, PUT, PATCH): what the validator enforces and the request's
    schema states."""

    help: str
    required: bool = False  # a POST or PUT without it is refused (a PATCH may leave it out)
    instead: str | None = None  # required unless this other field is sent (the schema does not require it)
    nullable: bool = False  # null removes it
    form: bool = False  # the browsable API's form asks for it (the rest is JSON-only)
    form_help: str | None = None  # the form's own wording, when it differs
    minimum: int | float | None = None
    maximum: int | float | None = None
    max_length: int | None = None
    pattern: str | None = None  # the whole value must match


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    part: Part
    help: str = ""  # what an answer's field is (OpenAPI)
    sent: Sent | None = None  # None: read-only
    filter: bool = False  # a ``where`` may name it
    # Its place among the fields a ``sort`` may name (0: none); only the orders an index serves are taken
    # (estimations.store.INDEXES). The 400s and the OpenAPI text list the sortable fields in this order,
    # then the other filterable ones in the table's.
    sort: int = 0
    csv_in: bool = False  # a column a CSV upload may have

    @property
    def written(self) -> bool:
        return self.sent is not None

    @property
    def content(self) -> bool:
        """The document's content: shown when present, projectable, hashed into the etag."""
        return self.part in CONTENT_PARTS

    @property
    def csv_out(self) -> bool:
        """A column of a CSV export: the content and the id and dates (not the etag or links)."""
        return self.content or self.kind in ("id", "date")


MIN_RANK = 1
MAX_RANK = 100_000_000  # Amazon's largest departments rank a few tens of millions of products
MAX_CATEGORY_LENGTH = 64
MAX_SKU_LENGTH = 64
MAX_ACTUAL_SALES = 1_000_000_000
MAX_PRICE = 1_000_000
MIN_PRICE = 0.01  # positive, with at most 2 decimals
MAX_MARKETPLACE_LENGTH = 8
PERIOD = re.compile(r"(19|20)[0-9][0-9]-(0[1-9]|1[0-2])")  # whole value: fullmatch, so no "2026-10\n"

CATEGORY_HELP = (
    "The Amazon category the rank is in. Omitted: the service's DEFAULT_CATEGORY, stored so the answer "
    "shows what was assumed."
)
SKU_HELP = (
    "Your own product identifier, free text up to 64 printable characters (not starting with = + - @), "
    "indexed and filterable."
)
MARKETPLACE_HELP = (
    "The Amazon marketplace, a lower-case code (us, uk, de, ...; the active model's are listed in its card). "
    "Omitted: the service's DEFAULT_MARKETPLACE, stored so the answer shows what was assumed."
)
HISTORY_HELP = (
    'The rank over time, oldest first: a list of {{"at": ISO 8601 date-time with offset or Z, "rank": integer}} '
    "samples, at most {points} of them within {days} days, none later than now. Estimated over time: "
    "bestseller_rank becomes the latest sample's rank."
)
PRICE_HELP = (
    "Your price in the marketplace's currency (see currency), a decimal with at most 2 decimals up to "
    f"{MAX_PRICE:,}: gives estimated_revenue. A change keeps the estimate and recomputes the revenue."
)
REVENUE_HELP = "{what} in the marketplace's currency: price times {units}, rounded to 2 decimals."
# One entry per field, in the order an answer shows them (and the etag hashes the content). A new field
# is one entry here: it is then validated if sent (add its check to estimations.validation.CHECKS, which a
# test asks for), stored, shown, projectable, filtered and in the CSV export as its entry says; a sort
# also needs an index that serves it (estimations.store.INDEXES).
INTERVAL_HELP = (
    "{end} end of the 80% interval: the {percentile}th percentile of next month's units at this rank (the model "
    "card, GET /models/{{version}}, reports how often held-out months fell inside)."
)

FIELDS: tuple[Field, ...] = (
    Field("_id", "id", "meta", "The estimation's id (a 24-hex-digit ObjectId).", filter=True, sort=8),
    Field(
        "bestseller_rank",
        "integer",
        "input",
        sent=Sent(
            "The product's Amazon Best Seller Rank in its category (1 is the best seller). Required unless "
            "rank_history is sent; with it, its latest sample's rank (if both are sent, they must agree).",
            required=True,
            instead="rank_history",
            form=True,
            minimum=MIN_RANK,
            maximum=MAX_RANK,
        ),
        filter=True,
        sort=1,
        csv_in=True,
    ),
    Field(
        "rank_history",
        "history",
        "input",
        "The rank samples the estimate was made from (their dates in ISO 8601 UTC).",
        sent=Sent(
            HISTORY_HELP.format(points=f"{MAX_HISTORY_POINTS:,}", days=MAX_HISTORY_DAYS)
            + " null removes it (the estimate is then the rank's).",
            nullable=True,
        ),
        csv_in=True,
    ),
    Field(
        "marketplace",
        "string",
        "input",
        sent=Sent(MARKETPLACE_HELP, form=True, max_length=MAX_MARKETPLACE_LENGTH),
        filter=True,
        sort=5,
        csv_in=True,
    ),
    Field(
        "category",
        "string",
        "input",
        sent=Sent(CATEGORY_HELP, form=True, max_length=MAX_CATEGORY_LENGTH),
        filter=True,
        sort=6,
        csv_in=True,
    ),
    Field(
        "price",
        "number",
        "label",
        "Your price, in currency.",
        sent=Sent(
            PRICE_HELP + " null removes it.",
            nullable=True,
            form=True,
            form_help=PRICE_HELP + " Left empty in the form: none.",
            minimum=MIN_PRICE,
            maximum=MAX_PRICE,
        ),
        filter=True,
        sort=4,
        csv_in=True,
    ),
    Field(
        "sku",
        "string",
        "label",
        SKU_HELP,
        sent=Sent(
            SKU_HELP + " null removes it.",
            nullable=True,
            form=True,
            form_help=SKU_HELP + " Left empty in the form: none.",
            max_length=MAX_SKU_LENGTH,
        ),
        filter=True,
        csv_in=True,
    ),
    Field(
        "estimated_sales",
        "integer",
        "estimate",
        "Estimated unit sales per month: the median of next month's units at this rank and category.",
        filter=True,
        sort=2,
    ),
    Field("estimated_sales_low", "integer", "estimate", INTERVAL_HELP.format(end="Low", percentile=10)),
    Field("estimated_sales_high", "integer", "estimate", INTERVAL_HELP.format(end="High", percentile=90)),
    Field(
        "estimated_daily_sales",
        "number",
        "estimate",
        "With a rank_history: estimated units per day, the time-weighted mean daily rate over its span (4 significant "
        "digits). Not shown for a single rank, whose answer stays as before rank histories.",
    ),
    Field("currency", "string", "estimate", "The ISO 4217 currency of price and revenue (the marketplace's)."),
    Field(
        "estimated_revenue",
        "number",
        "estimate",
        REVENUE_HELP.format(what="Estimated monthly revenue", units="estimated_sales"),
        filter=True,
        sort=3,
    ),
    Field(
        "estimated_revenue_low",
        "number",
        "estimate",
        REVENUE_HELP.format(what="Low end of the revenue's 80% interval", units="estimated_sales_low"),
    ),
    Field(
        "estimated_revenue_high",
        "number",
        "estimate",
        REVENUE_HELP.format(what="High end of the revenue's 80% interval", units="estimated_sales_high"),
    ),
    Field(
        "rank_history_gaps",
        "gaps",
        "estimate",
        "The spans of rank_history longer than 2 days without a sample, bridged by the samples either side.",
    ),
    Field(
        "extrapolated",
        "boolean",
        "estimate",
        "True when the rank lies outside the ranks the model saw for this category in training: "
        "the estimate is an extrapolation and its interval is widened accordingly.",
        filter=True,
    ),
    Field("model_version", "integer", "estimate", "The model version that made the estimate.", filter=True, sort=7),
    Field(
        "actual_sales",
        "integer",
        "actual",
        "Units really sold in actual_period.",
        sent=Sent(
            "Units the product really sold in actual_period (send both; null for both removes them). "
            "Recording actuals keeps the estimate and its model_version: they measure that model's live accuracy.",
            nullable=True,
            minimum=0,
            maximum=MAX_ACTUAL_SALES,
        ),
        filter=True,
        csv_in=True,
    ),
    Field(
        "actual_period",
        "string",
        "actual",
        "The month of actual_sales, YYYY-MM.",
        sent=Sent("The month actual_sales were sold in, as YYYY-MM.", nullable=True, pattern=PERIOD.pattern),
        filter=True,
        csv_in=True,
    ),
    Field("_created", "date", "meta", "RFC 1123 date, e.g. 'Thu, 25 Jun 2020 06:42:02 GMT'.", filter=True, sort=9),
    Field("_updated", "date", "meta", "RFC 1123 date of the last change.", filter=True, sort=10),
    Field("_etag", "string", "meta", "Send it back in If-Match to change or delete the estimation."),
    Field("_links", "links", "link"),
)
BY_NAME = {field.name: field for field in FIELDS}


# The input an Idempotency-Key's digest held before issue 21, nulls included; the later inputs are added
# only when given, so a retry of a POST made before still matches (estimations.services._input_digest).
DIGEST_WITH_NULLS = ("bestseller_rank", "category", "sku", "actual_sales", "actual_period")
# What a client may write, in the table's order; sku and the actuals may be null (absent).
INPUT_FIELDS = tuple(field.name for field in FIELDS if field.written)
# What the estimate is made from; changing either makes a new estimate.
ESTIMATE_INPUTS = tuple(field.name for field in FIELDS if field.part == "input")
# What an estimate adds to its input; kept as it was while the rank and category stay the same.
ESTIMATE_FIELDS = tuple(field.name for field in FIELDS if field.part == "estimate")
# What a client records afterwards (both or neither; null removes them).
ACTUAL_FIELDS = tuple(field.name for field in FIELDS if field.part == "actual")
READ_ONLY_FIELDS = frozenset(field.name for field in FIELDS if not field.written)
# The document's content (shown when present, projectable, in the etag), in the order answers show it.
CONTENT_FIELDS = tuple(field.name for field in FIELDS if field.content)
# Fields every shown document has whatever the projection (the links are added when it is shown).
META_FIELDS = frozenset(field.name for field in FIELDS if field.part == "meta")
SORTABLE_FIELDS = tuple(field.name for field in sorted(FIELDS, key=lambda field: field.sort) if field.sort)
FILTERABLE_FIELDS = SORTABLE_FIELDS + tuple(field.name for field in FIELDS if field.filter and not field.sort)
PROJECTABLE_FIELDS = CONTENT_FIELDS
CSV_IMPORT_COLUMNS = tuple(field.name for field in FIELDS if field.csv_in)
# The export's columns: those it had before issue 21 in their places (a client may read them by position),
# then the later ones.
CSV_COLUMNS_BEFORE = (
    "_id", "bestseller_rank", "category", "sku", "estimated_sales", "estimated_sales_low", "estimated_sales_high",
    "extrapolated", "model_version", "actual_sales", "actual_period", "_created", "_updated",
)  # fmt: skip
CSV_EXPORT_COLUMNS = CSV_COLUMNS_BEFORE + tuple(
    field.name for field in FIELDS if field.csv_out and field.name not in CSV_COLUMNS_BEFORE
)
