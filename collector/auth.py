"""API keys: which app (tenant) a request's key belongs to. The one check of every route."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

from collector.errors import InvalidInput

# An app id (tenant): what API keys are configured under and what rows are stored under.
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_tenant(name: str, path: str) -> str:
    """``name`` when it is a valid app id (1-64 of letters, digits, ``.``, ``_``, ``-``), else InvalidInput."""
    if not _TENANT.match(name):
        raise InvalidInput("an app id is 1-64 letters, digits, '.', '_' or '-'", path)
    return name


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
