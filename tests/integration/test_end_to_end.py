"""The whole data path with real parts: headless Chromium calls through Debian's coturn, their
getStats() series posted to the collector, coturn's log tailed, both through the real Kafka broker
into the processors and the real ClickHouse engine; `relay-usage` then shows them by region."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from collector.contract import CallReport, DeadLetter, Model
from collector.http_app import IngestConfig, build_app
from collector.kafka_publisher import KafkaPublisher
from collector.settings import KafkaSettings, Settings, Topics
from collector.turn.coturn import CoturnParser
from collector.turn.tailer import FileTailer
from collector.wire import decode
from processors.service.assembly import build_loop
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from processors.store.queries import run_named
from tests.http_server import serve
from tests.services import KafkaService
from tests.webrtc_testbed import NS_ADDRESS, CallRun, Scenario, TestbedError, record_call

pytestmark = [pytest.mark.kafka, pytest.mark.chromium, pytest.mark.coturn]

CLIENT_IP = "203.0.113.10"  # the uploads come through a trusted proxy naming this client (Berlin)

INVENTORY = f"""
regions:
  - {{id: eu, name: Europe, lat: 50.11, lon: 8.68}}
  - {{id: us-east, name: US East, lat: 39.04, lon: -77.49}}
servers:
  - id: testbed-turn
    region: eu
    hostnames: ["{NS_ADDRESS}"]
    addresses: ["{NS_ADDRESS}/32"]
    lat: 50.11
    lon: 8.68
  - id: turn-us-east-1
    region: us-east
    hostnames: [turn-us-east.example.net]
    addresses: [198.51.100.0/26]
    lat: 39.04
    lon: -77.49
