"""Embedded mode: a Publisher that derives and writes rows straight into the local store, so
the collector answers 202 only after the write (no Kafka, one process)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from collector.contract import CallReport, Model, TurnEvent, stable_id, utcnow
from processors.rows.batch import Rows, merge_rows
from processors.rows.builder import RowBuilder
from processors.store.sink import Sink


class EmbeddedPublisher:
    def __init__(self, sink: Sink, builder: RowBuilder) -> None:
        self._sink = sink
        self._builder = builder
        self._lock = threading.Lock()

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        now = utcnow()
        rows: Rows = {}
        ids: list[str] = []
        for p in payloads:
            merge_rows(rows, self._builder.rows(p, tenant, now))
            if isinstance(p, CallReport):
                ids.append(p.report_id)
            elif isinstance(p, TurnEvent):
                ids.append(p.event_id)
        token = stable_id(tenant, *ids) if ids and len(ids) == len(payloads) else None
        with self._lock:
            for table, table_rows in rows.items():
                self._sink.insert(table, table_rows, dedup_token=f"{token}-{table}" if token else None)

    def close(self) -> None:
        self._sink.close()
