"""/inspect/: an admin's view of the service: the active model, its versions, recent estimations and
the model's curves. Admin API keys only: a browser signs in once with the key (kept as its hash in a
signed, HTTP-only session cookie); scripts may send the key in the Authorization header instead."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods
from pymongo import DESCENDING
from pymongo.errors import PyMongoError

from estimations.documents import http_date
from estimations.services import estimation_store
from ml.plot import curves_svg
from ml.serving import NoActiveModel, get_estimator, model_registry

from .api_keys import SCHEMES, ApiKeyStore, api_key_store

SESSION_KEY = "inspect_key_hash"
LOGIN_URL = "/inspect/login"
RECENT = 50
MSG_BAD_LOGIN = "That key is unknown, revoked, or lacks the admin scope."


def _admin(request: HttpRequest) -> dict[str, Any] | None:
    """The admin key's record, from the Authorization header or the session; None if not an admin."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    store = api_key_store()
    if scheme.lower() in SCHEMES and key.strip():
        record = store.find(key.strip())
    elif request.session.get(SESSION_KEY):
        record = store.find_by_hash(request.session[SESSION_KEY])
    else:
        return None
    return record if record and record["scope"] == "admin" else None


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        key = request.POST.get("key", "").strip()
        record = api_key_store().find(key) if key else None
        if record and record["scope"] == "admin":
            request.session.cycle_key()
            request.session[SESSION_KEY] = ApiKeyStore.hash(key)
            return HttpResponseRedirect("/inspect/")
        error = MSG_BAD_LOGIN
    return render(request, "inspection/login.html", {"error": error}, status=401 if error else 200)


@require_http_methods(["POST"])
def logout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return HttpResponseRedirect(LOGIN_URL)


def _filters(request: HttpRequest, categories: list[str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The estimations filter from the form, the values to show back, and what was ignored."""
    shown = {name: request.GET.get(name, "").strip() for name in ("category", "min_rank", "max_rank")}
    query: dict[str, Any] = {}
    ignored = []
    if shown["category"]:
        if shown["category"] in categories:
            query["category"] = shown["category"]
        else:
            ignored.append(f"unknown category '{shown['category'][:40]}'")
    bounds = {}
    for name, operator in (("min_rank", "$gte"), ("max_rank", "$lte")):
        if shown[name]:
            if shown[name].isdigit() and len(shown[name]) <= 9:
                bounds[operator] = int(shown[name])
            else:
                ignored.append(f"{name.replace('_', ' ')} '{shown[name][:20]}' is not a whole number")
    if bounds:
        query["bestseller_rank"] = bounds
    return query, shown, ignored


@require_http_methods(["GET"])
def page(request: HttpRequest) -> HttpResponse:
    try:
        admin = _admin(request)
    except PyMongoError:
        return render(request, "inspection/unavailable.html", status=503)
    if admin is None:
        return HttpResponseRedirect(LOGIN_URL)
    try:
        context = _page_context(request)
    except PyMongoError:
        return render(request, "inspection/unavailable.html", status=503)
    context["admin"] = admin["name"]
    return render(request, "inspection/page.html", context)


def _page_context(request: HttpRequest) -> dict[str, Any]:
    registry = model_registry()
    versions = registry.list()
    active_version = registry.active_version()
    active = next((meta for meta in versions if meta["version"] == active_version), None)
    categories = active["categories"] if active else []
    query, shown, ignored = _filters(request, categories)
    recent = list(estimation_store().collection.find(query).sort("_id", DESCENDING).limit(RECENT))
    try:
        chart = mark_safe(curves_svg(get_estimator()))  # noqa: S308 - our own SVG, names are escaped
    except NoActiveModel:
        chart = ""
    return {
        "active": _card(active) if active else None,
        "versions": [_card(meta) for meta in versions],
        "active_version": active_version,
        "categories": categories,
        "filters": shown,
        "ignored": ignored,
        "recent": [{**doc, "id": str(doc["_id"]), "created": http_date(doc["_created"])} for doc in recent],
        "recent_limit": RECENT,
        "chart": chart,
    }


def _card(meta: dict[str, Any]) -> dict[str, Any]:
    per_category = sorted(meta["metrics"]["per_category"].items())
    return {**meta, "created": http_date(meta["created"]), "per_category": per_category}
