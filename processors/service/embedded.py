"""Embedded mode: a Publisher that derives and writes rows straight into the local store, so
the collector answers 202 only after the write (no Kafka, one process)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

from collector.contract import Model, stable_id, utcnow
from collector.errors import ConflictingReport, InvalidInput, StoreError
from processors.rows.batch import Rows, merge_rows
from processors.rows.builder import RowBuilder
from processors.store.convergence import admit, restamped
from processors.store.sink import Sink


class EmbeddedPublisher:
    def __init__(self, sink: Sink, builder: RowBuilder) -> None:
        self._sink = sink
        self._builder = builder
        self._lock = threading.Lock()

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        """Derive and write; return only after the write. All or nothing: a report in conflict with the
        store (ConflictingReport) or refused by it (InvalidInput) writes none of this upload's rows."""
        per_message = [self._builder.rows(p, tenant, utcnow()) for p in payloads]
        # The token names the content, not the report id: a fuller report of the same call and
        # segment is a different insert, never dropped as a duplicate of the poorer one.
        token = "e-" + stable_id(tenant, *(hashlib.sha256(p.model_dump_json().encode()).hexdigest() for p in payloads))
        with self._lock:
            decision = admit(self._sink, per_message)
            if decision.refused:
                raise ConflictingReport(decision.refused[0][1])
            # Stamped under the lock: writes are serialised, so the later write carries the later
            # version, and convergence has made sure that it is never the poorer report.
            now = utcnow()
            rows: Rows = {}
            for i in decision.write:
                merge_rows(rows, restamped(per_message[i], max(now, decision.restamp.get(i, now))))
            try:
                # calls last: until it is written, no call-level query or rollup sees a partial report
                for table, table_rows in sorted(rows.items(), key=lambda item: item[0] == "calls"):
                    self._sink.insert(table, table_rows, dedup_token=f"{token}-{table}")
            except StoreError as exc:
                raise InvalidInput(f"the store refused the report ({exc}); the call was not stored") from exc

    def close(self) -> None:
        self._sink.close()
