"""Content negotiation whose refusals say what the URL does answer in (every view's, through REST_FRAMEWORK).

DRF answers a ``?format=`` it has no renderer for with a 404, as if the URL did not exist, and an
``Accept`` it cannot satisfy with a 406 that names nothing. Here both are 406 in the error envelope,
listing the formats, or media types, of the URL's renderers.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation

MSG_UNKNOWN_FORMAT = "There is no '{format}' representation here: format takes {formats}."
MSG_NOT_ACCEPTABLE = "Could not satisfy the request Accept header: this URL answers in {media_types}."


class UnknownFormat(NotAcceptable):
    """A ``?format=`` (or URL suffix) no renderer of the view has."""


def _listed(values: list[str]) -> str:
    values = list(dict.fromkeys(values))
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


class ExplainingContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: str | None = None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404 as exc:
            requested = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE) or ""
            formats = _listed([renderer.format for renderer in renderers])
            raise UnknownFormat(MSG_UNKNOWN_FORMAT.format(format=str(requested)[:20], formats=formats)) from exc
        except NotAcceptable as exc:
            media_types = _listed([renderer.media_type for renderer in renderers])
            raise NotAcceptable(MSG_NOT_ACCEPTABLE.format(media_types=media_types)) from exc
