"""API keys: created by ``manage.py create_api_key``, shown once, stored only as a SHA-256 hash.

A key is 256 random bits, so a fast hash is enough to make the stored value useless to a reader of
the database. Clients send ``Authorization: Api-Key <key>`` (or ``Bearer <key>``). Scopes: ``write``
and ``admin`` (admin can do everything write can).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from pymongo import ASCENDING, IndexModel, ReadPreference
from pymongo.collection import Collection
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from core import index_sync, throttling
from core.audit import KEY_CREATE, KEY_REVOKE, Actor, audit_log
from core.mongo import get_database

COLLECTION = "api_keys"
SCOPES = ("write", "admin")
INDEXES = [IndexModel([("key_hash", ASCENDING)], name="key_hash", unique=True)]
KEY_PREFIX = "sek_"
SCHEMES = ("api-key", "bearer")
MSG_BAD_KEY = "The API key is not valid: it is unknown or was revoked. Send Authorization: Api-Key <key>."
MSG_NEEDS_KEY = "This needs an API key with the '{scope}' scope: send Authorization: Api-Key <key>."
MSG_WRONG_SCOPE = "This needs an API key with the '{scope}' scope; the key '{name}' has '{has}'."


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiClient:
    """Who a valid key belongs to (DRF's request.user)."""

    name: str
    scope: str
    is_authenticated: bool = True

    def has_scope(self, scope: str) -> bool:
        return self.scope == scope or self.scope == "admin"


class ApiKeyStore(index_sync.OwnIndexes):
    indexes = INDEXES

    def __init__(self, collection: Collection):
        self.collection = collection

    def create(self, *, name: str, scope: str) -> str:
        """Store a new key and return it: the only time it exists outside the client's hands."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        self.collection.insert_one(
            {"name": name, "scope": scope, "key_hash": _hash(key), "created": datetime.now(UTC), "revoked": False}
        )
        return key

    def revoke(self, *, name: str) -> int:
        """Revoke every key with this name; returns how many were still valid."""
        result = self.collection.update_many(
            {"name": name, "revoked": False}, {"$set": {"revoked": True, "revoked_at": datetime.now(UTC)}}
        )
        return result.modified_count

    def find(self, key: str) -> dict[str, Any] | None:
        return self.find_by_hash(_hash(key))

    def find_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        # From the primary whenever there is one; between two primaries (an election) from a secondary, so
        # that a keyed GET is served as an anonymous one is (docs/mongodb.md).
        keys = self.collection.with_options(read_preference=ReadPreference.PRIMARY_PREFERRED)
        return keys.find_one({"key_hash": key_hash, "revoked": False})

    @staticmethod
    def hash(key: str) -> str:
        return _hash(key)


def api_key_store() -> ApiKeyStore:
    return ApiKeyStore(get_database()[COLLECTION])


def api_key_create(*, name: str, scope: str, actor: Actor) -> str:
    """Create a key and record who did (the audit entry names the key, never holds it)."""
    store = api_key_store()
    store.ensure_indexes()
    key = store.create(name=name, scope=scope)
    audit_log().record(KEY_CREATE, actor, {"key_name": name}, {"scope": scope})
    return key


def api_key_revoke(*, name: str, actor: Actor) -> int:
    """Revoke every key named ``name``; recorded in the audit trail when one was."""
    revoked = api_key_store().revoke(name=name)
    if revoked:
        audit_log().record(KEY_REVOKE, actor, {"key_name": name}, {"keys_revoked": revoked})
    return revoked


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in SCHEMES:
            throttling.spend_address_budget(request)  # before anything else, as an anonymous request
            return None  # no key (or another scheme): anonymous
        key_hash = _hash(key.strip())
        # An address over its budget gets no key looked up: bad keys cannot buy database reads.
        throttling.check_address_budget(request, key_hash)
        record = api_key_store().find_by_hash(key_hash) if key.strip() else None
        if record is None:
            throttling.spend_address_budget(request)  # a bad key spends its address's budget
            raise exceptions.AuthenticationFailed(MSG_BAD_KEY)
        throttling.key_was_valid(key_hash)
        return ApiClient(name=record["name"], scope=record["scope"]), record

    def authenticate_header(self, request) -> str:
        return 'Api-Key realm="sales-estimator"'  # makes a missing key a 401, not a 403


class CanWrite(BasePermission):
    """Writes need a 'write' (or admin) key, unless ALLOW_ANONYMOUS_WRITES; reads are open."""

    def has_permission(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS") or settings.ALLOW_ANONYMOUS_WRITES:
            return True
        return HasScope.of("write")().has_permission(request, view)


class HasScope(BasePermission):
    """``HasScope.of("admin")``: only keys with that scope (or admin) pass."""

    scope = "admin"

    @classmethod
    def of(cls, scope: str) -> type[HasScope]:
        return type(f"Has{scope.title()}Scope", (cls,), {"scope": scope})

    def has_permission(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            raise exceptions.NotAuthenticated(MSG_NEEDS_KEY.format(scope=self.scope))
        if not client.has_scope(self.scope):
            raise exceptions.PermissionDenied(
                MSG_WRONG_SCOPE.format(scope=self.scope, name=client.name, has=client.scope)
            )
        return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the key (drf-spectacular finds this by the target class)."""

    target_class = "core.api_keys.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Api-Key <key>` or `Bearer <key>`; keys come from `manage.py create_api_key`, or, with the "
                "embedded store, the admin key the server prints when it starts."
            ),
        }
