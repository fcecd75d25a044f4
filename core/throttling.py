"""Request budgets, checked so that no client can dodge them (docs/throttling.md).

More: docs/architecture.md, "core/throttling.py".
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from core import index_sync, mongo

logger = logging.getLogger(__name__)

COLLECTION = "throttle_counters"
UNCOUNTED_WARNING_SECONDS = 30.0  # "not counted" is logged at most this often in a process
_last_uncounted_warning = -math.inf
INDEXES = [IndexModel([("expires", ASCENDING)], name="expires", expireAfterSeconds=0)]
MSG_ADDRESS = "Request was throttled: this client address has spent its budget of {rate} requests."
MSG_KEY = "Request was throttled: this API key has spent its budget of {rate} requests."
MSG_STORE_DOWN = "The request budget store (Redis) is unreachable right now; nothing was done. Retry in a few seconds."
# Counted in MongoDB: its failure comes before the request does anything, whatever the request's method.
MSG_MONGO_COUNTERS_DOWN = (
    "The database did not answer while counting this request against its budget; nothing was done. "
    "Retry in a few seconds."
)


class CounterStoreDown(exceptions.APIException):
    status_code = 503
    default_detail = MSG_STORE_DOWN
    default_code = "service_unavailable"


def parse_rate(rate: str) -> tuple[int, int]:
    """Read a rate, "600/min" -> (600, 60): DRF's syntax (s, m, h, d and any word starting with one)."""
    limit, period = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
    return int(limit), int(period)


class Counters(Protocol):
    def hit(self, key: str, period: int) -> tuple[int, float]:
        """Count one request against ``key``: (requests in its window with this one, seconds left)."""

    def peek(self, key: str) -> tuple[int, float]:
        """(requests so far in ``key``'s window, seconds left), counting nothing; (0, 0) without one."""


class LocalCounters:
    """One process's counters: right only where one process serves (the embedded store)."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, list[float]] = {}  # key -> [count, ends at (monotonic)]

    def hit(self, key: str, period: int) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None or window[1] <= now:
                if len(self._windows) >= self.MAX_KEYS:
                    self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
                window = self._windows[key] = [0, now + period]
            window[0] += 1
            return int(window[0]), window[1] - now

    def peek(self, key: str) -> tuple[int, float]:
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            return 0, 0.0
        return int(window[0]), window[1] - now

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


class MongoCounters(index_sync.OwnIndexes):
    """``{_id: key, n: count, reset: when the window ends (epoch seconds), expires: the same as a date,
    for the TTL index}``. A request in an open window costs one atomic update ($inc), so every host counts
    in the same document; the first of a window costs two or three (reset the ended one, or insert)."""

    indexes = INDEXES

    def __init__(self, collection: Any):
        self.collection = collection

    def _uncountable(self) -> bool:
        """In an election no member takes the count (a write), while the reads are still served from the
        secondaries: the request goes on uncounted rather than answer 503 (docs/mongodb.md). That lasts
        until a primary is elected (about 12 s at most), and nothing can be written meanwhile."""
        if not mongo.no_primary_for_now(self.collection.database.client):
            return False
        global _last_uncounted_warning
        now = time.monotonic()
        if now - _last_uncounted_warning > UNCOUNTED_WARNING_SECONDS:
            _last_uncounted_warning = now
            logger.warning("no primary: request budgets are not counted until one is elected")
        return True

    def hit(self, key: str, period: int) -> tuple[int, float]:
        if self._uncountable():
            return 0, float(period)
        for _ in range(5):
            now = time.time()
            doc = self.collection.find_one_and_update(
                {"_id": key, "reset": {"$gt": now}}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
            )
            if doc is not None:
                return int(doc["n"]), doc["reset"] - now
            window = {"n": 1, "reset": now + period, "expires": datetime.now(UTC) + timedelta(seconds=period)}
            # The window ended (the first request to see it starts the next), or there never was one.
            if self.collection.find_one_and_update({"_id": key, "reset": {"$lte": now}}, {"$set": window}):
                return 1, float(period)
            try:
                self.collection.insert_one({"_id": key, **window})
                return 1, float(period)
            except DuplicateKeyError:
                continue  # another request started the window meanwhile: count in it
        raise RuntimeError(f"the throttle counter {key!r} changed under five attempts in a row")

    def peek(self, key: str) -> tuple[int, float]:
        if self._uncountable():
            return 0, 0.0
        now = time.time()
        doc = self.collection.find_one({"_id": key, "reset": {"$gt": now}})
        return (int(doc["n"]), doc["reset"] - now) if doc else (0, 0.0)


class RedisCounters:
    """One MULTI/EXEC per request: SET key 0 EX period NX (starts a window), INCR, PTTL."""

    def __init__(self, client: Any):
        self.client = client

    def hit(self, key: str, period: int) -> tuple[int, float]:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, 0, ex=period, nx=True)
        pipe.incr(key)
        pipe.pttl(key)
        _, count, ttl_ms = self._execute(pipe)
        return int(count), max(ttl_ms, 0) / 1000

    def peek(self, key: str) -> tuple[int, float]:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(key)
        pipe.pttl(key)
        count, ttl_ms = self._execute(pipe)
        return (int(count), ttl_ms / 1000) if count is not None and ttl_ms > 0 else (0, 0.0)

    @staticmethod
    def _execute(pipe: Any) -> list[Any]:
        import redis

        try:
            return pipe.execute()
        except redis.RedisError as exc:  # a 503 in the error envelope, as a database that is down
            raise CounterStoreDown() from exc


_local = LocalCounters()
_redis: tuple[str, Any] | None = None


def counters() -> Counters:
    """The shared counters this process's settings choose (REDIS_URL, else MONGO_URI, else local)."""
    global _redis
    if settings.REDIS_URL:
        if _redis is None or _redis[0] != settings.REDIS_URL:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
            _redis = (settings.REDIS_URL, RedisCounters(client))
        return _redis[1]
    if settings.MONGO_URI:
        return mongo_counters()
    return _local


