"""A JSON parser that bounds what it reads.

DRF's JSONParser reads the request stream directly, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE (which
guards ``request.body``) does not apply; this parser reads at most MAX_BODY_BYTES + 1 bytes and
answers 413 beyond that. A nesting bomb makes ``json.loads`` raise RecursionError, which DRF's
parser would let through as a 500; here it is a 400 like any other malformed body.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from .csv_io import MEDIA_TYPE, parse_csv
from .errors import MSG_BODY_TOO_LARGE, PayloadTooLarge

MSG_MALFORMED_JSON = "The request body is not valid JSON: {reason}"
MSG_TOO_DEEP = "The request body is nested too deeply to be an estimation."
MSG_NOT_UTF8 = "The request body must be UTF-8 encoded JSON."


def read_limited(stream, limit: int) -> bytes:
    if stream is None:
        return b""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(MSG_BODY_TOO_LARGE.format(limit=limit))
    return data


class CsvParser(BaseParser):
    """text/csv: a product list for a bulk insert (estimations.csv_io), within MAX_BODY_BYTES."""

    media_type = MEDIA_TYPE

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_csv(read_limited(stream, settings.MAX_BODY_BYTES))


class LimitedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_limited(stream, settings.MAX_BODY_BYTES)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(MSG_NOT_UTF8) from exc
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except RecursionError as exc:
            raise ParseError(MSG_TOO_DEEP) from exc
        except ValueError as exc:
            raise ParseError(MSG_MALFORMED_JSON.format(reason=exc)) from exc


def _reject_constant(name: str):
    # NaN and Infinity are not JSON; Python's json accepts them unless told not to.
    raise ValueError(f"{name} is not a JSON value")
