"""Assembly of the collector process: publisher + HTTP app (+ embedded store or processor thread)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.errors import InvalidInput
from collector.http_app import IngestConfig, build_app
from collector.publisher import Publisher
from collector.settings import CollectorSettings

if TYPE_CHECKING:
    from processors.service.consumer import ConsumerLoop
    from processors.settings import ProcessorSettings
    from processors.store.sink import Sink

log = logging.getLogger(__name__)


def ingest_config(cs: CollectorSettings) -> IngestConfig:
    if not cs.api_keys:
        log.warning("no API keys configured (ICEWATCH_API_KEYS): uploads are not authenticated")
    return IngestConfig(
        api_keys={app: key.get_secret_value() for app, key in cs.api_keys.items()},
        max_body_bytes=cs.max_body_bytes,
        hash_key=cs.hash_key.get_secret_value().encode(),
        trusted_proxies=tuple(cs.trusted_proxies),
    )


def query_route(sink: Sink, config: IngestConfig) -> Route:
    """GET /v1/query?name=&since=&by=&tenant=: named queries through the process owning the store."""
    from processors.store.queries import run_named

    async def handler(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        if config.api_keys:
            auth = request.headers.get("authorization", "")
            import hmac

            given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            tenant = next((a for a, k in config.api_keys.items() if hmac.compare_digest(given, k)), None)
            if tenant is None:
                return JSONResponse({"error": "missing or invalid API key"}, status_code=401)
        else:
            tenant = request.query_params.get("tenant", "default")
        p = request.query_params
        by = tuple(d for d in p.get("by", "").split(",") if d) or None
        try:
            rows = await run_in_threadpool(run_named, sink, p.get("name", ""), p.get("since", "7d"), by, tenant)
        except InvalidInput as exc:
            return JSONResponse({"error": exc.message, "path": exc.path}, status_code=400)
        return JSONResponse({"rows": rows}, media_type="application/json")

    return Route("/v1/query", handler, methods=["GET"])


def serve(cs: CollectorSettings, ps: ProcessorSettings | None) -> None:
    """Run until interrupted."""
    import uvicorn

    config = ingest_config(cs)
    publisher: Publisher
    sink: Sink | None = None
    loops: list[ConsumerLoop] = []
    loop_threads: list[threading.Thread] = []
    if cs.kafka is not None:
        from collector.kafka_publisher import KafkaPublisher
        from collector.kafka_topics import ensure_topics

        ensure_topics(cs.kafka, cs.topics)
        publisher = KafkaPublisher(cs.kafka, cs.topics, cs.source_host)
        if ps is not None:
            from processors.service.assembly import STREAMS, build_loop, open_store
            from processors.service.metrics import ProcessorMetrics

            sink = open_store(ps)
            metrics = ProcessorMetrics()
            loops = [build_loop(ps, sink, publisher, metrics, (s,)) for s in STREAMS]
            loop_threads = [threading.Thread(target=lp.run, name="processor", daemon=True) for lp in loops]
            for t in loop_threads:
                t.start()
    else:
        from processors.rows.builder import RowBuilder
        from processors.service.assembly import facts_env, open_store
        from processors.service.embedded import EmbeddedPublisher
        from processors.settings import ProcessorSettings

        ps = ps or ProcessorSettings()
        sink = open_store(ps)
        publisher = EmbeddedPublisher(sink, RowBuilder(facts_env(ps)))
        log.info("embedded mode: store in %s", ps.data_dir / "store")
    routes = [query_route(sink, config)] if sink is not None else []
    app = build_app(publisher, config, routes)
    from collector.sources import start_sources

    sources = start_sources(cs, publisher)
    try:
        uvicorn.run(app, host=cs.host, port=cs.port, log_config=None)
    finally:
        sources.stop()
        for lp in loops:
            lp.stop()
        for t in loop_threads:
            t.join(timeout=30)
        publisher.close()
        if sink is not None and cs.kafka is not None:
            sink.close()
