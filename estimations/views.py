"""HTTP for the estimations resource: parse the request, call a selector (reads) or a service (writes),
shape Eve's answer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, QueryDict, StreamingHttpResponse
from rest_framework import status, viewsets
from rest_framework.exceptions import NotAcceptable, ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import limits
from core.api_keys import CanWrite
from core.conditional import not_modified, quote_etag, required_if_match
from core.http import CacheHeadersMixin, http_date
from core.negotiation import UnknownFormat
from core.openapi import EnvelopeAutoSchema
from core.runtime import in_turns
from estimations import schema as docs
from estimations import selectors, services
from estimations.csv_io import MEDIA_TYPE as CSV
from estimations.csv_io import MSG_CSV_EMPTY, CsvParser, CsvRenderer, CsvRows, csv_chunks
from estimations.documents import RESOURCE, item_href, to_resource
from estimations.fields import FIELDS
from estimations.list_query import ListQuery, parse_list_query
from estimations.serializers import EstimationFormSerializer

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MSG_IDEMPOTENCY_KEY = "The Idempotency-Key header must be 1-200 characters of letters, digits and . _ : -"
MSG_IDEMPOTENCY_BULK = "Idempotency-Key applies to single-estimation POSTs; send a bulk list without it."


def _idempotency_key(request: Request) -> str | None:
    """The client's key, scoped to the client (API key name, or anonymous) so clients cannot collide."""
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    if not limits.is_token(raw, 200):
        raise ParseError(MSG_IDEMPOTENCY_KEY)
    client = getattr(request.user, "name", None) or "anonymous"
    return f"{client}:{raw}"


FORMAT_ACTIONS = ("list", "create")
NO_FORMAT_PARAMETER = SimpleNamespace(URL_FORMAT_OVERRIDE=None)
MSG_FORMAT = (
    "There is no '{format}' representation here: format takes json, or csv for the estimations list (a download) "
    "and for a POST's answer."
)
MSG_BODY_SHAPE = (
    "The request body must be a JSON object (one estimation) or a list of objects (a bulk insert), "
    'e.g. {"bestseller_rank": 70, "category": "books"}.'
)


class HomeView(CacheHeadersMixin, APIView):
    """The API's home: links to its resources (Eve's home endpoint)."""

    @docs.home_schema
    def get(self, request: Request) -> Response:
        children = [{"title": RESOURCE, "href": RESOURCE}, {"title": "models", "href": "models"}]
        return Response({"_links": {"child": children}})


# The fields a form may leave empty (those null removes): left empty, they are not given.
LEFT_EMPTY = tuple(field.name for field in FIELDS if field.sent is not None and field.sent.nullable)


def _payload(request: Request) -> tuple[Any, bool]:
    """The body and whether it came from an HTML form (whose numbers arrive as strings)."""
    data = request.data
    if isinstance(data, QueryDict):
        form = data.dict()
        for name in LEFT_EMPTY:  # the form's optional sku or price, left empty: none, as when omitted
            if form.get(name) == "":
                del form[name]
        return form, True
    return data, False


def _written(document: dict[str, Any]) -> dict[str, Any]:
    return {**to_resource(document), "_status": "OK"}


def _item_headers(document: dict[str, Any]) -> dict[str, str]:
    return {"ETag": quote_etag(document["_etag"]), "Last-Modified": http_date(document["_updated"])}


