"""OpenAPI descriptions of the estimations endpoints (drf-spectacular), kept out of the views."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)

from core.openapi import (
    COMMON,
    ERR_400,
    ERR_403,
    error_response,
)
from estimations.csv_io import EXPORT_COLUMNS, IMPORT_COLUMNS, INSTEAD, REQUIRED_COLUMNS
from estimations.fields import FILTERABLE_FIELDS
from estimations.serializers import (
    BulkCreatedSerializer,
    EstimationInputSerializer,
    EstimationPageSerializer,
    EstimationSerializer,
    EstimationWrittenSerializer,
    HomeSerializer,
)

ERR_404 = error_response("No estimation with this id.")
ERR_413 = error_response("The body, or the bulk list, is larger than the service accepts.")
ERR_415 = error_response("Unsupported Content-Type: send application/json.")
ERR_422 = error_response("The estimation is invalid: see _issues (or _items for a bulk insert).")
ERR_412 = error_response("If-Match does not match the current etag: the estimation changed since it was read.")
ERR_428 = error_response("If-Match is missing: send the estimation's current etag.")
ETAG_HEADER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="The estimation's current etag (from GET's ETag header or _etag), or *.",
)
ITEM_ID = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The estimation's _id (24 hex digits)."
)

LIST_PARAMETERS = [
    OpenApiParameter(
        "where",
        OpenApiTypes.STR,
        description='A MongoDB-style JSON filter, e.g. {"category": "books", "bestseller_rank": {"$lte": 1000}}. '
        "Operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $not $and $or $nor. Fields: "
        f"{', '.join(FILTERABLE_FIELDS)}.",
    ),
    OpenApiParameter(
        "sort",
        OpenApiTypes.STR,
        description='Eve\'s form [("bestseller_rank", -1)] or -bestseller_rank; _id breaks ties. Only orders an '
        "index serves (a 400 lists them). Default: creation order (_created, then _id).",
    ),
    OpenApiParameter(
        "projection",
        OpenApiTypes.STR,
        description='JSON: {"estimated_sales": 1} keeps only these fields, {"category": 0} drops them.',
    ),
    OpenApiParameter(
        "max_results", {"type": "integer", "minimum": 1}, description="Items per page (default 25, capped)."
    ),
    OpenApiParameter(
        "page",
        {"type": "integer", "minimum": 1},
        description="Page number, from 1; a page may skip at most PAGINATION_MAX_SKIP items (default 10000).",
    ),
    OpenApiParameter(
        "after",
        OpenApiTypes.STR,
        description="The token in _links.after: the page continuing after that page's last item in the same "
        "sort (keyset pagination, stable under inserts, any depth). Not with page.",
    ),
    OpenApiParameter(
        "format",
        {"type": "string", "enum": ["json", "csv"]},
        description="csv: the whole filtered list as a CSV download, streamed (page and max_results do not "
        "apply); the same as Accept: text/csv.",
    ),
]
CSV_EXPORT = OpenApiResponse(
    OpenApiTypes.STR,
    description="With Accept: text/csv or format=csv: every estimation the filter matches, in the sort asked "
    f"for, as CSV with a header row ({', '.join(EXPORT_COLUMNS[:5])}, ...).",
)
_ALTERNATIVES = "".join(f"(or {other}, the list's JSON text) " for other in INSTEAD.values())
_OPTIONAL = [column for column in IMPORT_COLUMNS if column not in (*REQUIRED_COLUMNS, *INSTEAD.values())]
CSV_IMPORT = {
    "type": "string",
    "description": f"A header row naming {' and '.join(REQUIRED_COLUMNS)} {_ALTERNATIVES}and optionally "
    f"{' and '.join(_OPTIONAL)}, then one row per product (an empty cell: not given; price as a decimal such "
    "as 19.99). All rows are valid and stored, or none and the bad ones are reported by line.",
}

CREATE_REQUEST = PolymorphicProxySerializer(
    component_name="EstimationCreate",
    serializers=[EstimationInputSerializer, EstimationInputSerializer(many=True, min_length=1)],
    resource_type_field_name=None,
    many=False,
)
CREATE_RESPONSE = PolymorphicProxySerializer(
    component_name="EstimationCreated",
    serializers=[EstimationWrittenSerializer, BulkCreatedSerializer],
    resource_type_field_name=None,
    many=False,
)

home_schema = extend_schema(
    summary="The API's resources",
    responses={200: OpenApiResponse(HomeSerializer, description="Links to the resources."), **COMMON},
)

list_schema = extend_schema(
    summary="List estimations (filter, sort, project, paginate)",
    parameters=LIST_PARAMETERS,
    responses={
        (200, "application/json"): OpenApiResponse(
            EstimationPageSerializer, description="One page, with links and the total."
        ),
        (200, "text/csv"): CSV_EXPORT,
        400: ERR_400,
        **COMMON,
    },
)

create_schema = extend_schema(
    summary="Estimate and store one estimation, or a list of them (bulk insert)",
    parameters=[
        OpenApiParameter(
            "Idempotency-Key",
            {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,200}$"},
            OpenApiParameter.HEADER,
            description="Optional, single estimations only: a retry with the same key answers the estimation "
            "stored the first time (header Idempotent-Replayed: true) and stores nothing new.",
        )
    ],
    request={
        "application/json": CREATE_REQUEST,
        "application/x-www-form-urlencoded": EstimationInputSerializer,
        "multipart/form-data": EstimationInputSerializer,
        "text/csv": CSV_IMPORT,
    },
    responses={
        (201, "application/json"): OpenApiResponse(
            CREATE_RESPONSE,
            description="Created. One estimation: the stored document, with a Location header. "
            "A list (JSON or CSV): every document, in order, under _items.",
        ),
        (201, "text/csv"): OpenApiResponse(
            OpenApiTypes.STR, description="With Accept: text/csv: the stored estimations as CSV rows."
        ),
        400: ERR_400,
        403: ERR_403,
        413: ERR_413,
        415: ERR_415,
        422: ERR_422,
        **COMMON,
    },
    examples=[
        OpenApiExample("One estimation", value={"bestseller_rank": 70, "category": "books"}, request_only=True),
        OpenApiExample(
            "Bulk insert",
            value=[{"bestseller_rank": 70, "category": "books"}, {"bestseller_rank": 1500}],
            request_only=True,
        ),
    ],
)

retrieve_schema = extend_schema(
    summary="One estimation",
    parameters=[
        ITEM_ID,
        OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, description="304 if it matches."),
        OpenApiParameter(
            "If-Modified-Since", OpenApiTypes.STR, OpenApiParameter.HEADER, description="304 if unchanged since."
        ),
    ],
    responses={
        200: OpenApiResponse(EstimationSerializer, description="The estimation, with ETag and Last-Modified."),
        304: OpenApiResponse(description="Not modified since the etag or date the client holds."),
        404: ERR_404,
        **COMMON,
    },
)

WRITTEN = OpenApiResponse(
    EstimationWrittenSerializer,
    description="Changed, with a new etag; estimated again if the rank or category changed.",
)
_WRITE_ERRORS = {
    403: ERR_403,
    400: ERR_400,
    404: ERR_404,
    412: ERR_412,
    413: ERR_413,
    415: ERR_415,
    422: ERR_422,
    428: ERR_428,
}

update_schema = extend_schema(
    summary="Replace an estimation's input; a new rank or category is estimated again",
    parameters=[ITEM_ID, ETAG_HEADER],
    request=EstimationInputSerializer,
    responses={200: WRITTEN, **_WRITE_ERRORS, **COMMON},
)

partial_update_schema = extend_schema(
    summary="Change some of an estimation's input, or record its actual sales (the estimate stays)",
    parameters=[ITEM_ID, ETAG_HEADER],
    request=EstimationInputSerializer(partial=True),
    responses={200: WRITTEN, **_WRITE_ERRORS, **COMMON},
)

destroy_schema = extend_schema(
    summary="Delete an estimation",
    parameters=[ITEM_ID, ETAG_HEADER],
    request=None,
    responses={
        204: OpenApiResponse(description="Deleted."),
        403: ERR_403,
        404: ERR_404,
        412: ERR_412,
        428: ERR_428,
        **COMMON,
    },
)
