"""``icewatch processor``: consumer loops (one consumer group per stream) into the store, with
/healthz, /metrics, the query and SQL routes and the dashboard pages on ICEWATCH_METRICS_PORT;
SIGTERM flushes and commits."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence

from collector.errors import ConfigError
from collector.gc_tuning import raise_young_gc_threshold
from collector.kafka_publisher import KafkaPublisher
from collector.kafka_topics import ensure_topics
from collector.settings import Settings
from dashboards.pages.handler import Pages
from processors.service.assembly import build_loop
from processors.service.health import serve_health
from processors.service.metrics import ProcessorMetrics
from processors.store.open import open_store
from processors.store.query_route import QUERY_PATH, answer_query
from processors.store.sql_route import SQL_PATH, answer_sql, max_body_bytes


def run_processor(settings: Settings, streams: Sequence[str]) -> None:
    """Run until SIGTERM/SIGINT. ``settings.kafka`` must be set."""
    assert settings.kafka is not None
    raise_young_gc_threshold()  # a batch of decoded reports alive while rows are derived
    ensure_topics(settings.kafka, settings.topics)
    sink = open_store(settings)
    dlq = KafkaPublisher(settings.kafka, settings.topics, source_host="processor")
    metrics = ProcessorMetrics()
    loops = [build_loop(settings, sink, dlq, metrics, (s,)) for s in streams]
    threads = [threading.Thread(target=loop.run, name=f"loop-{i}") for i, loop in enumerate(loops)]
    api_keys = settings.api_key_values()
    if settings.metrics_port:
        pages = Pages(sink, api_keys, registries=[metrics.registry])
        try:
            serve_health(settings.metrics_port, metrics.registry, lambda: all(t.is_alive() for t in threads),
                         host=settings.host,
                         routes={QUERY_PATH: lambda params, headers: answer_query(sink, params, headers, api_keys)},
                         post_routes={SQL_PATH: lambda body, hdrs: answer_sql(sink, body, hdrs, api_keys,
                                                                              settings.sql)},
                         max_post_bytes=max_body_bytes(settings.sql),
                         pages=lambda path, query, headers: pages.answer(path, query, headers).parts())
        except OSError as exc:
            sink.close()
            raise ConfigError(f"cannot serve /healthz and /metrics on {settings.host}:{settings.metrics_port} "
                              f"({exc.strerror or exc}): set ICEWATCH_METRICS_PORT to a free port (0: none)") from exc

    def stop(*_: object) -> None:
        for loop in loops:
            loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.5)
    dlq.close()
    sink.close()
