"""The CLI side of ``icewatch sql``: ask the process that holds the store (``POST /v1/sql``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from collector.errors import InvalidInput, NotPermitted, Unavailable
from processors.store.query_client import NotServed
from processors.store.sql_route import SQL_PATH


def post_sql(base_url: str, sql: str, api_key: str | None, timeout_s: float = 120) -> dict[str, Any]:
    """``{"columns": [...], "rows": [...]}`` of one statement run at ``base_url``. NotServed when that
    address holds no store; InvalidInput (NotPermitted for 403) for a refusal, with the server's
    message; Unavailable otherwise."""
    req = urllib.request.Request(f"{base_url}{SQL_PATH}", data=json.dumps({"sql": sql, "format": "json"}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        if exc.code in (404, 405):
            raise NotServed(f"{base_url} serves no SQL") from None
        try:
            body = json.loads(text)
            message, path = str(body.get("error", text)), body.get("path")
        except (ValueError, AttributeError):
            message, path = text, None
        if exc.code == 403:
            raise NotPermitted(f"403: {message}", path) from None
        if 400 <= exc.code < 500:
            raise InvalidInput(f"{exc.code}: {message}", path) from None
        raise Unavailable(f"{base_url} answered {exc.code}: {message}") from None
    except TimeoutError:
        raise Unavailable(f"{base_url} did not answer within {timeout_s:g} s") from None
    except (urllib.error.URLError, ConnectionError) as exc:
        raise NotServed(f"nothing answers at {base_url} ({exc})") from None
