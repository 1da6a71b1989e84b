"""``POST /v1/sql``: an analyst's read-only SQL, run by the process that holds the store.

Request body: JSON ``{"sql": "SELECT ...", "format": "json" | "csv" | "table"}`` (format optional,
default json). Answer: 200 with ``{"columns": [...], "rows": [{...}, ...]}`` (json), ``text/csv``
(csv) or ``text/plain`` (table, aligned columns); refusals are JSON ``{"error", "path"}``: 400
(not one read-only SELECT, a limit exceeded, a ClickHouse error in the statement), 401 (API keys
configured, none or a wrong one given), 403 (a key's statement reads a table without a tenant
column), 413 (body too large), 415 (not application/json), 503 (the store is unavailable).

With API keys every key is its app's (tenant's): its statement sees that tenant's rows only
(``processors/store/readonly_sql.py``). ``answer_sql`` is framework free: the Starlette route of
``icewatch run`` and the processor's health server both call it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.auth import app_for_key, key_from_headers
from collector.errors import InvalidInput, NotPermitted, Unavailable
from collector.settings import SqlLimits
from processors.store.readonly_sql import run_readonly
from processors.store.render import render_rows
from processors.store.sink import Sink

SQL_PATH = "/v1/sql"
FORMATS = ("json", "csv", "table")
JSON_TYPE = "application/json"


def max_body_bytes(limits: SqlLimits) -> int:
    """The largest request body: the SQL text JSON-escaped (at most 6 bytes a byte) and a little more."""
    return 6 * limits.max_sql_bytes + 1024


def _error(status: int, message: str, path: str | None = None) -> tuple[int, str, bytes]:
    return status, JSON_TYPE, json.dumps({"error": message, "path": path}).encode()


def answer_sql(sink: Sink, body: bytes, headers: Mapping[str, str], api_keys: Mapping[str, str],
               limits: SqlLimits) -> tuple[int, str, bytes]:
    """(status, content type, body) for one request."""
    tenant: str | None = None
    if api_keys:
        tenant = app_for_key(api_keys, key_from_headers(headers))
        if tenant is None:
            return _error(401, "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)")
    if headers.get("content-type", "").split(";")[0].strip().lower() != JSON_TYPE:
        # also keeps browsers from sending it from another page without asking first (a CORS preflight)
        return _error(415, "send the statement as Content-Type: application/json")
    if len(body) > max_body_bytes(limits):
        return _error(413, f"the body is larger than {max_body_bytes(limits)} bytes")
    try:
        doc = json.loads(body)
    except ValueError:
        return _error(400, 'expected a JSON body: {"sql": "SELECT ...", "format": "json|csv|table"}')
    if not isinstance(doc, dict) or not isinstance(doc.get("sql"), str):
        return _error(400, 'expected a JSON object with the statement as a string: {"sql": "SELECT ..."}', "sql")
    fmt = doc.get("format", "json")
    if fmt not in FORMATS:
        return _error(400, f"format is one of {', '.join(FORMATS)}", "format")
    try:
        result = run_readonly(sink, doc["sql"], limits, tenant)
    except NotPermitted as exc:
        return _error(403, exc.message, exc.path)
    except InvalidInput as exc:
        return _error(400, exc.message, exc.path)
    except Unavailable as exc:
        return _error(503, f"the store is unavailable: {exc}")
    if fmt == "json":
        return 200, JSON_TYPE, json.dumps({"columns": result.columns, "rows": result.rows}, default=str).encode()
    text = render_rows(result.rows, fmt)
    return 200, "text/csv; charset=utf-8" if fmt == "csv" else "text/plain; charset=utf-8", (text + "\n").encode()


def sql_route(sink: Sink, api_keys: Mapping[str, str], limits: SqlLimits) -> Route:
    limit = max_body_bytes(limits)

    async def handler(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            status, ctype, out = _error(413, f"the body is larger than {limit} bytes")
            return Response(out, status_code=status, media_type=ctype)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                status, ctype, out = _error(413, f"the body is larger than {limit} bytes")
                return Response(out, status_code=status, media_type=ctype)
        status, ctype, out = await run_in_threadpool(answer_sql, sink, bytes(body), request.headers, api_keys, limits)
        return Response(out, status_code=status, media_type=ctype)

    return Route(SQL_PATH, handler, methods=["POST"])
