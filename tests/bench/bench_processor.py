"""Processor throughput per core, Kafka -> ClickHouse acknowledged, and end-to-end freshness.

Sizing rule: every call uploads one 300-interval report every 5 minutes, so
concurrent calls per core = reports per CPU-second x 300.
CPU is process CPU time (all threads, chDB's included) of this one process, which runs the
consumer loop and the embedded ClickHouse; the broker runs in its own JVM and is not counted.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sized
from datetime import datetime
from pathlib import Path
from typing import Any

from collector.contract import utcnow
from collector.gc_tuning import raise_young_gc_threshold
from collector.kafka_publisher import KafkaPublisher
from collector.settings import KafkaSettings, Topics
from processors.service.assembly import make_consumer
from processors.service.consumer import ConsumerLoop
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ARROW_MIN_ROWS, ChdbSink
from processors.store.migrate import migrate
from tests.bench.floors import PREFIX, bare_insert_cpu
from tests.bench.processor_workload import BATCH, INTERVALS, processor_workload, report_count
from tests.bench.table import Row, emit
from tests.services import KafkaService

N = report_count()


class LagRecorder(ProcessorMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.lags: list[float] = []

    def observe_batch(self, messages: int, rows: Mapping[str, Sized], dead: int, seconds: float,
                      oldest: datetime | None) -> None:
        super().observe_batch(messages, rows, dead, seconds, oldest)
        if oldest is not None:
            self.lags.append((utcnow() - oldest).total_seconds())


def consume_until(loop: ConsumerLoop, done: Any) -> None:
    t = threading.Thread(target=loop.run, daemon=True)
    t.start()
    while not done():
        time.sleep(0.05)
    loop.stop()
    t.join(timeout=60)


def main() -> None:
    print(f"# processor benchmark, {datetime.now().date()}, {N} reports x {INTERVALS} intervals")
    raise_young_gc_threshold()  # as `icewatch processor` runs: every figure below, the floor too
    work = processor_workload(N, "bench")
    reports, builder, derive_cpu = work.reports, work.builder, work.derive_cpu
    print(f"derive only (facts + rows): {N / derive_cpu:,.0f} reports/CPU-s")

    with tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaService(Path(tmp) / "kafka")
        kafka.start()
        sink = ChdbSink(Path(tmp) / "store")
        try:
            migrate(sink)
            tag = uuid.uuid4().hex[:6]
            topics = Topics(call_reports=f"b{tag}.calls", turn_events=f"b{tag}.turn",
                            probe_results=f"b{tag}.probes", dead_letters=f"b{tag}.dlq", partitions=2)
            for name in (topics.call_reports, topics.dead_letters):
                kafka.create_topic(name, partitions=2)
            ks = KafkaSettings(bootstrap=kafka.bootstrap)
            pub = KafkaPublisher(ks, topics, "bench")
            for k in range(0, N, 50):
                pub.publish(reports[k:k + 50])

            # A running processor loads pyarrow, pandas and numpy once, at its first columnar insert (~0.3 s
            # CPU, 2026-11-26): a start-up cost, loaded here before the clock so the figure is per report.
            warm = [dict(r, tenant="warmup") for rows in work.rows[:-(-ARROW_MIN_ROWS // INTERVALS)]
                    for r in rows["call_samples"]]
            sink.insert("call_samples", warm)

            # 1. end to end: Kafka -> derive -> chDB insert -> commit
            metrics = ProcessorMetrics()
            loop = ConsumerLoop(consumer=make_consumer(ks, [topics.call_reports], f"g{tag}", 200), sink=sink,
                                row_fn=builder.rows, dlq=pub, metrics=metrics, max_batch_messages=BATCH,
                                max_batch_seconds=0.5)
            w0, c0 = time.monotonic(), time.process_time()
            consume_until(loop, lambda: metrics.messages._value.get() >= N)
            e2e_cpu, e2e_wall = time.process_time() - c0, time.monotonic() - w0
            rate = N / e2e_cpu
            print(f"end to end Kafka->ClickHouse: {rate:,.1f} reports/CPU-s ({N / e2e_wall:,.1f}/s wall)"
                  f" -> {rate * 300:,.0f} concurrent calls per core")
            print(f"derivation share of end-to-end CPU: {derive_cpu / e2e_cpu:.0%}")

            # 2. the floor: the same rows, bare into plain MergeTree copies of the tables (no views), in
            # batches of the loop's size; and what the views cost: the same batches into the real tables.
            plain_cpu = bare_insert_cpu(sink, work.batches("bare"))

            def sink_cpu(prefix: str, tenant: str) -> float:  # icewatch's insert (Arrow columns when it can)
                todo = work.batches(tenant)
                t = time.process_time()
                for batch in todo:
                    for tb, trs in batch.items():
                        sink.insert(prefix + tb, trs)
                return time.process_time() - t

            sink_plain_cpu = sink_cpu(PREFIX, "sink-plain")
            views_cpu = sink_cpu("", "views")
            floor = N / plain_cpu
            print(f"floor, bare chDB insert of the same rows (JSON encoded before the clock) into plain tables "
                  f"(batches of {BATCH}): {floor:,.0f} reports/CPU-s; icewatch's sink insert (rows -> chDB) of the "
                  f"same batches into the plain tables: {N / sink_plain_cpu:,.0f}, into the real tables (views run): "
                  f"{N / views_cpu:,.0f} reports/CPU-s -> the views cost {views_cpu / sink_plain_cpu:.2f}x the sink's "
                  f"insert into plain tables ({views_cpu:.2f}s vs {sink_plain_cpu:.2f}s CPU; floor {plain_cpu:.2f}s)")
            emit(Row(figure="processor end to end, Kafka -> ClickHouse acknowledged / a bare chDB insert of the same "
                            "rows into plain MergeTree tables without views",
                     ratio=f"{rate / floor:.0%}", measured=f"{rate:,.1f} reports/CPU-s",
                     floor=f"{floor:,.0f} reports/CPU-s (views: {N / views_cpu:,.0f})", goal=">= 50 %",
                     met=rate / floor >= 0.5))

            # 3. freshness at half the measured wall rate: 202 (publish ack) -> visible in the rollup
            half = max(1.0, (N / e2e_wall) / 2)
            lag = LagRecorder()
            topics2 = topics.model_copy(update={"call_reports": f"b{tag}.paced"})
            kafka.create_topic(topics2.call_reports, partitions=2)
            pub2 = KafkaPublisher(ks, topics2, "bench")
            loop2 = ConsumerLoop(consumer=make_consumer(ks, [topics2.call_reports], f"f{tag}", 200), sink=sink,
                                 row_fn=builder.rows, dlq=pub, metrics=lag, max_batch_messages=200,
                                 max_batch_seconds=0.5)
            count = min(N, int(half * 20))
            relabeled = [r.model_copy(update={"call_id": r.call_id + "-paced"}) for r in reports[:count]]
            consumer_thread = threading.Thread(target=loop2.run, daemon=True)
            consumer_thread.start()
            while not loop2.consumer.assignment():  # wait for the group join before the clock starts
                time.sleep(0.1)
            t0 = time.monotonic()
            for i, r in enumerate(relabeled):
                delay = t0 + i / half - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pub2.publish([r])
            while lag.messages._value.get() < count:
                time.sleep(0.05)
            loop2.stop()
            consumer_thread.join(timeout=60)
            lags = sorted(lag.lags)
            p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
            print(f"freshness at {half:.1f} reports/s (half the max): p99 {p99:.2f}s, max {lags[-1]:.2f}s "
                  f"(oldest message of each batch, publish-ack -> rollup visible)")
            pub.close()
            pub2.close()
        finally:
            sink.close()
            kafka.stop()


if __name__ == "__main__":
    main()
