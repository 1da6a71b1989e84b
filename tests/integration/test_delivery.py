"""Delivery guarantees end to end with the real Kafka broker and the real ClickHouse engine (chDB):
nothing acknowledged is lost, nothing is counted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from collector.contract import CallReport, Candidate, Sample, SelectedPair, StateChange, stable_id
from collector.http_app import IngestConfig, build_app
from collector.kafka_publisher import KafkaPublisher
from collector.settings import KafkaSettings, Settings, Topics
from processors.service.assembly import build_loop
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from tests.example_report import example_bytes
from tests.http_server import free_port, serve
from tests.services import KafkaService

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]
# An hour ago, on a whole minute: inside every table's retention (a fixed date would expire).
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def unique_topics(partitions: int = 3) -> Topics:
    tag = uuid.uuid4().hex[:8]
    return Topics(call_reports=f"t{tag}.calls", turn_events=f"t{tag}.turn", probe_results=f"t{tag}.probes",
                  dead_letters=f"t{tag}.dlq", partitions=partitions)


def make_report(i: int) -> CallReport:
    start = T0 + timedelta(seconds=i % 600)
    return CallReport(
        call_id=f"call-{i:05d}",
        report_id=stable_id("call", i),
        source_format="w3c",
        started_at=start,
        candidates=[
            Candidate(id="L", is_remote=False, candidate_type="relay", protocol="udp", relay_protocol="udp",
                      relay_protocol_source="relayProtocol", url="turn:turn.example.net:3478"),
            Candidate(id="R", is_remote=True, candidate_type="srflx", protocol="udp"),
        ],
        selected_pairs=[SelectedPair(at=start, local_candidate_id="L", remote_candidate_id="R")],
        states=[StateChange(at=start, kind="ice", state="connected"),
                StateChange(at=start + timedelta(milliseconds=80), kind="dtls", state="connected")],
        samples=[Sample(start=start + timedelta(seconds=s), end=start + timedelta(seconds=s + 1),
                        rtt_ms=40.0 + (i % 300), rtt_source="candidate-pair") for s in range(3)],
    )


def create_topics(kafka: KafkaService, topics: Topics) -> None:
    for name in (topics.call_reports, topics.turn_events, topics.probe_results, topics.dead_letters):
        kafka.create_topic(name, partitions=topics.partitions)


def committed_total(kafka: KafkaService, group: str) -> int:
    from kafka.errors import KafkaError

    admin = kafka.admin()
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError:  # the group coordinator is still starting
        return 0
    finally:
        admin.close()
    return sum(o.offset for o in offsets.values() if o.offset > 0)


def processor_env(kafka: KafkaService, topics: Topics, data_dir: Path, group: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ICEWATCH_KAFKA__BOOTSTRAP": kafka.bootstrap,
        "ICEWATCH_TOPICS__CALL_REPORTS": topics.call_reports,
        "ICEWATCH_TOPICS__TURN_EVENTS": topics.turn_events,
        "ICEWATCH_TOPICS__PROBE_RESULTS": topics.probe_results,
        "ICEWATCH_TOPICS__DEAD_LETTERS": topics.dead_letters,
        "ICEWATCH_TOPICS__PARTITIONS": str(topics.partitions),
        "ICEWATCH_GROUP_ID": group,
        "ICEWATCH_DATA_DIR": str(data_dir),
        "ICEWATCH_METRICS_PORT": str(free_port()),
        "ICEWATCH_MAX_BATCH_MESSAGES": "500",
        "ICEWATCH_MAX_BATCH_SECONDS": "0.5",
    })
    return env


def start_processor(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "processors"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def wait_for(cond: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log else ""
            raise AssertionError(f"processor exited with {proc.returncode} while waiting for {what}:\n{tail}")
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")


def test_kill_9_processor_mid_stream_exactly_once(kafka: KafkaService, tmp_path: Path) -> None:
    topics = unique_topics(partitions=3)
    create_topics(kafka, topics)
    group = f"g-{uuid.uuid4().hex[:8]}"
    publisher = KafkaPublisher(KafkaSettings(bootstrap=kafka.bootstrap), topics, source_host="test")
    # Half before the processor starts, half while it works; its batches hold 500 (processor_env).
    total, first = 10_000, 5000
    reports = [make_report(i) for i in range(total)]
    for k in range(0, first, 500):
        publisher.publish(reports[k:k + 500])

    env = processor_env(kafka, topics, tmp_path / "data", group)
    # The killed member's partitions wait for its session to expire before the restarted processor
    # gets them: 6 s (the brokers' default minimum) instead of the default 45 s.
    env["ICEWATCH_KAFKA__SESSION_TIMEOUT_MS"] = "6000"
    log = tmp_path / "processor.log"
    proc = start_processor(env, log)
    try:
        wait_for(lambda: committed_total(kafka, group + ".call_reports") >= first // 2, 120, "first commits", proc, log)
        health = httpx.get(f"http://127.0.0.1:{env['ICEWATCH_METRICS_PORT']}/healthz", timeout=5)
        assert health.status_code == 200, health.text
        scraped = httpx.get(f"http://127.0.0.1:{env['ICEWATCH_METRICS_PORT']}/metrics", timeout=5).text
        assert "icewatch_processor_rows_total" in scraped
        for k in range(first, total, 500):  # keep the stream going while the processor works
            publisher.publish(reports[k:k + 500])
        proc.send_signal(signal.SIGKILL)  # mid-stream: uncommitted batches are in flight
        proc.wait(timeout=10)
        killed_at = committed_total(kafka, group + ".call_reports")
        assert killed_at < total, "the processor was not killed mid-stream"

        proc = start_processor(env, log)
        wait_for(lambda: committed_total(kafka, group + ".call_reports") >= total, 180, "all committed", proc, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        publisher.close()

    sink = ChdbSink(tmp_path / "data" / "store")
    try:
        assert sink.query("SELECT count() AS n FROM calls FINAL")[0]["n"] == total
        assert sink.query("SELECT uniqExact(call_id) AS n FROM calls")[0]["n"] == total
        assert sink.query("SELECT uniqExactMerge(calls) AS n FROM call_minute")[0]["n"] == total
        assert sink.query("SELECT uniqExactIfMerge(relayed) AS n FROM call_minute")[0]["n"] == total
        assert sink.query("SELECT count() AS n FROM call_samples FINAL")[0]["n"] == 3 * total
        assert sink.query("SELECT uniqExactMerge(samples) AS n FROM rtt_band_minute")[0]["n"] == 3 * total
        before = snapshot(sink)
    finally:
        sink.close()

    # Replaying the topic from offset 0 (a new consumer group) leaves every table and rollup unchanged.
    replay_env = processor_env(kafka, topics, tmp_path / "data", group + "-replay")
    proc = start_processor(replay_env, log)
    try:
        replay_group = group + "-replay.call_reports"
        wait_for(lambda: committed_total(kafka, replay_group) >= total, 180, "replay committed", proc, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    sink = ChdbSink(tmp_path / "data" / "store")
    try:
        assert snapshot(sink) == before
    finally:
        sink.close()


SNAPSHOT_QUERIES = {
    "calls": "SELECT count() AS n, groupBitXor(cityHash64(*)) AS h FROM calls FINAL",
    "call_samples": "SELECT count() AS n, groupBitXor(cityHash64(*)) AS h FROM call_samples FINAL",
    "candidates": "SELECT count() AS n, groupBitXor(cityHash64(*)) AS h FROM candidates FINAL",
    "call_minute": "SELECT minute, client_region, path_class, uniqExactMerge(calls) AS c, "
    "uniqExactIfMerge(relayed) AS r, uniqExactIfMerge(dtls_stall) AS d FROM call_minute "
    "GROUP BY ALL ORDER BY ALL",
    "rtt_band_minute": "SELECT minute, rtt_band, uniqExactMerge(samples) AS s FROM rtt_band_minute "
    "GROUP BY ALL ORDER BY ALL",
    "ingest_minute": "SELECT minute, uniqExactMerge(reports) AS r FROM ingest_minute GROUP BY ALL ORDER BY ALL",
}


def snapshot(sink: ChdbSink) -> dict[str, list[dict[str, Any]]]:
    return {name: sink.query(sql) for name, sql in SNAPSHOT_QUERIES.items()}


@pytest.fixture()
def processor_store(tmp_path: Path) -> Iterator[ChdbSink]:
    sink = ChdbSink(tmp_path / "store")
    from processors.store.migrate import migrate

    migrate(sink)
    yield sink
    sink.close()


def drain(kafka: KafkaService, topics: Topics, sink: ChdbSink, until: Any, timeout: float = 90) -> None:
    """Run a real consumer loop in a thread until ``until()`` holds."""
    settings = Settings(kafka=KafkaSettings(bootstrap=kafka.bootstrap), topics=topics,
                                 group_id=f"g-{uuid.uuid4().hex[:8]}", max_batch_seconds=0.3)
    dlq = KafkaPublisher(settings.kafka, topics, source_host="test")  # type: ignore[arg-type]
    loop = build_loop(settings, sink, dlq, ProcessorMetrics())
    t = threading.Thread(target=loop.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "consumer did not catch up"
            time.sleep(0.3)
    finally:
        loop.stop()
        t.join(timeout=30)
        dlq.close()


def example_body(call_id: str) -> bytes:
    return example_bytes(call_id)


def test_kafka_down_gives_503_and_every_202_arrives(kafka: KafkaService, processor_store: ChdbSink) -> None:
    topics = unique_topics(partitions=2)
    create_topics(kafka, topics)
    publisher = KafkaPublisher(KafkaSettings(bootstrap=kafka.bootstrap, ack_timeout_s=3), topics, "test")
    app = build_app(publisher, IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k"))
    accepted: list[str] = []
    server = serve(app)
    client = httpx.Client(base_url=server.__enter__(), timeout=30)

    def post(call_id: str) -> int:
        r = client.post("/v1/call-reports", content=example_body(call_id),
                        headers={"Content-Type": "application/json"})
        if r.status_code == 202:
            accepted.append(call_id)
        elif r.status_code == 503:
            assert int(r.headers["Retry-After"]) >= 1
        return r.status_code

    try:
        assert [post(f"up-{i}") for i in range(10)] == [202] * 10
        kafka.stop()
        down = [post(f"down-{i}") for i in range(5)]
        assert down == [503] * 5, down
        kafka.start()
        create_topics(kafka, topics)  # idempotent: waits until every partition has a leader again
        statuses: list[int] = []
        deadline = time.monotonic() + 60
        i = 0
        while len([s for s in statuses if s == 202]) < 10 and time.monotonic() < deadline:
            statuses.append(post(f"back-{i}"))
            i += 1
        assert statuses.count(202) >= 10, statuses
        assert all(s in (202, 503) for s in statuses)
    finally:
        client.close()
        server.__exit__(None, None, None)
        publisher.close()

    def all_there() -> bool:
        rows = processor_store.query("SELECT call_id FROM calls")
        return set(accepted) <= {r["call_id"] for r in rows}

    drain(kafka, topics, processor_store, all_there)
    assert not any(c.startswith("down-") for c in accepted)


def test_malformed_body_names_the_field_and_lands_in_dead_letters(kafka: KafkaService) -> None:
    topics = unique_topics(partitions=1)
    create_topics(kafka, topics)
    publisher = KafkaPublisher(KafkaSettings(bootstrap=kafka.bootstrap), topics, "test")
    app = build_app(publisher, IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k"))
    bad = b'{"format": "w3c", "call_id": "bad-1", "snapshots": [{"timestamp": "soon", "stats": []}]}'
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            r = client.post("/v1/call-reports", content=bad, headers={"Content-Type": "application/json"})
            r2 = client.post("/v1/call-reports", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["path"].startswith("snapshots[0]")
        assert r2.status_code == 400, r2.text
    finally:
        publisher.close()

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topics.dead_letters, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000, group_id=None)
    raws = []
    for msg in consumer:
        env = orjson.loads(msg.value)
        assert env["schema"] == "dead_letter"
        raws.append(env["payload"])
        if len(raws) == 2:
            break
    consumer.close()
    assert [d["raw"] for d in raws] == [bad.decode(), "{not json"]
    assert raws[0]["path"].startswith("snapshots[0]")
    assert raws[0]["stage"] == "collector"