class EstimationViewSet(CacheHeadersMixin, viewsets.GenericViewSet):
    """Estimations of monthly unit sales from a Best Seller Rank and a category."""

    serializer_class = EstimationFormSerializer
    permission_classes = [CanWrite]
    schema = EnvelopeAutoSchema()
    filter_backends: list = []
    lookup_field = "id"
    lookup_value_regex = "[^/]+"
    parser_classes = [*APIView.parser_classes, CsvParser]
    renderer_classes = [*APIView.renderer_classes, CsvRenderer]

    def get_parsers(self):
        # PUT and PATCH need If-Match, which no HTML form can send: they take JSON only (else 415).
        method = getattr(getattr(self, "request", None), "method", None)
        if method in ("PUT", "PATCH"):
            return [parser for parser in super().get_parsers() if parser.media_type == "application/json"]
        return super().get_parsers()

    def get_renderers(self):
        # CSV out: the list (an export) and a POST's stored estimations; one estimation is JSON.
        if getattr(self, "action", None) in FORMAT_ACTIONS:
            return super().get_renderers()
        return [renderer for renderer in super().get_renderers() if not isinstance(renderer, CsvRenderer)]

    def get_content_negotiator(self):
        # Not cached as DRF does: the action (known only after the request is initialised) decides.
        negotiator = self.content_negotiation_class()
        if getattr(self, "action", None) not in FORMAT_ACTIONS:
            # ?format= is a parameter of the list and of POST only; elsewhere, like any unknown
            # parameter, it is ignored (Accept still decides).
            negotiator.settings = NO_FORMAT_PARAMETER
        return negotiator

    def perform_content_negotiation(self, request, force=False):
        requested = request.query_params.get("format")
        if not force and requested == "" and getattr(self, "action", None) in FORMAT_ACTIONS:
            raise NotAcceptable(MSG_FORMAT.format(format=""))
        try:
            return super().perform_content_negotiation(request, force)
        except (Http404, UnknownFormat) as exc:  # a ?format= there is no renderer for
            raise NotAcceptable(MSG_FORMAT.format(format=str(requested)[:20])) from exc

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # Errors answer in the JSON envelope, also to a client that asked for CSV, and when the negotiation
        # itself failed (DRF would then pick any renderer the Accept header names, CSV included).
        accepted = getattr(self.request, "accepted_renderer", None)
        if accepted is None or isinstance(accepted, CsvRenderer):
            self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response

    def get_object(self) -> dict[str, Any]:
        """The estimation the URL names (DRF's OPTIONS metadata and browsable forms ask for it)."""
        return selectors.estimation_get(estimation_id=self.kwargs["id"])

    # --- collection ---------------------------------------------------------------------------

    @docs.list_schema
    def list(self, request: Request) -> Response:
        query = parse_list_query(
            request.query_params,
            default_max=settings.PAGINATION_DEFAULT,
            limit=settings.PAGINATION_LIMIT,
            max_skip=settings.PAGINATION_MAX_SKIP,
        )
        if isinstance(request.accepted_renderer, CsvRenderer):
            exported, total = selectors.estimation_export(
                query=query,
                max_rows=settings.EXPORT_MAX_ROWS or None,
                max_time_ms=settings.EXPORT_MAX_TIME_MS or None,
            )
            response = StreamingHttpResponse(csv_chunks(exported), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="estimations.csv"'
            # What matched as the export started (writes meanwhile may change the rows a little); an export
            # cut short ends without the chunked body's last chunk (docs/api.md).
            response["X-Total-Count"] = str(total)
            return response
        page = selectors.estimation_list(query=query)
        body = {
            "_items": [to_resource(document) for document in page.items],
            "_links": _page_links(request, query, page.total, page.after),
            "_meta": {"page": query.page, "max_results": query.max_results, "total": page.total},
        }
        return Response(body, headers={"X-Total-Count": str(page.total)})

    @docs.create_schema
    def create(self, request: Request) -> Response:
        data, from_form = _payload(request)
        key = _idempotency_key(request)
        if request.content_type.partition(";")[0].strip().lower() == CSV and not isinstance(data, CsvRows):
            raise ParseError(MSG_CSV_EMPTY)  # an empty body never reaches the parser
        if isinstance(data, CsvRows | list):
            if key is not None:
                raise ParseError(MSG_IDEMPOTENCY_BULK)
            if isinstance(data, CsvRows):
                documents = services.estimation_import_csv(upload=data)
            else:
                documents = services.estimation_create_many(items=data)
            body = {"_status": "OK", "_items": [_written(document) for document in in_turns(documents)]}
            return Response(body, status=status.HTTP_201_CREATED)
        if not isinstance(data, dict):
            raise ParseError(MSG_BODY_SHAPE)
        document, created = services.estimation_create(data=data, from_form=from_form, idempotency_key=key)
        headers = {"Location": request.build_absolute_uri("/" + item_href(document["_id"])), **_item_headers(document)}
        if not created:
            headers[REPLAYED_HEADER] = "true"
        return Response(_written(document), status=status.HTTP_201_CREATED, headers=headers)

    # --- item ---------------------------------------------------------------------------------

    @docs.retrieve_schema
    def retrieve(self, request: Request, id: str) -> Response:
        document = selectors.estimation_get(estimation_id=id)
        headers = _item_headers(document)
        if not_modified(
            etag=document["_etag"],
            updated=document["_updated"],
            if_none_match=request.headers.get("If-None-Match"),
            if_modified_since=request.headers.get("If-Modified-Since"),
        ):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(to_resource(document, links="item"), headers=headers)

    @docs.update_schema
    def update(self, request: Request, id: str) -> Response:
        return self._write(request, id, partial=False)

    @docs.partial_update_schema
    def partial_update(self, request: Request, id: str) -> Response:
        return self._write(request, id, partial=True)

    def _write(self, request: Request, id: str, *, partial: bool) -> Response:
        if_match = required_if_match(request.headers.get("If-Match"))
        data, from_form = _payload(request)
        document = services.estimation_update(
            estimation_id=id,
            if_match=if_match,
            data=data,
            partial=partial,
            from_form=from_form,
        )
        return Response(_written(document), headers=_item_headers(document))

    @docs.destroy_schema
    def destroy(self, request: Request, id: str) -> Response:
        if_match = required_if_match(request.headers.get("If-Match"))
        services.estimation_delete(estimation_id=id, if_match=if_match)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _page_links(request: Request, query: ListQuery, total: int, after: str | None) -> dict[str, dict[str, str]]:
    """Eve's pagination links, each keeping the request's other query parameters, and ``after``: the
    stable next page (keyset), continuing after this page's last item, whenever more follow.

    ``page`` links go as deep as PAGINATION_MAX_SKIP allows: past it ``next`` is the ``after`` link (so a
    client that follows ``next`` reads on to the end) and there is no ``last``. A page reached by
    ``after`` links on by ``after`` only."""
    params = {key: value for key, value in request.query_params.items() if key not in ("page", "after")}
    last_page = max(1, -(-total // query.max_results))
    max_skip = settings.PAGINATION_MAX_SKIP

    def href(page: int | None = None, after_token: str | None = None) -> str:
        extra: dict[str, Any] = {"page": page} if page is not None and page > 1 else {}
        if after_token is not None:
            extra = {"after": after_token}
        encoded = urlencode({**params, **extra})
        return f"{RESOURCE}?{encoded}" if encoded else RESOURCE

    def reachable(page: int) -> bool:
        return (page - 1) * query.max_results <= max_skip

    keyset = query.after is not None
    links = {
        "self": {
            "title": RESOURCE,
            "href": href(after_token=request.query_params.get("after")) if keyset else href(query.page),
        },
        "parent": {"title": "home", "href": "/"},
    }
    after_link = {"title": "next page, after this page's last item", "href": href(after_token=after)} if after else None
    if after_link is not None:
        links["after"] = after_link
    if keyset:
        if after_link is not None:
            links["next"] = {**after_link, "title": "next page"}
        return links
    if query.page < last_page:
        if reachable(query.page + 1):
            links["next"] = {"title": "next page", "href": href(query.page + 1)}
        elif after_link is not None:
            links["next"] = {**after_link, "title": "next page"}
        if reachable(last_page):
            links["last"] = {"title": "last page", "href": href(last_page)}
    if query.page > 1:
        links["prev"] = {"title": "previous page", "href": href(min(query.page - 1, last_page))}
    return links
