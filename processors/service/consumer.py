"""The consumer loop: poll -> rows (pure) -> batch by size or time -> insert -> commit.

Delivery rules (README.md, "Delivery guarantees"):
- offsets are committed only after every table of the batch was acknowledged by ClickHouse;
- every insert carries a deduplication token made from the batch's topic/partition/offset
  ranges and the table, so a retried batch with the same range is dropped by ClickHouse (and by
  dependent materialized views);
- a message that fails to decode or validate goes to the dead-letter topic and is committed past;
- a storage failure pauses consumption and retries the same batch (backpressure): memory
  holds at most one batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from collector.contract import DeadLetter, Model, dead_letter_raw
from collector.errors import InvalidInput, StorageUnavailable, StoreError, Unavailable
from collector.publisher import Publisher
from collector.wire import decode_call_report, decode_envelope
from processors.rows.batch import MessageRows, Rows, merge_rows
from processors.service.metrics import ProcessorMetrics
from processors.store.convergence import admit, restamped
from processors.store.sink import Sink

log = logging.getLogger(__name__)

RowFn = Callable[[Model, str, datetime], Rows]


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass
class Batch:
    # The rows of each message and its tenant, in offset order (convergence decides at write time).
    messages_rows: list[tuple[Record, MessageRows, str]] = field(default_factory=list)
    rows: Rows = field(default_factory=dict)  # what was written, table by table
    dead: list[tuple[DeadLetter, str]] = field(default_factory=list)  # (dead letter, tenant)
    # (topic, partition) -> [first offset, last offset]
    ranges: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    messages: int = 0
    row_count: int = 0  # rows of every table (a TURN batch message holds thousands)
    started: float = field(default_factory=time.monotonic)
    oldest_produced: datetime | None = None

    def note(self, rec: Record) -> None:
        r = self.ranges.setdefault((rec.topic, rec.partition), [rec.offset, rec.offset])
        r[1] = rec.offset
        self.messages += 1

    def token(self, table: str) -> str:
        parts = [f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items())]
        from collector.contract import stable_id

        return f"b-{stable_id(*parts)}-{table}"


def process_record(rec: Record, row_fn: RowFn, batch: Batch) -> None:
    """Decode one record and add its rows, or a dead letter, to the batch."""
    batch.note(rec)
    bad = (orjson.JSONDecodeError, ValidationError, KeyError, InvalidInput, ValueError, TypeError)
    payload: Model | None = None
    decoded = decode_call_report(rec.value)  # one pass for the common case; None: the two steps below
    if decoded is not None:
        env, payload = decoded
    else:
        try:
            env = decode_envelope(rec.value)
        except bad as exc:
            batch.dead.append((_dead_letter(rec, f"{type(exc).__name__}: {exc}"), "default"))  # no tenant known
            return
    try:
        rows = row_fn(env.decode() if payload is None else payload, env.tenant, env.produced_at)
    except bad as exc:
        batch.dead.append((_dead_letter(rec, f"{type(exc).__name__}: {exc}"), env.tenant))
        return
    batch.messages_rows.append((rec, rows, env.tenant))
    batch.row_count += sum(len(table_rows) for table_rows in rows.values())
    if batch.oldest_produced is None or env.produced_at < batch.oldest_produced:
        batch.oldest_produced = env.produced_at


def _dead_letter(rec: Record, reason: str) -> DeadLetter:
    raw, truncated, size = dead_letter_raw(rec.value)
    return DeadLetter(stage="processor", intended=rec.topic, reason=reason[:2000], raw=raw, raw_truncated=truncated,
                      raw_bytes=size, origin=f"{rec.topic}/{rec.partition}/{rec.offset}")


def message_ids(rows: MessageRows) -> dict[str, str]:
    """The call ids and event ids a message's rows carry, for its log lines (at most 5 of each)."""
    out: dict[str, str] = {}
    for key in ("call_id", "event_id"):
        found = sorted({str(r[key]) for table_rows in rows.values() for r in table_rows if r.get(key)})
        if found:
            out[key] = ",".join(found[:5]) + (",..." if len(found) > 5 else "")
    return out


def _message_token(batch: Batch, i: int) -> Callable[[str], str]:
    """Deduplication tokens of message ``i`` written alone (a retry of it is a no-op)."""
    return lambda table: f"{batch.token(table)}-m{i}"


def _insert(rows: MessageRows, sink: Sink, token: Callable[[str], str]) -> None:
    for table, table_rows in sorted(rows.items(), key=lambda item: item[0] == "calls"):  # calls last
        sink.insert(table, table_rows, dedup_token=token(table))


def write_batch(batch: Batch, sink: Sink, dlq: Publisher | None) -> None:
    """Insert every table of the batch (what convergence admits; ``calls`` last), then the dead
    letters. Raises Unavailable on failure; a retry decides and writes the same. When the store
    refuses the batch (StoreError), each message is written alone and those it refuses are
    dead-lettered, so one bad message cannot stop the stream."""
    decision = admit(sink, [rows for _, rows, _ in batch.messages_rows])

    def rows_of(i: int) -> MessageRows:
        rows = batch.messages_rows[i][1]
        return restamped(rows, decision.restamp[i]) if i in decision.restamp else rows

    dead = list(batch.dead)
    for i, reason in decision.refused:
        rec, rows, tenant = batch.messages_rows[i]
        log.warning("message %s/%d/%d dead-lettered: %s", rec.topic, rec.partition, rec.offset, reason,
                    extra=message_ids(rows))
        dead.append((_dead_letter(rec, reason), tenant))
    batch.rows = {}
    for i in decision.write:
        merge_rows(batch.rows, rows_of(i))
    try:
        _insert(batch.rows, sink, batch.token)
    except StoreError as exc:
        log.error("the store refused a batch; writing its messages one by one: %s", exc)
        refused = 0
        for i in decision.write:
            rec, _, tenant = batch.messages_rows[i]
            try:
                _insert(rows_of(i), sink, _message_token(batch, i))
            except StoreError as one:
                refused += 1
                log.warning("message %s/%d/%d dead-lettered: the store refused it: %s", rec.topic, rec.partition,
                            rec.offset, one, extra=message_ids(rows_of(i)))
                dead.append((_dead_letter(rec, f"the store refused it: {one}"), tenant))
        if refused and refused == len(decision.write):
            raise  # the store refuses everything (schema missing or drifted): stop, commit nothing
    _publish_dead(dead, batch, sink, dlq)


