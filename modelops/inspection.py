"""/inspect/: an admin's view: the active model and its card, versions, live accuracy (beside the holdout),
shadow replays, the audit trail, recent estimations and the curves (alone: /inspect/curves.svg), each per
marketplace x category, grouped by marketplace. Admin API keys only: a browser signs in once with the key
(its hash kept in a signed, HTTP-only session cookie); scripts may send it in the Authorization header."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods
from pymongo.errors import PyMongoError

from core import mongo, throttling
from core.api_keys import SCHEMES, ApiKeyStore, api_key_store
from core.audit import audit_log
from core.errors import envelope
from core.http import http_date
from core.limits import whole_number
from estimations.selectors import estimations_newest, versions_with_actuals
from ml.markets import DEFAULT_MARKETPLACE, split_segment
from ml.plot import LEGEND, accuracy_svg, curve_panels, curves_svg
from ml.serving import NoActiveModel, get_estimator, model_registry
from modelops import segments
from modelops.accuracy import holdout_metrics, live_accuracy, recorded_actuals
from modelops.drift import RULE, version_drift
from modelops.model_card import card_tables, segment_label
from modelops.replay_reports import replay_reports

SESSION_KEY = "inspect_key_hash"
LOGIN_URL = "/inspect/login"
RECENT = 50
ACCURACY_VERSIONS = 3  # the newest versions with actuals (and the active one)
REPLAYS_SHOWN = 5
AUDIT_SHOWN = 15
MSG_NO_CURVES = "No model is active, so there are no curves to draw. Train one: python manage.py train_model."
MSG_BAD_LOGIN = "That key is unknown, revoked, or lacks the admin scope."
MSG_LOGIN_THROTTLED = (
    "Too many sign-in attempts from your address ({rate}). Try again in {wait} seconds; no key was checked."
)

logger = logging.getLogger(__name__)


class SignInThrottled(Exception):
    def __init__(self, wait: float):
        self.wait = math.ceil(wait)


def _throttled_page(request: HttpRequest, wait: int) -> HttpResponse:
    context = {
        "error": MSG_LOGIN_THROTTLED.format(rate=throttling.LOGIN.rate, wait=wait),
        "embedded": mongo.is_embedded(),
    }
    response = render(request, "inspection/login.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


def _admin(request: HttpRequest) -> dict[str, Any] | None:
    """The admin key's record, from the Authorization header or the session; None if not an admin.
    A key in the header is a sign-in attempt: it spends the address's sign-in budget when it fails, and
    is not looked up once that budget is spent (SignInThrottled)."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    store = api_key_store()
    if scheme.lower() in SCHEMES and key.strip():
        address = throttling.client_address(request)
        wait = throttling.LOGIN.spent(address)
        if wait:
            logger.warning("inspect sign-in throttled", extra={"client_address": address})
            raise SignInThrottled(wait)
        record = store.find(key.strip())
        if not (record and record["scope"] == "admin"):
            logger.warning("inspect sign-in refused", extra={"client_address": address})
            throttling.LOGIN.spend(address)
    elif request.session.get(SESSION_KEY):
        record = store.find_by_hash(request.session[SESSION_KEY])
    else:
        return None
    return record if record and record["scope"] == "admin" else None


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        # Every attempt spends its address's sign-in budget, before the key is looked up.
        address = throttling.client_address(request)
        try:
            wait = throttling.LOGIN.spend(address)
        except (PyMongoError, throttling.CounterStoreDown):
            return render(request, "inspection/unavailable.html", status=503)
        if wait:
            logger.warning("inspect sign-in throttled", extra={"client_address": address})
            return _throttled_page(request, math.ceil(wait))
        key = request.POST.get("key", "").strip()
        try:
            record = api_key_store().find(key) if key else None
        except (PyMongoError, throttling.CounterStoreDown):
            return render(request, "inspection/unavailable.html", status=503)
        if record and record["scope"] == "admin":
            logger.info("inspect sign-in", extra={"client_address": address, "api_key_name": record["name"]})
            request.session.cycle_key()
            request.session[SESSION_KEY] = ApiKeyStore.hash(key)
            return HttpResponseRedirect("/inspect/")
        logger.warning("inspect sign-in refused", extra={"client_address": address})
        error = MSG_BAD_LOGIN
    context = {"error": error, "embedded": mongo.is_embedded()}
    return render(request, "inspection/login.html", context, status=401 if error else 200)


