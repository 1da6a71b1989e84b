"""API keys: which app (tenant) a request's key belongs to. The one check of every route."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


def key_from_headers(headers: Mapping[str, str]) -> str:
    """The key a request presents: ``Authorization: Bearer <key>``, else ``X-API-Key``."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("x-api-key", "").strip()


def app_for_key(api_keys: Mapping[str, str], given: str) -> str | None:
    """The app id whose key is ``given``, or None. Every key is compared, in constant time each."""
    found = None
    for app, key in api_keys.items():
        if hmac.compare_digest(given.encode(), key.encode()):
            found = app
    return found
