"""``GET /v1/query?name=&since=&by=&tenant=``: named queries served by the process that holds the store.

The embedded store admits one process, so whoever holds it (``icewatch run``, or ``icewatch
processor`` without a ClickHouse server) answers queries for the CLI. ``answer_query`` is framework
free: the Starlette route of ``icewatch run`` and the processor's health server both call it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.auth import app_for_key, check_tenant, key_from_headers
from collector.errors import InvalidInput
from processors.store.queries import run_named
from processors.store.sink import Sink

QUERY_PATH = "/v1/query"


def answer_query(sink: Sink, params: Mapping[str, str], headers: Mapping[str, str],
                 api_keys: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """(status, JSON body). With API keys the tenant is the key's app; asking for another is refused."""
    tenant = params.get("tenant") or "default"
    try:
        check_tenant(tenant, "tenant")
    except InvalidInput as exc:
        return 400, {"error": exc.message, "path": exc.path}
    if api_keys:
        app = app_for_key(api_keys, key_from_headers(headers))
        if app is None:
            return 401, {"error": "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)"}
        if params.get("tenant") not in (None, "", app):
            return 403, {"error": f"this API key reads tenant {app!r} only", "path": "tenant"}
        tenant = app
    by = tuple(d for d in params.get("by", "").split(",") if d) or None
    try:
        rows = run_named(sink, params.get("name", ""), params.get("since", "7d"), by, tenant)
    except InvalidInput as exc:
        return 400, {"error": exc.message, "path": exc.path}
    return 200, {"rows": rows}


def query_route(sink: Sink, api_keys: Mapping[str, str]) -> Route:
    async def handler(request: Request) -> Response:
        status, body = await run_in_threadpool(answer_query, sink, request.query_params, request.headers, api_keys)
        # ClickHouse servers give dates and datetimes: as text, like the embedded store's JSON
        return Response(json.dumps(body, default=str), status_code=status, media_type="application/json")

    return Route(QUERY_PATH, handler, methods=["GET"])