@require_http_methods(["POST"])
def logout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return HttpResponseRedirect(LOGIN_URL)


def _filters(
    request: HttpRequest, categories: list[str], marketplaces: list[str]
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The estimations filter from the form, the values to show back, and what was ignored."""
    shown = {name: request.GET.get(name, "").strip() for name in ("marketplace", "category", "min_rank", "max_rank")}
    query: dict[str, Any] = {}
    ignored = []
    if shown["marketplace"]:
        if shown["marketplace"] not in marketplaces:
            ignored.append(f"unknown marketplace '{shown['marketplace'][:40]}'")
        elif shown["marketplace"] == DEFAULT_MARKETPLACE:  # estimations stored before marketplaces are us
            query["marketplace"] = {"$in": [DEFAULT_MARKETPLACE, None]}
        else:
            query["marketplace"] = shown["marketplace"]
    if shown["category"]:
        if shown["category"] in categories:
            query["category"] = shown["category"]
        else:
            ignored.append(f"unknown category '{shown['category'][:40]}'")
    bounds = {}
    for name, operator in (("min_rank", "$gte"), ("max_rank", "$lte")):
        if shown[name]:
            issue = _rank_issue(shown[name])
            if issue is None:
                bounds[operator] = int(shown[name])
            else:
                ignored.append(f"{name.replace('_', ' ')} {issue}")
    if "$gte" in bounds and "$lte" in bounds and bounds["$gte"] > bounds["$lte"]:
        ignored.append(
            f"the rank range: min rank {bounds['$gte']:,} is above max rank {bounds['$lte']:,}, so nothing could "
            "match (swap them)"
        )
        bounds = {}
    if bounds:
        query["bestseller_rank"] = bounds
    return query, shown, ignored


FILTER_MAX_RANK = 999_999_999
SHOWN_CHARACTERS = 20


def _rank_issue(text: str) -> str | None:
    """What is wrong with a rank bound from the form, after its value as typed; None: it is usable."""
    echoed = text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"
    number = whole_number(text)
    if number is None:
        if re.fullmatch(r"-\s*\d+", text):
            return f"'{echoed}' must be at least 1 (ranks start at 1)"
        return f"'{echoed}' is not a whole number"
    if number < 1:
        return f"'{echoed}' must be at least 1 (ranks start at 1)"
    if number > FILTER_MAX_RANK:
        return f"'{echoed}' must be at most {FILTER_MAX_RANK:,}"
    return None


def _signed_in(view: Callable[[HttpRequest, dict[str, Any]], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """An admin's page: others are sent to sign in; a database that is down answers 503."""

    @wraps(view)
    def guarded(request: HttpRequest) -> HttpResponse:
        try:
            admin = _admin(request)
        except SignInThrottled as throttled:
            return _throttled_page(request, throttled.wait)
        except (PyMongoError, throttling.CounterStoreDown):
            return render(request, "inspection/unavailable.html", status=503)
        if admin is None:
            return HttpResponseRedirect(LOGIN_URL)
        try:
            return view(request, admin)
        except (PyMongoError, throttling.CounterStoreDown):
            return render(request, "inspection/unavailable.html", status=503)

    return guarded


@require_http_methods(["GET"])
@_signed_in
def page(request: HttpRequest, admin: dict[str, Any]) -> HttpResponse:
    context = _page_context(request)
    context["admin"] = admin["name"]
    return render(request, "inspection/page.html", context)


@require_http_methods(["GET"])
@_signed_in
def curves(request: HttpRequest, admin: dict[str, Any]) -> HttpResponse:
    """The active model's curves as one standalone SVG file."""
    try:
        svg = curves_svg(get_estimator())
    except NoActiveModel:
        return JsonResponse(envelope(404, MSG_NO_CURVES), status=404)
    return HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")


def _page_context(request: HttpRequest) -> dict[str, Any]:
    registry = model_registry()
    versions = registry.list()
    active_version = registry.active_version()
    active = next((meta for meta in versions if meta["version"] == active_version), None)
    trained = segments.by_marketplace(segments.of_version(active)) if active else {}
    categories = sorted({split_segment(name)[1] for members in trained.values() for name in members})
    query, shown, ignored = _filters(request, categories, list(trained))
    recent = estimations_newest(filter_=query, limit=RECENT)
    try:
        panels = curve_panels(get_estimator())
        chart = [
            {"marketplace": code, "panels": [mark_safe(panel) for panel in drawn]}  # noqa: S308 - ours, escaped
            for code, drawn in panels.items()
        ]
    except NoActiveModel:
        chart = []
    audit, _ = audit_log().find(action=None, skip=0, limit=AUDIT_SHOWN)
    return {
        "accuracy": _accuracy(versions, active_version),
        "replays": [_replay(report) for report in replay_reports().latest(limit=REPLAYS_SHOWN)],
        "audit": [{**entry, "at": http_date(entry["at"])} for entry in audit],
        "active": _card(active) if active else None,
        "model_card": card_tables(active) if active else None,
        "chart_legend": LEGEND,
        "versions": [_card(meta) for meta in versions],
        "active_version": active_version,
        "categories": categories,
        "marketplaces": list(trained),
        "filters": shown,
        "ignored": ignored,
        "recent": [
            {
                **doc,
                "id": str(doc["_id"]),
                "created": http_date(doc["_created"]),
                "marketplace": segments.of_document(doc)[0],
            }
            for doc in recent
        ],
        "recent_limit": RECENT,
        "chart": chart,
    }


def _accuracy(versions: list[dict[str, Any]], active_version: int | None) -> list[dict[str, Any]]:
    """Live accuracy beside the holdout, for the newest versions with actuals and the active one."""
    measured = versions_with_actuals()
    if active_version is not None:
        measured.add(active_version)
    by_version = {meta["version"]: meta for meta in versions}
    shown = []
    for version in sorted((v for v in measured if v in by_version), reverse=True)[:ACCURACY_VERSIONS]:
        meta = by_version[version]
        recorded = recorded_actuals(version)
        live = live_accuracy(version=version, segment_names=segments.of_version(meta), recorded=recorded)
        drift = version_drift(meta, recorded)
        holdout = holdout_metrics(meta)
        rows = [{"name": "overall", "kind": "overall", "live": live["overall"], "holdout": holdout["overall"]}]
        for code, members in segments.by_marketplace(live["per_category"]).items():
            held = (holdout.get("per_marketplace") or {}).get(code, {})
            rows.append({"name": code, "kind": "marketplace", "live": live["per_marketplace"][code], "holdout": held})
            rows += [
                {
                    "name": name,
                    "kind": "segment",
                    "label": segment_label(name),
                    "live": live["per_category"][name],
                    "holdout": holdout["per_category"].get(name, {}),
                }
                for name in members
            ]
        chart = mark_safe(accuracy_svg(version, live, holdout))  # noqa: S308 - our own SVG, escaped
        alarms = [
            {"segment": name, "marketplace": split_segment(name)[0], "category": split_segment(name)[1], **row}
            for name, row in drift["per_category"].items()
            if row["alarm"]
        ]
        shown.append(
            {
                "version": version,
                "rows": rows,
                "with_actuals": live["overall"]["rows"],
                "chart": chart,
                "drift": {**drift, "alarms": alarms, "rule": RULE},
            }
        )
    return shown


def _replay(report: dict[str, Any]) -> dict[str, Any]:
    """A stored replay report for the page: its rows grouped by marketplace (an older report's bare
    categories are us)."""
    per_segment = segments.keyed(report.get("per_category"))
    markets = report.get("per_marketplace") or {}
    groups = [
        {
            "marketplace": code,
            "figures": markets.get(code),
            "rows": [(name, segment_label(name), per_segment[name]) for name in members],
        }
        for code, members in segments.by_marketplace(per_segment).items()
    ]
    notes = list((report.get("skipped") or {}).values())
    return {**report, "created": http_date(report["created"]), "groups": groups, "skipped_notes": notes}


def _card(meta: dict[str, Any]) -> dict[str, Any]:
    """A version's figures for the page; its holdout metrics per segment, grouped by marketplace."""
    holdout = holdout_metrics(meta)
    groups = [
        {
            "marketplace": code,
            "figures": (holdout.get("per_marketplace") or {}).get(code),
            "rows": [(name, segment_label(name), holdout["per_category"][name]) for name in members],
        }
        for code, members in segments.by_marketplace(holdout["per_category"]).items()
    ]
    return {**meta, "created": http_date(meta["created"]), "holdout_groups": groups}