def _publish_dead(dead: list[tuple[DeadLetter, str]], batch: Batch, sink: Sink, dlq: Publisher | None) -> None:
    for tenant in sorted({t for _, t in dead}):
        letters = [d for d, t in dead if t == tenant]
        if dlq is None:
            from processors.rows.builder import dead_letter_row

            sink.insert("dead_letters", [dead_letter_row(d, tenant) for d in letters],
                        dedup_token=batch.token(f"dead_letters-{tenant}"))
        else:
            dlq.publish(letters, tenant=tenant)


@dataclass
class ConsumerLoop:
    consumer: Any  # kafka.KafkaConsumer with enable_auto_commit=False
    sink: Sink
    row_fn: RowFn
    dlq: Publisher | None
    metrics: ProcessorMetrics
    max_batch_messages: int = 2000
    max_batch_seconds: float = 1.0
    # Memory bound when messages carry many rows (turn_event_batch): a batch is written once it
    # holds this many rows, whatever its message count (one poll may pass it by a fetch's worth).
    max_batch_rows: int = 50_000
    retry_backoff_s: float = 1.0
    max_retry_backoff_s: float = 30.0
    stopping: bool = False

    def stop(self) -> None:
        self.stopping = True

    def run(self) -> None:
        batch = Batch()
        try:
            while not self.stopping:
                budget = self.max_batch_messages - batch.messages
                polled = self.consumer.poll(timeout_ms=200, max_records=max(1, budget))
                for records in polled.values():
                    for rec in records:
                        process_record(rec, self.row_fn, batch)
                full = batch.messages >= self.max_batch_messages or batch.row_count >= self.max_batch_rows
                due = time.monotonic() - batch.started >= self.max_batch_seconds
                if batch.messages and (full or due):
                    self.flush(batch)
                    batch = Batch()
                elif not batch.messages:
                    batch.started = time.monotonic()
            if batch.messages:
                self.flush(batch)
        finally:
            self.consumer.close(autocommit=False)

    def flush(self, batch: Batch) -> None:
        """Write the batch (retrying while storage is unavailable, consumption paused), then commit."""
        backoff = self.retry_backoff_s
        t0 = time.monotonic()
        paused = False
        while True:
            try:
                write_batch(batch, self.sink, self.dlq)
                break
            except (StorageUnavailable, Unavailable) as exc:
                self.metrics.write_failures.inc()
                log.warning("batch write failed, retrying in %.1fs: %s", backoff, exc)
                if not paused:
                    self.consumer.pause(*self.consumer.assignment())
                    paused = True
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline:
                    self.consumer.poll(timeout_ms=100)  # keeps group membership; paused: no records
                backoff = min(backoff * 2, self.max_retry_backoff_s)
        if paused:
            self.consumer.resume(*self.consumer.paused())
        offsets = self._offsets(batch)
        # A partition the group moved to another processor while this batch was read or written is
        # not committed here: its new owner reads from the last commit (the store counts a message
        # once) and commits further; a commit from here could move its offset back.
        owned = self.consumer.assignment()
        moved = sorted(f"{tp.topic}/{tp.partition}" for tp in offsets if tp not in owned)
        if moved:
            log.info("partitions %s were reassigned during this batch; their new owner commits them", moved)
        committing = {tp: om for tp, om in offsets.items() if tp in owned}
        if committing and self._commit(committing):
            self.metrics.observe_commit()
        self.metrics.observe_batch(batch.messages, batch.rows, len(batch.dead),
                                   time.monotonic() - t0, batch.oldest_produced)

    def _commit(self, offsets: dict[Any, Any]) -> bool:
        """Commit, or, when the group has moved on (this member was dropped for a write longer than
        the poll interval, or a rebalance began mid-commit), leave the batch uncommitted and go on:
        the next poll rejoins, and whoever owns the partitions then reads the batch again from the
        last commit (the store counts each message once). Stopping here would only restart the same.
        True when Kafka took the commit."""
        from kafka.errors import CommitFailedError, RebalanceInProgressError

        try:
            self.consumer.commit(offsets)
        except (CommitFailedError, RebalanceInProgressError) as exc:
            self.metrics.uncommitted_batches.inc()
            log.warning("batch written but not committed, the group moved on (rejoining; it is read again "
                        "from the last commit and counted once): %s", exc)
            return False
        return True

    @staticmethod
    def _offsets(batch: Batch) -> dict[Any, Any]:
        from kafka import OffsetAndMetadata, TopicPartition

        return {
            TopicPartition(t, p): OffsetAndMetadata(last + 1, "", -1)
            for (t, p), (_, last) in batch.ranges.items()
        }