def mongo_counters() -> MongoCounters:
    """The counters in this process's MongoDB database (what ``counters`` chooses with MONGO_URI)."""
    from core.mongo import get_database

    return MongoCounters(get_database()[COLLECTION])


def reset() -> None:
    """Forget this process's counters (tests; the shared stores' windows end by themselves)."""
    global _redis
    _local.clear()
    _blocked.clear()
    _valid_keys.clear()
    _redis = None


# Per worker: addresses known to be over budget, and until when. Until then their requests answer 429
# with no round trip to the shared store (a window cannot end before its end), so a flood costs nothing.
_blocked: dict[str, float] = {}
_MAX_BLOCKED = 10_000
_memo_lock = threading.Lock()  # for _blocked and _valid_keys (gthread workers run requests in threads)


def _remember_blocked(key: str, seconds: float) -> None:
    now = time.monotonic()
    with _memo_lock:
        if len(_blocked) >= _MAX_BLOCKED:
            for stale in [k for k, until in _blocked.items() if until <= now]:
                del _blocked[stale]
            if len(_blocked) >= _MAX_BLOCKED:
                _blocked.clear()
        _blocked[key] = now + seconds


def _blocked_for(key: str) -> float:
    until = _blocked.get(key)
    if until is None:
        return 0.0
    left = until - time.monotonic()
    if left <= 0:
        with _memo_lock:
            _blocked.pop(key, None)
        return 0.0
    return left


def client_address(request: Any) -> str:
    """The client's address: REMOTE_ADDR, or X-Forwarded-For's entry per NUM_PROXIES (DRF's rule)."""
    return BaseThrottle().get_ident(request)


class Budget:
    """One named budget (a rate setting) counted per identity."""

    def __init__(self, name: str, setting: str, message: str):
        self.name, self.setting, self.message = name, setting, message

    @property
    def rate(self) -> str:
        return getattr(settings, self.setting)

    def key(self, ident: str) -> str:
        return f"throttle:{self.name}:{ident}"

    def spend(self, ident: str) -> float:
        """Count one request; 0 when it is within the budget, else the seconds until it may retry."""
        return self._wait(ident, count=True)

    def spent(self, ident: str) -> float:
        """Like spend, counting nothing: 0 while within the budget, else the seconds until it may retry."""
        return self._wait(ident, count=False)

    def _wait(self, ident: str, *, count: bool) -> float:
        if not self.rate:
            return 0.0
        key = self.key(ident)
        blocked = _blocked_for(key)
        if blocked:
            return blocked
        limit, period = parse_rate(self.rate)
        try:
            if count:
                seen, left = counters().hit(key, period)
                over = seen > limit  # this request is the seen-th
            else:
                seen, left = counters().peek(key)
                over = seen >= limit  # the next one would pass the limit
        except PyMongoError as exc:
            raise CounterStoreDown(MSG_MONGO_COUNTERS_DOWN) from exc
        if not over:
            return 0.0
        _remember_blocked(key, left)
        return max(left, 1.0)

    def throttled(self, wait: float) -> exceptions.Throttled:
        return exceptions.Throttled(wait=math.ceil(wait), detail=self.message.format(rate=self.rate))


ADDRESS = Budget("addr", "THROTTLE_ANON_RATE", MSG_ADDRESS)
KEY = Budget("key", "THROTTLE_KEY_RATE", MSG_KEY)
LOGIN = Budget("login", "THROTTLE_LOGIN_RATE", "")


def spend_address_budget(request: Any) -> None:
    """A request without a valid key: count it against its address; raises Throttled past the budget."""
    wait = ADDRESS.spend(client_address(request))
    if wait:
        raise ADDRESS.throttled(wait)


def check_address_budget(request: Any, key_hash: str) -> None:
    """Before a key is looked up: raises Throttled if the address is already over its budget, unless
    this worker has seen the key valid lately (only a valid key's hash gets there; it is still looked up)."""
    if key_hash in _valid_keys:
        return
    wait = ADDRESS.spent(client_address(request))
    if wait:
        raise ADDRESS.throttled(wait)


# Per worker: hashes of keys found valid, newest last. They pass the address check above, so a client
# with a key keeps working beside an anonymous flood from its address (a NAT) once it has been seen here.
_valid_keys: OrderedDict[str, None] = OrderedDict()
_MAX_VALID_KEYS = 10_000


def key_was_valid(key_hash: str) -> None:
    with _memo_lock:
        _valid_keys[key_hash] = None
        _valid_keys.move_to_end(key_hash)
        while len(_valid_keys) > _MAX_VALID_KEYS:
            _valid_keys.popitem(last=False)


class ClientRateThrottle(BaseThrottle):
    """DRF's throttle step (after authentication): a valid key spends its own budget. Requests without
    one have spent their address's budget during authentication (api_keys.ApiKeyAuthentication)."""

    def allow_request(self, request, view) -> bool:
        from core.api_keys import ApiClient

        if isinstance(request.user, ApiClient):
            wait = KEY.spend(request.user.name)
            if wait:
                raise KEY.throttled(wait)
        return True