"""


def write_mmdb(path: Path) -> Path:
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    w.insert_network(IPSet(["203.0.113.0/25"]),
                     {"country": {"iso_code": "DE"}, "location": {"latitude": 52.52, "longitude": 13.40}})
    w.to_db_file(str(path))
    return path


def read_call_reports(kafka: KafkaService, topic: str, count: int) -> list[CallReport]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=15_000)
    reports: list[CallReport] = []
    try:
        for msg in consumer:
            _, payload = decode(msg.value)
            assert isinstance(payload, CallReport)
            reports.append(payload)
            if len(reports) == count:
                break
    finally:
        consumer.close()
    assert len(reports) == count
    return reports


class Recorder:
    """Wraps the real publisher and remembers what was acknowledged."""

    def __init__(self, inner: KafkaPublisher) -> None:
        self.inner = inner
        self.sent: list[Model] = []

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        self.inner.publish(payloads, tenant)
        self.sent.extend(payloads)

    def close(self) -> None:
        self.inner.close()


def test_real_calls_and_turn_sessions_reach_clickhouse_by_region(kafka: KafkaService, tmp_path: Path) -> None:
    runs: list[CallRun] = []
    try:
        for scenario, seconds in ((Scenario.RELAY_UDP, 4), (Scenario.RELAY_TCP, 4), (Scenario.HOST, 3),
                                  (Scenario.WRONG_PASSWORD, 3), (Scenario.TURN_STOPPED, 3)):
            runs.append(record_call(scenario, seconds, call_id=f"e2e-{scenario.value}-{uuid.uuid4().hex[:6]}"))
    except TestbedError as exc:
        pytest.fail(f"the Chromium testbed could not place a call: {exc}", pytrace=False)

    tag = uuid.uuid4().hex[:8]
    topics = Topics(call_reports=f"e{tag}.calls", turn_events=f"e{tag}.turn", probe_results=f"e{tag}.probes",
                    dead_letters=f"e{tag}.dlq", partitions=2)
    for name in (topics.call_reports, topics.turn_events, topics.probe_results, topics.dead_letters):
        kafka.create_topic(name, partitions=2)
    ks = KafkaSettings(bootstrap=kafka.bootstrap)
    publisher = KafkaPublisher(ks, topics, "e2e")

    # 1. Call reports over HTTP, as an SDK behind a load balancer sends them.
    app = build_app(publisher, IngestConfig(api_keys={}, max_body_bytes=8 << 20, hash_key=b"k"))
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        for run in runs:
            r = client.post("/v1/call-reports", content=orjson.dumps(run.report),
                            headers={"Content-Type": "application/json", "X-Forwarded-For": CLIENT_IP})
            assert r.status_code == 202, r.text

    # What arrived on Kafka is the canonical report of each real call.
    on_kafka = {r.call_id: r for r in read_call_reports(kafka, topics.call_reports, len(runs))}
    by_run = {run.scenario: on_kafka[run.report["call_id"]] for run in runs}
    for scenario, protocol in ((Scenario.RELAY_UDP, "udp"), (Scenario.RELAY_TCP, "tcp")):
        rep = by_run[scenario]
        local = {c.id: c for c in rep.candidates if not c.is_remote}[rep.selected_pairs[-1].local_candidate_id]
        assert (local.candidate_type, local.relay_protocol) == ("relay", protocol)
        assert rep.client_address == CLIENT_IP
    for scenario, code in ((Scenario.WRONG_PASSWORD, 401), (Scenario.TURN_STOPPED, 701)):
        rep = by_run[scenario]
        assert [e.error_code for e in rep.candidate_errors] == [code]
        assert not rep.selected_pairs and not rep.candidates
        assert all(st.state == "new" for st in rep.states if st.kind in ("ice", "connection"))

    # 2. coturn's own log lines, tailed from files (one server process per call here).
    recorder = Recorder(publisher)
    turn_lines = 0
    for i, run in enumerate(runs):
        if not run.turn_log:
            continue
        log = tmp_path / f"turn-{i}.log"
        log.write_text(run.turn_log)
        tailer = FileTailer(log, recorder, CoturnParser("testbed-turn", b"k", region="eu"), tmp_path / f"cp-{i}")
        while tailer.poll():
            pass
        tailer.close()
        turn_lines += len(run.turn_log.splitlines())
    events = [p for p in recorder.sent if not isinstance(p, DeadLetter)]
    assert len(events) > 10 and turn_lines > 10

    # 3. The processors, configured with the inventory and a GeoIP database.
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    settings = Settings(kafka=ks, topics=topics, group_id=f"e2e-{tag}", max_batch_seconds=0.3,
                                 inventory=tmp_path / "inventory.yaml", geoip_db=write_mmdb(tmp_path / "geo.mmdb"))
    sink = ChdbSink(tmp_path / "store")
    try:
        migrate(sink)
        loop = build_loop(settings, sink, publisher, ProcessorMetrics())
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        want_calls = {run.report["call_id"] for run in runs}
        try:
            while True:
                calls = {r["call_id"] for r in sink.query("SELECT call_id FROM calls")}
                n_events = sink.query("SELECT count() AS n FROM turn_events")[0]["n"]
                if want_calls <= calls and n_events >= len(events):
                    break
                assert time.monotonic() < deadline, (calls, n_events, len(events))
                time.sleep(0.5)
        finally:
            loop.stop()
            thread.join(timeout=30)

        facts = {r["call_id"]: r for r in sink.query(
            "SELECT call_id, path_class, client_region, turn_server_id, turn_region, relay_distance_km "
            "FROM calls FINAL")}
        by_scenario = {run.scenario: facts[run.report["call_id"]] for run in runs}
        diagnosis = {r["call_id"]: r["diagnosis"] for r in sink.query("SELECT call_id, diagnosis FROM calls FINAL")}
        assert diagnosis[by_run[Scenario.WRONG_PASSWORD].call_id] == "turn_auth_failed"
        assert diagnosis[by_run[Scenario.TURN_STOPPED].call_id] == "turn_unreachable"
        assert by_scenario[Scenario.RELAY_UDP]["path_class"] == "relay-udp"
        assert by_scenario[Scenario.RELAY_TCP]["path_class"] == "relay-tcp"
        assert by_scenario[Scenario.HOST]["path_class"] == "host"
        for scenario in (Scenario.RELAY_UDP, Scenario.RELAY_TCP):
            row = by_scenario[scenario]
            assert (row["client_region"], row["turn_server_id"], row["turn_region"]) == ("eu", "testbed-turn", "eu")
            assert 300 < row["relay_distance_km"] < 500  # Berlin -> Frankfurt

        usage = run_named(sink, "relay-usage", "1d", ("region", "turn-region", "protocol"))
        relayed = {(r["region"], r["turn-region"], r["protocol"]): r["relayed"] for r in usage if r["relayed"]}
        assert relayed == {("eu", "eu", "udp"): 1, ("eu", "eu", "tcp"): 1}

        sessions = sink.query(
            "SELECT session_id, transport, peer_bytes FROM turn_session_summary "
            "WHERE server_id = 'testbed-turn' AND allocated = 1")
        # One allocation per relayed call. A 4-second UDP allocation has no usage or close line
        # yet when coturn stops (coturn logs them on deallocation); the TCP one does.
        assert len(sessions) == 2, sessions
        tcp = [s for s in sessions if s["transport"] == "tcp"]
        assert len(tcp) == 1 and tcp[0]["peer_bytes"] > 0, sessions

        # Each relayed call is matched to the coturn session that served it, by relayed address.
        matches = sink.query("SELECT call_id, session_id, matched_by FROM call_turn_sessions ORDER BY call_id")
        relayed_calls = {by_run[s].call_id for s in (Scenario.RELAY_UDP, Scenario.RELAY_TCP)}
        assert {m["call_id"] for m in matches} == relayed_calls, matches
        assert {m["matched_by"] for m in matches} == {"relayed-address"}
        assert {m["session_id"] for m in matches} <= {s["session_id"] for s in sessions}
    finally:
        sink.close()
        publisher.close()
