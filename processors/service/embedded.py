"""Embedded mode: a Publisher that derives and writes rows straight into the local store, so
the collector answers 202 only after the write (no Kafka, one process). Concurrent uploads are
written together (group commit)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from collector.contract import Model, stable_id, utcnow
from processors.rows.builder import RowBuilder
from processors.service.group_commit import GroupCommit, GroupCommitStats
from processors.store.sink import Sink


class EmbeddedPublisher:
    """Concurrent uploads share one write (processors/service/group_commit.py): each is derived in
    its caller's thread, then waits for the batch it joined to be written."""

    def __init__(self, sink: Sink, builder: RowBuilder, *, linger_s: float = 0.003, max_linger_s: float = 0.02,
                 max_batch_messages: int = 512, max_queued_messages: int = 4096,
                 max_queued_rows: int = 200_000) -> None:
        self._sink = sink
        self._builder = builder
        self._commit = GroupCommit(sink, linger_s=linger_s, max_linger_s=max_linger_s,
                                   max_batch_messages=max_batch_messages, max_queued_messages=max_queued_messages,
                                   max_queued_rows=max_queued_rows)

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        """Derive and write; return only after the write. All or nothing: a report in conflict with the
        store (ConflictingReport) or refused by it (InvalidInput) writes none of this upload's rows;
        Unavailable (503) when the store cannot take it or the write queue is full."""
        if not payloads:
            return
        per_message = [self._builder.rows(p, tenant, utcnow()) for p in payloads]
        # The token names the content, not the report id: a fuller report of the same call and
        # segment is a different insert, never dropped as a duplicate of the poorer one.
        token = "e-" + stable_id(tenant, *(hashlib.sha256(p.model_dump_json().encode()).hexdigest() for p in payloads))
        self._commit.submit(per_message, token)

    def stats(self) -> GroupCommitStats:
        return self._commit.stats()

    def waiting(self) -> int:
        """Uploads queued for the next write."""
        return self._commit.waiting()

    def close(self) -> None:
        self._commit.close()
        self._sink.close()
