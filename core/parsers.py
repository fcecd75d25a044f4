"""Body parsers that bound what they read: JSON, forms (urlencoded and multipart) and CSV.

More: docs/architecture.md, "core/parsers.py".
"""

from __future__ import annotations

import io
import json

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, MultiPartParser

from core import limits
from core.errors import MSG_BODY_TOO_LARGE, MSG_TOO_MANY_FIELDS, PayloadTooLarge

MSG_MALFORMED_JSON = "The request body is not valid JSON: {reason}"
MSG_TOO_DEEP = "The request body is nested too deeply to be an estimation."
MSG_NOT_UTF8 = "The request body must be UTF-8 encoded JSON."
MSG_BAD_TEXT = f"The request body {limits.MSG_BAD_TEXT}: send valid UTF-8 text."
MSG_JSON_AS_FORM = (
    "The request body looks like JSON, but it was sent as a form (Content-Type: "
    "application/x-www-form-urlencoded, which curl -d sends unless told otherwise). Send it with "
    "Content-Type: application/json (curl: -H 'Content-Type: application/json')."
)


def read_limited(stream, limit: int) -> bytes:
    if stream is None:
        return b""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(MSG_BODY_TOO_LARGE.format(limit=limit))
    return data


class LimitedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_limited(stream, limits.body_limit())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(MSG_NOT_UTF8) from exc
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except RecursionError as exc:
            raise ParseError(MSG_TOO_DEEP) from exc
        except ValueError as exc:  # also a number past Python's int-string limit (4,300 digits)
            raise ParseError(MSG_MALFORMED_JSON.format(reason=exc)) from exc
        if not limits.json_text_is_valid(text, value):
            raise ParseError(MSG_BAD_TEXT)
        return value


class LimitedFormParser(BaseParser):
    """application/x-www-form-urlencoded within MAX_BODY_BYTES and DATA_UPLOAD_MAX_NUMBER_FIELDS."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_limited(stream, limits.body_limit())
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        if raw.lstrip()[:1] in (b"{", b"["):
            raise ParseError(MSG_JSON_AS_FORM)  # no form field's name starts so: a JSON body with curl's default type
        try:
            return QueryDict(raw, encoding=encoding)
        except TooManyFieldsSent as exc:
            raise ParseError(MSG_TOO_MANY_FIELDS.format(limit=limits.form_field_limit())) from exc


class LimitedMultiPartParser(MultiPartParser):
    """multipart/form-data (the browsable API's form) within MAX_BODY_BYTES, files included."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = io.BytesIO(read_limited(stream, limits.body_limit()))
        return super().parse(body, media_type, parser_context)


def _reject_constant(name: str):
    # NaN and Infinity are not JSON; Python's json accepts them unless told not to.
    raise ValueError(f"{name} is not a JSON value")
