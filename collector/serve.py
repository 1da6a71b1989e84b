"""The collector process: the HTTP ingest app and the non-HTTP sources (TURN logs, syslog, probes)
in front of one Publisher (Kafka, or the embedded store handed in by ``icewatch run``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client.registry import Collector
from starlette.routing import Route

from collector.gc_tuning import raise_young_gc_threshold
from collector.http_app import IngestConfig, build_app
from collector.http_server import run_server
from collector.publisher import Publisher
from collector.settings import Settings
from collector.sources import start_sources

log = logging.getLogger(__name__)


def ingest_config(settings: Settings) -> IngestConfig:
    if not settings.api_keys:
        log.warning("no API keys configured (ICEWATCH_API_KEYS): uploads are not authenticated")
    return IngestConfig(
        api_keys=settings.api_key_values(),
        max_body_bytes=settings.max_body_bytes,
        hash_key=settings.hash_key.get_secret_value().encode(),
        trusted_proxies=tuple(settings.trusted_proxies),
        body_timeout_s=settings.body_timeout_s,
        cors_origins=tuple(settings.cors_origins),
    )


def serve_http(settings: Settings, publisher: Publisher, extra_routes: Sequence[Route] = (),
               collectors: Sequence[Collector] = ()) -> None:
    """Serve ingest (plus ``extra_routes``) on ICEWATCH_HOST:ICEWATCH_PORT until interrupted; its
    /metrics also shows the inputs it starts and ``collectors`` (what else the process runs).
    The caller owns ``publisher`` and closes it afterwards."""
    app = build_app(publisher, ingest_config(settings), extra_routes)
    raise_young_gc_threshold()  # a parsed document per upload
    sources = start_sources(settings, publisher)
    for collector in (sources.metrics, *collectors):
        app.state.metrics_registry.register(collector)
    try:
        run_server(app, settings.host, settings.port, max_connections=settings.max_connections,
                   keepalive_timeout_s=settings.keepalive_timeout_s, header_timeout_s=settings.header_timeout_s)
    finally:
        sources.stop()
