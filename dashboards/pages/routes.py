"""The built-in dashboard pages as Starlette routes (the paths and auth: handler.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboards.model import Dashboard
from dashboards.pages.handler import STATIC_FILES, AlertsSource, Pages
from processors.store.sink import Sink

PATHS = ("/", "/d/{uid}", "/api/dashboards", "/api/dashboards/{uid}", "/api/dashboards/{uid}/panels/{key}",
         "/api/dashboards/{uid}/variables/{key}", "/alerts", "/api/alerts", "/runbooks/{id}", *STATIC_FILES)


def page_routes(sink: Sink, api_keys: Mapping[str, str], registries: Sequence[CollectorRegistry] = (),
                dashboards: Sequence[Dashboard] | None = None, alerts: AlertsSource | None = None,
                runbooks: Path | None = None) -> list[Route]:
    """GET routes of the pages. ``registries``: Prometheus registries of this process for metric
    panels; the app's own (``app.state.metrics_registry``, set by collector.http_app) is added.
    ``alerts``/``runbooks``: the evaluator's alerts and the runbooks' directory, when it runs here."""
    pages = Pages(sink, api_keys, dashboards, registries, alerts, runbooks)

    async def handler(request: Request) -> Response:
        own = getattr(request.app.state, "metrics_registry", None)
        more = [own] if isinstance(own, CollectorRegistry) else []
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer = await run_in_threadpool(pages.answer, request.url.path, request.url.query, headers, more)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type,
                        headers=answer.headers)

    return [Route(path, handler, methods=["GET"]) for path in PATHS]
