"""TURN lines through the real pipeline in batch messages: a log file -> FileTailer -> Kafka
(``turn_event_batch`` messages, zstd, the default settings) -> a processor's consumer loop ->
the store (chDB). Every line is stored once under its stable event id, also when the whole file
is published a second time (a tailer that lost its checkpoint); the processor reads the older
one-event messages too; a forged batch message with one bad row is dead-lettered whole and does
not stop the stream."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from collector.contract import TURN_EVENT_COLUMNS, TurnEvent, stable_id, utcnow
from collector.kafka_publisher import KafkaPublisher
from collector.settings import KafkaSettings, Settings
from collector.turn.coturn import CoturnParser
from collector.turn.tailer import FileTailer
from collector.wire import encode
from processors.service.assembly import build_loop
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.integration.test_delivery import create_topics, unique_topics
from tests.services import KafkaService

pytestmark = pytest.mark.kafka

SESSIONS = 120


def session_lines(k: int) -> list[str]:
    s = f"session {k:018d}: "
    user = f"user{k}"
    return [
        f"{k}: : IPv4. Local relay addr: 203.0.113.10:{50000 + k}\n",
        f"{k}: : {s}new, realm=<r.example>, username=<{user}>, lifetime=600\n",
        f"{k}: : {s}realm <r.example> user <{user}>: incoming packet ALLOCATE processed, success\n",
        f"{k + 1}: : {s}peer usage: realm=<r.example>, username=<{user}>, rp={k}, rb={k * 100}, sp=1, sb=7\n",
        f"{k + 2}: : {s}closed (2nd stage), user <{user}> realm <r.example> origin <>, local 203.0.113.10:3478, "
        f"remote 198.51.100.{k % 250}:{40000 + k}, reason: allocation timeout\n",
    ]


def send_raw(kafka: KafkaService, topic: str, key: bytes, value: bytes) -> None:
    """One message as it is, past the collector's encoding (what an old or forged producer sends)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    try:
        producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close(timeout=10)


def wait_for(cond: Callable[[], bool], timeout: float, what: str, errors: list[BaseException],
             state: Callable[[], object]) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert not errors, f"the processor died while waiting for {what}: {errors[0]!r}"
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}: {state()}"
        time.sleep(0.2)


def test_tailed_lines_reach_the_store_once_through_batch_messages(kafka: KafkaService, tmp_path: Path) -> None:
    topics = unique_topics(partitions=2)
    create_topics(kafka, topics)
    settings = Settings(kafka=KafkaSettings(bootstrap=kafka.bootstrap), topics=topics,
                        group_id=f"turn-{uuid.uuid4().hex[:8]}", max_batch_seconds=0.3)
    assert settings.kafka is not None and settings.kafka.compression == "zstd"
    log = tmp_path / "turn.log"
    lines = [ln for k in range(1, SESSIONS + 1) for ln in session_lines(k)]
    log.write_text("".join(lines))
    st = log.stat()
    source = f"{st.st_dev}:{st.st_ino}:0"
    offsets, off = [], 0
    for ln in lines:
        offsets.append(off)
        off += len(ln.encode())
    expected_ids = {stable_id("turn-b", source, o) for o in offsets}

    publisher = KafkaPublisher(settings.kafka, topics, source_host="test")
    sink = ChdbSink(tmp_path / "store")
    errors: list[BaseException] = []
    try:
        migrate(sink)
        for attempt in range(2):  # the second time without a checkpoint: every line again, same ids
            (tmp_path / "cp.json").unlink(missing_ok=True)
            tailer = FileTailer(log, publisher, CoturnParser("turn-b", b"key"), tmp_path / "cp.json",
                                batch_lines=150)
            try:
                assert tailer.poll() == len(lines), attempt
            finally:
                tailer.close()

        # an older collector's one-event message, and a forged batch with one bad row
        single = TurnEvent(event_id="single-1", server_id="turn-old", process_key="p@0", kind="other",
                           raw="9: : from an older collector", uptime_s=9)
        send_raw(kafka, topics.turn_events, b"turn-old", encode(single, source_host="old", tenant="default"))
        good_row: list[str | None] = [None] * len(TURN_EVENT_COLUMNS)
        for name, value in (("event_id", "forged-1"), ("server_id", "turn-x"), ("process_key", "p@0"),
                            ("kind", "other"), ("raw", "1: : fine")):
            good_row[TURN_EVENT_COLUMNS.index(name)] = value
        bad_row = list(good_row)
        bad_row[TURN_EVENT_COLUMNS.index("event_id")] = "forged-2"
        bad_row[TURN_EVENT_COLUMNS.index("rx_bytes")] = "lots"
        # produced_at (the rows' time) an hour ago: at a fixed day the store's 30-day TTL would drop forged-1
        # anyway, and the count of turn-x below would no longer show that the whole batch was refused
        forged = orjson.dumps({"schema": "turn_event_batch", "version": 1,
                               "produced_at": (utcnow() - timedelta(hours=1)).isoformat(),
                               "source_host": "x", "tenant": "default",
                               "payload": {"columns": list(TURN_EVENT_COLUMNS), "rows": [good_row, bad_row]}})
        send_raw(kafka, topics.turn_events, b"turn-x", forged)

        loop = build_loop(settings, sink, None, streams=("turn_events",))

        def run() -> None:
            try:
                loop.run()
            except BaseException as exc:  # the test fails on it
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            def n(sql: str) -> int:
                return int(sink.query(sql)[0]["n"])

            def state() -> tuple[int, int, int]:
                return (n("SELECT count() AS n FROM turn_events FINAL WHERE server_id = 'turn-b'"),
                        n("SELECT count() AS n FROM turn_events WHERE event_id = 'single-1'"),
                        n("SELECT count() AS n FROM dead_letters"))

            wait_for(lambda: state() == (len(lines), 1, 1), 120, "every line and the dead letter", errors, state)
        finally:
            loop.stop()
            thread.join(timeout=60)
        assert not errors, errors

        stored = sink.query("SELECT event_id, server_id, kind, rx_bytes, client_address FROM turn_events FINAL "
                            "WHERE server_id = 'turn-b'")
        assert len(stored) == len(lines)
        assert {r["event_id"] for r in stored} == expected_ids
        usage = sorted(r["rx_bytes"] for r in stored if r["kind"] == "peer_usage")
        assert usage == [k * 100 for k in range(1, SESSIONS + 1)]
        closed = [r for r in stored if r["kind"] == "closed"]
        assert len(closed) == SESSIONS and all(r["client_address"].startswith("198.51.") for r in closed)
        assert sink.query("SELECT uniqExactMerge(lines) AS n FROM turn_server_minute "
                          "WHERE server_id = 'turn-b'")[0]["n"] == len(lines)
        assert sink.query("SELECT raw FROM turn_events WHERE event_id = 'single-1'")[0]["raw"].endswith("collector")
        assert sink.query("SELECT count() AS n FROM turn_events WHERE server_id = 'turn-x'")[0]["n"] == 0
        [dead] = sink.query("SELECT stage, reason, raw FROM dead_letters")
        assert dead["stage"] == "processor" and "rx_bytes" in dead["reason"] and "forged-2" in dead["raw"]
    finally:
        publisher.close()
        sink.close()
