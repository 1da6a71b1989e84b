"""``icewatch run``: the whole pipeline in one process.

Without Kafka, the collector publishes through the embedded publisher straight into the embedded
store (202 only after the write). With Kafka, the collector publishes to Kafka and one processor
loop per stream consumes into the store. Either way this process holds the store, so it also
serves the named queries (``GET /v1/query``) and the built-in dashboard pages (``GET /``,
dashboards/pages), and evaluates the alert rules on it (alerts/).
"""

from __future__ import annotations

import logging
import threading

from alerts.metrics import EvaluatorCollector
from alerts.rules import RUNBOOKS_DIR
from alerts.service import evaluator_for
from collector.publisher import Publisher
from collector.serve import serve_http
from collector.settings import Settings
from dashboards.pages.routes import page_routes
from processors.rows.builder import RowBuilder
from processors.service.assembly import STREAMS, build_loop, facts_env
from processors.service.consumer import ConsumerLoop
from processors.service.embedded import EmbeddedPublisher
from processors.service.metrics import ProcessorMetrics
from processors.store.open import open_store
from processors.store.query_route import query_route
from processors.store.sql_route import sql_route

log = logging.getLogger(__name__)


def run_all_in_one(settings: Settings) -> None:
    """Run until interrupted."""
    loops: list[ConsumerLoop] = []
    threads: list[threading.Thread] = []
    publisher: Publisher
    metrics: ProcessorMetrics | None = None
    if settings.kafka is not None:
        from collector.kafka_publisher import KafkaPublisher
        from collector.kafka_topics import ensure_topics

        ensure_topics(settings.kafka, settings.topics)
        publisher = KafkaPublisher(settings.kafka, settings.topics, settings.source_host)
        sink = open_store(settings)
        metrics = ProcessorMetrics()
        loops = [build_loop(settings, sink, publisher, metrics, (s,)) for s in STREAMS]
        threads = [threading.Thread(target=lp.run, name="processor", daemon=True) for lp in loops]
        for t in threads:
            t.start()
    else:
        sink = open_store(settings)
        publisher = EmbeddedPublisher(sink, RowBuilder(facts_env(settings)),
                                      max_batch_messages=settings.embedded_batch_messages,
                                      max_queued_messages=settings.embedded_queue_messages)
        log.info("embedded mode: store in %s", settings.data_dir / "store")
    api_keys = settings.api_key_values()
    evaluator = evaluator_for(settings, sink)  # the alert rules, on the store this process holds
    evaluator.start()
    try:
        serve_http(settings, publisher, [query_route(sink, api_keys), sql_route(sink, api_keys, settings.sql),
                                         *page_routes(sink, api_keys, [],  # the app's registry holds them all
                                                     alerts=evaluator.snapshot, runbooks=RUNBOOKS_DIR)],
                   collectors=[EvaluatorCollector(evaluator), *([metrics.registry] if metrics else [])])
    finally:
        evaluator.stop()
        for lp in loops:
            lp.stop()
        for t in threads:
            t.join(timeout=30)
        publisher.close()
        if settings.kafka is not None:
            sink.close()  # the embedded publisher closed it already
        log.info("icewatch run stopped: evaluator, publisher and store closed")
