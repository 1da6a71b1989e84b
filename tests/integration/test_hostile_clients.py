"""A hostile or careless client against the live HTTP app, in both modes: embedded (chDB written
before the 202) and Kafka (collector -> Kafka -> processor -> chDB). After every case the test looks
at the store: a 202 is queryable in full, a 4xx left nothing but its dead letter, and no case is a 500.

Connection-level limits (trickled headers and bodies, CORS) are in tests/unit/test_http_limits.py.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.contract import DeadLetter
from collector.http_app import IngestConfig, build_app
from collector.kafka_publisher import KafkaPublisher
from collector.settings import KafkaSettings, Settings, Topics
from collector.wire import decode
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.assembly import build_loop
from processors.service.embedded import EmbeddedPublisher
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from processors.store.query_route import query_route
from tests.example_report import example_doc, shift_times
from tests.http_server import serve
from tests.json_paths import json_paths
from tests.services import KafkaService

BODY_LIMIT = 16 * 1024 * 1024
JSON = {"Content-Type": "application/json"}


# ------------------------------------------------------------------------------------------------
# Reports with times around now (the HTTP edge accepts a year back at most)
# ------------------------------------------------------------------------------------------------


def w3c(call_id: str, snapshots: int = 10, start: datetime | None = None) -> dict[str, Any]:
    """The documented example, moved to ``start`` (default: ten minutes ago), cut to ``snapshots``."""
    doc = example_doc(call_id, start)
    doc["snapshots"] = doc["snapshots"][:snapshots]
    return doc


def telnyx(call_id: str, intervals: int = 3, segment: int | None = None) -> dict[str, Any]:
    t0 = datetime.now(UTC) - timedelta(minutes=5)

    def iso(t: datetime) -> str:
        return t.isoformat().replace("+00:00", "Z")

    stats = [{"intervalStartUtc": iso(t0 + timedelta(seconds=i)), "intervalEndUtc": iso(t0 + timedelta(seconds=i + 1)),
              "connection": {"roundTripTimeAvg": 0.05, "packetsSent": 50 * (i + 1), "packetsReceived": 50 * (i + 1)}}
             for i in range(intervals)]
    body: dict[str, Any] = {"summary": {"callId": call_id, "sdkVersion": "2.27.10", "startTimestamp": iso(t0)},
                            "stats": stats}
    if segment is not None:
        body["segment"] = segment
    return body


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------------------------------------------
# The two modes behind one harness
# ------------------------------------------------------------------------------------------------


@dataclass
class Harness:
    mode: str
    client: httpx.Client
    store: ChdbSink
    kafka: KafkaService | None = None
    topics: Topics | None = None
    seen_dead: list[DeadLetter] = field(default_factory=list)

    def post(self, body: bytes | dict[str, Any], path: str = "/v1/call-reports",
             headers: dict[str, str] | None = None) -> httpx.Response:
        content = json.dumps(body).encode() if isinstance(body, dict) else body  # json: integers past 64 bits
        r = self.client.post(path, content=content, headers={**JSON, **(headers or {})})
        assert r.status_code != 500, r.text
        return r

    def settle(self) -> None:
        """Everything accepted so far has reached the store (Kafka: a sentinel behind it arrived)."""
        if self.mode == "embedded":
            return
        sentinel = new_id("sentinel")
        assert self.post(w3c(sentinel, 2)).status_code == 202
        deadline = time.monotonic() + 60
        while not self.rows("calls", sentinel):
            assert time.monotonic() < deadline, "the processor did not catch up"
            time.sleep(0.2)

    def rows(self, table: str, call_id: str) -> int:
        out = self.store.query(f"SELECT count() AS n FROM {table} FINAL WHERE call_id = {{c:String}}",
                               {"c": call_id})
        return int(out[0]["n"])

    def stored(self, call_id: str) -> dict[str, int]:
        return {t: self.rows(t, call_id) for t in ("calls", "call_samples", "candidates", "candidate_errors")}

    def dead_letters(self) -> list[DeadLetter]:
        if self.mode == "embedded":
            rows = self.store.query("SELECT stage, intended, reason, path, raw, raw_truncated, raw_bytes "
                                    "FROM dead_letters")
            return [DeadLetter(**{**r, "path": r["path"] or None}) for r in rows]
        assert self.kafka is not None and self.topics is not None
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.kafka.bootstrap, enable_auto_commit=False,
                                 max_partition_fetch_bytes=4 << 20)
        tp = TopicPartition(self.topics.dead_letters, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        out: list[DeadLetter] = []
        while consumer.position(tp) < end:
            for records in consumer.poll(timeout_ms=1000).values():
                for rec in records:
                    _, payload = decode(rec.value)
                    assert isinstance(payload, DeadLetter)
                    out.append(payload)
        consumer.close()
        return out

    def dead_letter_for(self, marker: str) -> DeadLetter:
        matches = [d for d in self.dead_letters() if marker in d.raw or marker in d.reason]
        assert matches, f"no dead letter mentions {marker!r}"
        return matches[-1]


@pytest.fixture(scope="module", params=["embedded", "kafka"])
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    # Kafka first: chDB admits one store per process, so a store must never stay open after a failed setup.
    kafka: KafkaService | None = request.getfixturevalue("kafka") if request.param == "kafka" else None
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    store = ChdbSink(tmp / "store")
    try:
        migrate(store)
        config = IngestConfig(api_keys={}, max_body_bytes=BODY_LIMIT, hash_key=b"k")
        if kafka is None:
            app = build_app(EmbeddedPublisher(store, RowBuilder(FactsEnv())), config, [query_route(store, {})])
            with serve(app) as base, httpx.Client(base_url=base, timeout=120) as client:
                yield Harness("embedded", client, store)
            return
        yield from _kafka_harness(kafka, store, config, tmp)
    finally:
        store.close()


def _kafka_harness(kafka: KafkaService, store: ChdbSink, config: IngestConfig, tmp: Path) -> Iterator[Harness]:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(call_reports=f"h{tag}.calls", turn_events=f"h{tag}.turn", probe_results=f"h{tag}.probes",
                    dead_letters=f"h{tag}.dlq", partitions=1)
    for name in (topics.call_reports, topics.turn_events, topics.probe_results, topics.dead_letters):
        kafka.create_topic(name, partitions=1)
    ks = KafkaSettings(bootstrap=kafka.bootstrap, max_message_bytes=4_000_000)
    publisher = KafkaPublisher(ks, topics, "hostile")
    settings = Settings(kafka=ks, topics=topics, group_id=f"h-{tag}", max_batch_seconds=0.2, data_dir=tmp)
    loop = build_loop(settings, store, publisher, ProcessorMetrics(), ("call_reports",))
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    app = build_app(publisher, config, [query_route(store, {})])
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=120) as client:
            yield Harness("kafka", client, store, kafka, topics)
    finally:
        loop.stop()
        thread.join(timeout=30)
        publisher.close()


def rss_peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/self/status")


def reset_rss_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def assert_nothing_stored(h: Harness, call_id: str) -> None:
    h.settle()
    assert h.stored(call_id) == {"calls": 0, "call_samples": 0, "candidates": 0, "candidate_errors": 0}


# ------------------------------------------------------------------------------------------------
# 1. Memory: one decompression, within the body limit
# ------------------------------------------------------------------------------------------------


def test_1_gzip_inside_gzip_costs_no_memory(harness: Harness) -> None:
    inner = gzip.compress(b"\0" * (512 * 1024 * 1024), compresslevel=9)
    bomb = gzip.compress(inner, compresslevel=9)
    assert len(bomb) < 8_000
    reset_rss_peak()
    before = rss_peak_kib()
    r = harness.post(bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip inside gzip" in r.json()["error"]
    flat = harness.post(inner, headers={"Content-Encoding": "gzip"})  # 512 MiB expanded, limit 16 MiB
    assert flat.status_code == 413
    grown_mib = (rss_peak_kib() - before) / 1024
    assert grown_mib < 4 * BODY_LIMIT / 2**20, f"peak RSS grew by {grown_mib:.0f} MiB"
    harness.settle()
    assert harness.dead_letter_for("gzip inside gzip").raw_bytes == len(bomb)  # the body as received


# ------------------------------------------------------------------------------------------------
# 2. No 500 and no partial write
# ------------------------------------------------------------------------------------------------


def test_2_values_the_columns_cannot_hold_are_422_with_nothing_written(harness: Harness) -> None:
    huge = new_id("huge-counter")
    doc = w3c(huge)
    doc["snapshots"][3]["stats"][4]["packetsReceived"] = 2**64 + 5
    r = harness.post(doc)
    assert r.status_code == 422 and r.json()["path"].endswith("packets_received")
    assert_nothing_stored(harness, huge)

    seg = new_id("segment")
    r = harness.post(telnyx(seg, segment=2**64), path="/call_report", headers={"x-call-id": seg})
    assert r.status_code == 422 and r.json()["path"] == "segment"
    assert_nothing_stored(harness, seg)

    spread = new_id("spread")
    doc = w3c(spread, 6, start=datetime.now(UTC) - timedelta(days=20))
    for i, snap in enumerate(doc["snapshots"]):
        doc["snapshots"][i] = shift_times(snap, i * 3 * 86_400_000)  # one snapshot every three days
    r = harness.post(doc)
    assert r.status_code == 422 and "spans" in r.json()["error"]
    assert_nothing_stored(harness, spread)
    assert harness.dead_letter_for(spread).stage == "collector"


# ------------------------------------------------------------------------------------------------
# 3. Convergence: retries, fuller and poorer reports, another format, an empty body
# ------------------------------------------------------------------------------------------------


def test_3_fuller_wins_poorer_never_replaces_other_formats_do_not_clobber(harness: Harness) -> None:
    call = new_id("converge")
    start = datetime.now(UTC) - timedelta(minutes=10)
    assert harness.post(w3c(call, 4, start)).status_code == 202
    assert harness.post(w3c(call, 4, start)).status_code == 202  # an identical retry
    assert harness.post(w3c(call, 10, start)).status_code == 202  # fuller: same call, same first interval
    assert harness.post(w3c(call, 2, start)).status_code == 202  # poorer, late
    harness.settle()
    assert harness.stored(call)["calls"] == 1 and harness.stored(call)["call_samples"] == 10
    [row] = harness.store.query("SELECT richness, source_format, rtt_samples FROM calls FINAL "
                                "WHERE call_id = {c:String}", {"c": call})
    assert row["source_format"] == "w3c" and row["rtt_samples"] == 10

    other = harness.post(telnyx(call), path="/call_report", headers={"x-call-id": call})
    assert other.status_code == (409 if harness.mode == "embedded" else 202)
    empty = harness.post(b"{}", path="/call_report", headers={"x-call-id": call})
    assert empty.status_code == 422
    harness.settle()
    [after] = harness.store.query("SELECT richness, source_format, rtt_samples FROM calls FINAL "
                                  "WHERE call_id = {c:String}", {"c": call})
    assert after == row
    assert "is stored from w3c" in harness.dead_letter_for(f"call {call!r}").reason


# ------------------------------------------------------------------------------------------------
# 4. Acknowledged means queryable: ranges and times
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["1970", "9999", "2161", "rtt-1e300", "segment-2^32", "packets-2^40"])
def test_4_out_of_range_values_are_422_naming_the_field(harness: Harness, case: str) -> None:
    call = new_id(case)
    doc = w3c(call)
    if case in ("1970", "9999", "2161"):
        year_ms = {"1970": 5_000, "9999": 253_370_764_800_000, "2161": 6_000_000_000_000}[case]
        doc["snapshots"][0]["timestamp"] = year_ms
        r = harness.post(doc)
    elif case == "rtt-1e300":
        doc["snapshots"][2]["stats"][4]["currentRoundTripTime"] = 1e300
        r = harness.post(doc)
    elif case == "segment-2^32":
        r = harness.post(telnyx(call, segment=2**32), path="/call_report", headers={"x-call-id": call})
    else:
        doc["snapshots"][5]["stats"][4]["packetsReceived"] = 2**40
        r = harness.post(doc)
    assert r.status_code == 422, r.text
    assert r.json().get("path"), r.json()
    assert_nothing_stored(harness, call)


def test_4_epoch_seconds_are_taken_as_seconds(harness: Harness) -> None:
    call = new_id("seconds")
    doc = w3c(call)
    doc = shift_times(doc, 0)
    for snap in doc["snapshots"]:
        snap["timestamp"] = snap["timestamp"] / 1000.0
        for stat in snap["stats"]:
            stat["timestamp"] = stat["timestamp"] / 1000.0
    assert harness.post(doc).status_code == 202
    harness.settle()
    [row] = harness.store.query("SELECT toYear(event_time) AS y FROM calls FINAL WHERE call_id = {c:String}",
                                {"c": call})
    assert row["y"] == datetime.now(UTC).year or row["y"] == datetime.now(UTC).year - 1
    assert harness.stored(call)["call_samples"] == 10


# ------------------------------------------------------------------------------------------------
# 5. Amplification: work bounded by the limits, not by the input's shape
# ------------------------------------------------------------------------------------------------


def test_5_many_peer_connections_or_snapshots_are_413_before_any_work(harness: Harness) -> None:
    dump = {"getUserMedia": [], "PeerConnections": {f"1-{i}": {"stats": {}, "updateLog": []} for i in range(40_000)}}
    t0 = time.monotonic()
    r = harness.post(dump)
    assert r.status_code == 413 and r.json()["path"] == "PeerConnections"
    call = new_id("tiny-snapshots")
    doc = w3c(call, 1)
    doc["snapshots"] = [{"timestamp": doc["snapshots"][0]["timestamp"] + i, "stats": []} for i in range(100_000)]
    r = harness.post(doc)
    assert r.status_code == 413 and r.json()["path"] == "snapshots"
    assert time.monotonic() - t0 < 30  # generous: the point is no 14 s per request
    assert_nothing_stored(harness, call)


# ------------------------------------------------------------------------------------------------
# 6. Dead letters are bounded
# ------------------------------------------------------------------------------------------------


def test_6_a_large_rejected_body_is_kept_truncated_and_counted(harness: Harness) -> None:
    marker = new_id("big-junk")
    junk = (marker + " ").encode() + b"x" * 3_000_000
    r = harness.post(junk)
    assert r.status_code in (400, 422)
    harness.settle()
    dl = harness.dead_letter_for(marker)
    assert dl.raw_truncated and len(dl.raw.encode()) <= 64 * 1024 and dl.raw_bytes == len(junk)


# ------------------------------------------------------------------------------------------------
# 7. Text without limits
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["10MiB", "nul", "crlf", "blank", "sdk-version"])
def test_7_identifiers_and_labels_are_bounded_and_printable(harness: Harness, case: str) -> None:
    call = new_id(case)
    doc = w3c(call)
    if case == "10MiB":
        doc["call_id"] = call + "x" * (10 * 1024 * 1024)
    elif case == "nul":
        doc["call_id"] = call + "\0"
    elif case == "crlf":
        doc["call_id"] = call + "\r\nX-Injected: 1"
    elif case == "blank":
        doc["call_id"] = "   "
    else:
        doc["sdk"] = {"name": "x", "version": "9" * (10 * 1024 * 1024)}
    r = harness.post(doc)
    assert r.status_code == 422, r.text[:300]
    assert r.json()["path"] in ("call_id", "sdk_version")
    assert_nothing_stored(harness, call)


def test_7_a_huge_or_odd_tenant_header_is_refused(harness: Harness) -> None:
    call = new_id("tenant")
    for tenant in ("t" * 60_000, "a b", "../etc"):
        r = harness.post(w3c(call), headers={"X-Icewatch-App": tenant})
        assert r.status_code in (400, 431), r.status_code
    assert_nothing_stored(harness, call)


# ------------------------------------------------------------------------------------------------
# 8. The query route
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"name": "relay-usage", "since": "99999999999999w"},
    {"name": "relay-usage", "since": "9" * 5000 + "d"},
    {"name": "relay-usage", "since": "5000w"},
    {"name": "relay-usage", "by": ",".join(["region"] * 3000)},
    {"name": "relay-usage", "by": "region,region"},
    {"name": "x" * 10_000},
    {"name": "relay-usage", "tenant": "a" * 200},
])
def test_8_bad_query_parameters_are_400_naming_them(harness: Harness, params: dict[str, str]) -> None:
    r = harness.client.get("/v1/query", params=params)
    assert r.status_code == 400, r.text[:300]
    assert r.json()["path"] in ("since", "by", "name", "tenant") and len(r.text) < 2000


# ------------------------------------------------------------------------------------------------
# Any mutation of a valid report: 202 and stored in full, or 4xx and nothing stored (embedded)
# ------------------------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=30))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    """Replace the value at ``path``; nothing when an earlier mutation replaced a parent."""
    try:
        for part in path[:-1]:
            doc = doc[part]
        doc[path[-1]] = value
    except (TypeError, KeyError, IndexError):
        pass


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_mutation_is_stored_whole_or_not_at_all(data: st.DataObject, harness: Harness) -> None:
    h = harness
    call = new_id("mutant")
    doc = w3c(call, 4)
    paths = [p for p in json_paths(doc) if p and p[0] != "call_id"]
    for _ in range(data.draw(st.integers(1, 3))):
        _set(doc, data.draw(st.sampled_from(paths)), data.draw(SCALARS))
    r = h.post(doc)
    h.settle()
    stored = h.stored(call)
    if r.status_code == 202:
        assert stored["calls"] == 1, r.text
    else:
        assert 400 <= r.status_code < 500, r.text
        assert stored == {"calls": 0, "call_samples": 0, "candidates": 0, "candidate_errors": 0}


# ------------------------------------------------------------------------------------------------
# 10. Tenants: with keys, the key decides what is written and read
# ------------------------------------------------------------------------------------------------


def test_10_with_api_keys_a_key_writes_and_reads_its_own_tenant_only(harness: Harness) -> None:
    """An app with keys over the harness's store (chDB admits one store per process)."""
    keys = {"app-a": "key-of-app-a-0123456", "app-b": "key-of-app-b-0123456"}
    store = harness.store
    config = IngestConfig(api_keys=keys, max_body_bytes=BODY_LIMIT, hash_key=b"k")
    app = build_app(EmbeddedPublisher(store, RowBuilder(FactsEnv())), config, [query_route(store, keys)])
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        call = new_id("tenant-a")
        body = json.dumps(w3c(call)).encode()
        as_a = {**JSON, "Authorization": f"Bearer {keys['app-a']}", "X-Icewatch-App": "app-b"}
        assert client.post("/v1/call-reports", content=body, headers=as_a).status_code == 202
        [row] = store.query("SELECT tenant FROM calls FINAL WHERE call_id = {c:String}", {"c": call})
        assert row["tenant"] == "app-a"  # the key decides, not the header

        def query(key: str | None, **params: str) -> httpx.Response:
            headers = {"X-API-Key": key} if key else {}
            return client.get("/v1/query", params={"name": "relay-usage", "since": "2d", **params},
                              headers=headers)

        assert query(None).status_code == 401
        assert len(query(keys["app-a"]).json()["rows"]) == 1
        assert query(keys["app-b"]).json()["rows"] == []
        refused = query(keys["app-b"], tenant="app-a")
        assert refused.status_code == 403 and refused.json()["path"] == "tenant"
