"""Every URL answers with and without its trailing slash, as Eve's do (``/estimations`` and ``/estimations/``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path


def either_slash(route: str, view: Callable[..., Any], *, name: str) -> list[URLPattern]:
    """``route`` under ``name`` (what links and ``reverse`` give), and its twin with the trailing slash
    added or taken off, serving the same view under the same name (one metrics series): no redirect, so a
    POST or a PUT is not lost on the way. ``reverse`` gives ``route`` itself."""
    twin = route[:-1] if route.endswith("/") else route + "/"
    # reverse() gives the last pattern of a name: the twin comes first.
    return [path(twin, view, name=name), path(route, view, name=name)]
