"""One request budget per client: per API key when a valid one is sent, else per client address.

Rates come from THROTTLE_KEY_RATE / THROTTLE_ANON_RATE ("" turns one off). Counters live in Django's
cache: in-process by default, shared by every replica when REDIS_URL is set. Over the budget a request
answers 429 with Retry-After.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .api_keys import ApiClient


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def __init__(self) -> None:
        pass  # the rate depends on the request: see allow_request

    def allow_request(self, request, view) -> bool:
        keyed = isinstance(request.user, ApiClient)
        self.rate = settings.THROTTLE_KEY_RATE if keyed else settings.THROTTLE_ANON_RATE
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.user, ApiClient):
            ident = f"key:{request.user.name}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return f"throttle:{ident}"
