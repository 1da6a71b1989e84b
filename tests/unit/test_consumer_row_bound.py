"""The processor's batch is bounded by rows as well as messages: a turn_event_batch message holds
thousands of events, so 2,000 such messages (the message bound) would hold millions of rows in
memory. A fake Kafka consumer hands one message per poll; the store is the real chDB."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from collector.contract import TurnEvent
from collector.turn.batch_wire import encode_turn_batches
from collector.turn.coturn import CoturnParser
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.consumer import ConsumerLoop
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.kafka_record import Rec

TOPIC = "turn"
TP = TopicPartition(TOPIC, 0)


@dataclass
class OneAtATime:
    """Just what ConsumerLoop uses of a KafkaConsumer; stops the loop once it has no more."""

    values: list[bytes]
    loop: ConsumerLoop | None = None
    sink: ChdbSink | None = None
    commits: list[tuple[int, int]] = field(default_factory=list)  # (offset committed, rows stored then)
    next: int = 0

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, list[Rec]]:
        if self.next >= len(self.values):
            assert self.loop is not None
            self.loop.stop()
            return {}
        rec = Rec(TOPIC, 0, self.next, self.values[self.next])
        self.next += 1
        return {TP: [rec]}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        assert self.sink is not None
        stored = int(self.sink.query("SELECT count() AS n FROM turn_events")[0]["n"])
        self.commits.append((offsets[TP].offset, stored))

    def pause(self, *tps: TopicPartition) -> None: ...
    def resume(self, *tps: TopicPartition) -> None: ...
    def paused(self) -> set[TopicPartition]:
        return set()

    def close(self, autocommit: bool = False) -> None: ...


def batch_messages(count: int, per_message: int) -> list[bytes]:
    parser = CoturnParser("turn-r", b"k")
    out: list[bytes] = []
    off = 0
    for m in range(count):
        evs = []
        for i in range(per_message):
            ln = f"{m * per_message + i + 1}: : session 000000000000000{m:03d}: usage: realm=<r>, username=<u>, " \
                 f"rp={i}, rb=1, sp=1, sb=1\n"
            ev = parser.parse(ln, source="1:1:0", offset=off)
            off += len(ln)
            assert isinstance(ev, TurnEvent)
            evs.append(ev)
        [(_, value, n)] = encode_turn_batches(evs, source_host="h", tenant="default", max_bytes=1_000_000)
        assert n == per_message
        out.append(value)
    return out


def test_a_batch_is_written_once_it_holds_max_batch_rows(tmp_path: Path) -> None:
    sink = ChdbSink(tmp_path / "store")
    try:
        migrate(sink)
        consumer = OneAtATime(batch_messages(5, 40), sink=sink)
        loop = ConsumerLoop(consumer=consumer, sink=sink, row_fn=RowBuilder(FactsEnv()).rows, dlq=None,
                            metrics=ProcessorMetrics(), max_batch_messages=2000, max_batch_seconds=3600,
                            max_batch_rows=100)
        consumer.loop = loop
        loop.run()
        # 3 messages (120 rows) pass the row bound: written and committed; the last 2 at the stop
        assert consumer.commits == [(3, 120), (5, 200)]
        assert sink.query("SELECT count() AS n FROM turn_events FINAL")[0]["n"] == 200
    finally:
        sink.close()
