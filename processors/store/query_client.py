"""The CLI side of named queries: ask the process that holds the store over HTTP (``GET /v1/query``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from collector.errors import InvalidInput, Unavailable
from processors.store.query_route import QUERY_PATH


class NotServed(Exception):
    """Nothing answers queries at that address (nothing listening, or a process without a store)."""


def fetch_rows(base_url: str, params: dict[str, str], api_key: str | None,
               timeout_s: float = 60) -> list[dict[str, Any]]:
    """Rows of a named query from ``base_url``. NotServed when that address holds no store;
    InvalidInput for a refused query (4xx, with the server's message); Unavailable otherwise."""
    req = urllib.request.Request(f"{base_url}{QUERY_PATH}?{urllib.parse.urlencode(params)}")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            rows: list[dict[str, Any]] = json.loads(resp.read())["rows"]
            return rows
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        if exc.code == 404:
            raise NotServed(f"{base_url} serves no queries") from None
        try:
            body = json.loads(text)
            message, path = str(body.get("error", text)), body.get("path")
        except ValueError:
            message, path = text, None
        if 400 <= exc.code < 500:
            raise InvalidInput(f"{exc.code}: {message}", path) from None
        raise Unavailable(f"{base_url} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        raise NotServed(f"nothing answers at {base_url} ({exc})") from None
