"""Telnyx call reports: units, deltas, segments, retries, privacy, optional blocks, bad paths, and
the logs block (exact state times, SDK warnings and timings, hostile logs)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.contract import CallReport, StateChange, stable_id
from collector.errors import InvalidInput
from collector.reports import UploadContext, parse_upload
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.model import CallFacts

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = b"test-key"


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def interval(i: int, *, sent: int | None = None, rtt_s: float | None = 0.042, **blocks: Any) -> dict[str, Any]:
    start = T0 + timedelta(seconds=i)
    iv: dict[str, Any] = {
        "intervalStartUtc": iso(start),
        "intervalEndUtc": iso(start + timedelta(seconds=1)),
        "audio": {
            "inbound": {"packetsReceived": 50 * (i + 1), "packetsLost": i, "jitterAvg": 3.5},
            "outbound": {"packetsSent": 50 * (i + 1)},
        },
        "connection": {
            "roundTripTimeAvg": rtt_s,
            "packetsSent": 50 * (i + 1) if sent is None else sent,
            "packetsReceived": 50 * (i + 1),
            "bytesSent": 8000 * (i + 1),
            "bytesReceived": 8000 * (i + 1),
        },
    }
    if rtt_s is None:
        del iv["connection"]["roundTripTimeAvg"]
    iv.update(blocks)
    return iv


def payload(n: int = 3, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": {
            "callId": "call-1",
            "callerNumber": "+15551234567",
            "destinationNumber": "+15557654321",
            "direction": "OUTGOING",
            "sdkVersion": "2.27.10",
            "startTimestamp": iso(T0),
            "clientSummary": {"media": {"iceServers": [{"urls": ["turns:turn.example.com:443?transport=tcp"]}]}},
        },
        "stats": [interval(i) for i in range(n)],
    }
    body.update(top)
    return body


def parse(body: dict[str, Any], **ctx: Any) -> CallReport:
    ctx.setdefault("hash_key", KEY)
    reports = parse_upload(orjson.dumps(body), UploadContext(**ctx))
    assert len(reports) == 1
    report = reports[0]
    # model_construct is used on the hot path: the result must still be a valid contract object.
    CallReport.model_validate(report.model_dump())
    return report


def test_units_and_deltas() -> None:
    r = parse(payload())
    assert r.source_format == "telnyx"
    assert r.call_id == "call-1"
    assert [s.rtt_ms for s in r.samples] == pytest.approx([42.0, 42.0, 42.0])
    assert {s.rtt_source for s in r.samples} == {"candidate-pair"}
    assert [s.jitter_ms for s in r.samples] == [3.5, 3.5, 3.5]
    assert [s.packets_sent for s in r.samples] == [50, 50, 50]
    assert [s.bytes_received for s in r.samples] == [8000, 8000, 8000]
    assert [s.packets_lost for s in r.samples] == [0, 1, 1]
    assert r.samples[0].start == T0 and r.samples[0].start.tzinfo is not None
    assert r.samples[0].end == T0 + timedelta(seconds=1)
    assert r.started_at == T0
    assert r.final is True and r.segment is None


def test_direction_case_and_sdk() -> None:
    r = parse(payload())
    assert r.direction == "outbound"
    assert r.sdk_name == "telnyx-webrtc-js"
    assert r.sdk_version == "2.27.10"
    assert r.ice_servers[0].urls == ["turns:turn.example.com:443?transport=tcp"]
    body = payload()
    body["summary"]["direction"] = "inbound"
    assert parse(body).direction == "inbound"


def test_phone_numbers_are_keyed_hashes_never_clear() -> None:
    body = payload()
    r = parse(body)
    expected = hmac.new(KEY, b"+15551234567", hashlib.sha256).hexdigest()
    assert r.caller_hash == expected
    assert r.callee_hash == hmac.new(KEY, b"+15557654321", hashlib.sha256).hexdigest()
    dumped = r.model_dump_json()
    assert "5551234567" not in dumped and "5557654321" not in dumped
    # A different key gives a different hash.
    assert parse(body, hash_key=b"other").caller_hash != expected


def test_user_agent_and_address_come_from_the_request() -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    r = parse(payload(), user_agent=ua, client_address="203.0.113.7")
    assert r.user_agent == ua
    assert r.browser == "Chrome 131.0.0.0"
    assert r.client_address == "203.0.113.7"


def test_retried_upload_gives_the_same_report_id() -> None:
    body = payload(segment=1, flushReason={"type": "buffer-limit"})
    a, b = parse(body), parse(body)
    assert a.report_id == b.report_id
    assert a.report_id == stable_id("call-1", 1, body["stats"][0]["intervalStartUtc"])
    # gzip-compressed retry converges too.
    gz = parse_upload(gzip.compress(orjson.dumps(body)), UploadContext(hash_key=KEY))
    assert gz[0].report_id == a.report_id


def test_segments_differ_and_intermediate_is_not_final() -> None:
    seg0 = parse(payload(segment=0, flushReason={"type": "buffer-limit"}))
    later = payload(segment=1)
    later["stats"] = [interval(i) for i in range(3, 6)]
    seg1 = parse(later)
    assert seg0.final is False and seg0.segment == 0
    assert seg1.final is True and seg1.segment == 1
    assert seg0.report_id != seg1.report_id
    # A later segment does not know the previous cumulative value: no bogus first delta.
    assert seg1.samples[0].packets_sent is None
    assert seg1.samples[1].packets_sent == 50
    # Segment 0 starts at zero.
    assert seg0.samples[0].packets_sent == 50


def test_counter_reset_gives_no_negative_delta() -> None:
    body = payload(n=0)
    body["stats"] = [interval(0, sent=1000), interval(1, sent=1100), interval(2, sent=30), interval(3, sent=80)]
    r = parse(body)
    assert [s.packets_sent for s in r.samples] == [1000, 100, 30, 50]
    assert all(s.packets_sent is None or s.packets_sent >= 0 for s in r.samples)


def test_minimal_old_sdk_payload() -> None:
    """v2.25.19 shape: summary, stats with audio and connection only; no ice/transport."""
    body = {
        "summary": {"callId": "old"},
        "stats": [
            {
                "intervalStartUtc": iso(T0),
                "intervalEndUtc": iso(T0 + timedelta(seconds=5)),
                "audio": {"inbound": {"jitterAvg": 12.0}},
            }
        ],
    }
    r = parse(body)
    assert r.samples[0].jitter_ms == 12.0
    assert r.samples[0].rtt_ms is None and r.candidates == [] and r.selected_pairs == []


def test_summary_only_and_call_id_from_header() -> None:
    r = parse({"stats": []}, call_id_hint="from-header")
    assert r.call_id == "from-header" and r.samples == []
    with pytest.raises(InvalidInput) as exc:
        parse({"stats": []})
    assert exc.value.path == "summary.callId"


def test_ice_transport_states_and_candidates() -> None:
    ice = {
        "id": "CP1",
        "localCandidateId": "L1",
        "remoteCandidateId": "R1",
        "state": "succeeded",
        "local": {
            "id": "L1",
            "address": "198.51.100.20",
            "port": 50000,
            "candidateType": "relay",
            "protocol": "udp",
            "url": "turn:turn.example.com:3478?transport=tcp",
        },
        "remote": {"id": "R1", "address": "192.0.2.9", "port": 20000, "candidateType": "srflx", "protocol": "udp"},
    }
    body = payload(n=0)
    body["stats"] = [
        interval(0, ice=ice, transport={"iceState": "checking", "dtlsState": "new"}),
        interval(1, ice=ice, transport={"iceState": "connected", "dtlsState": "connecting"}),
        interval(
            2, ice=ice, transport={"iceState": "connected", "dtlsState": "connected", "selectedCandidatePairChanges": 1}
        ),
    ]
    r = parse(body)
    assert [(s.kind, s.state) for s in r.states] == [
        ("ice", "checking"),
        ("dtls", "new"),
        ("ice", "connected"),
        ("dtls", "connecting"),
        ("dtls", "connected"),
    ]
    local = next(c for c in r.candidates if c.id == "L1")
    assert local.candidate_type == "relay" and not local.is_remote
    assert (local.relay_protocol, local.relay_protocol_source) == ("tcp", "url")
    assert len(r.selected_pairs) == 1
    assert (r.selected_pairs[0].local_candidate_id, r.selected_pairs[0].remote_candidate_id) == ("L1", "R1")
    assert r.reported_pair_changes == 1
    assert r.samples[2].dtls_state == "connected" and r.samples[0].selected_pair_id == "CP1"


def test_pair_switch_restarts_counters_per_pair() -> None:
    def ice(n: int) -> dict[str, Any]:
        return {
            "id": f"CP{n}",
            "local": {"id": f"L{n}", "candidateType": "host", "protocol": "udp"},
            "remote": {"id": f"R{n}", "candidateType": "host", "protocol": "udp"},
        }

    body = payload(n=0)
    body["stats"] = [
        interval(0, ice=ice(1), sent=500),
        interval(1, ice=ice(1), sent=600),
        interval(2, ice=ice(2), sent=900),
    ]
    r = parse(body)
    assert [s.packets_sent for s in r.samples] == [500, 100, 900]
    assert [p.pair_id for p in r.selected_pairs] == ["CP1", "CP2"]


def test_rtt_falls_back_to_remote_rtcp() -> None:
    body = payload(n=0)
    body["stats"] = [interval(0, rtt_s=None, remoteRtcp={"inbound": {"roundTripTime": 0.12, "jitter": 2.0}})]
    s = parse(body).samples[0]
    assert s.rtt_ms == pytest.approx(120.0) and s.rtt_source == "remote-inbound-rtp"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b["stats"][3].update(intervalStartUtc="not a time"), "stats[3].intervalStartUtc"),
        (lambda b: b["stats"][1]["connection"].update(roundTripTimeAvg="fast"), "stats[1].connection.roundTripTimeAvg"),
        (lambda b: b["stats"][2]["audio"].update(inbound=[1, 2]), "stats[2].audio.inbound"),
        (lambda b: b["stats"][0]["connection"].update(bytesSent=-5), "stats[0].connection.bytesSent"),
        (lambda b: b.update(stats={"a": 1}), "stats"),
        (lambda b: b["stats"].__setitem__(2, "x"), "stats[2]"),
        (lambda b: b.update(segment="two"), "segment"),
        (lambda b: b["summary"].update(startTimestamp=True), "summary.startTimestamp"),
        (lambda b: b.update(summary="x"), "summary"),
        (lambda b: b["summary"].update(callerNumber=5), "summary.callerNumber"),
    ],
)
def test_bad_input_names_the_json_path(mutate: Any, path: str) -> None:
    body = payload(n=4)
    mutate(body)
    with pytest.raises(InvalidInput) as exc:
        parse(body)
    assert exc.value.path == path
    assert path in str(exc.value)


def test_android_variant() -> None:
    body = {
        "call_id": "android-1",
        "summary": {"callId": "android-1", "direction": "INCOMING", "sdkVersion": "3.0.0"},
        "stats": [interval(0, rtt_s=None) | {"connection": {"roundTripTimeAvg": 0.08}}],
        "android_extra": {
            "deviceInfo": {"userAgent": "TelnyxAndroidSDK/3.0.0"},
            "connectionTimeline": [
                {"event": "ICE_CONNECTED", "timestamp": int(T0.timestamp() * 1000)},
                {"event": "DTLS_FAILED: handshake timeout", "timestamp": int(T0.timestamp() * 1000) + 500},
            ],
            "iceCandidates": {
                "selectedPair": {
                    "local": {
                        "candidateType": "relay",
                        "protocol": "udp",
                        "address": "198.51.100.1",
                        "port": 1,
                        "priority": 41885439,
                    },
                    "remote": {"candidateType": "host", "protocol": "udp", "address": "192.0.2.1", "port": 2},
                }
            },
        },
    }
    r = parse(body)
    assert r.sdk_name == "telnyx-android" and r.direction == "inbound"
    assert r.user_agent == "TelnyxAndroidSDK/3.0.0"
    assert [(s.kind, s.state) for s in r.states] == [("ice", "connected"), ("dtls", "failed")]
    assert r.samples[0].rtt_ms == pytest.approx(80.0)
    local = next(c for c in r.candidates if not c.is_remote)
    assert (local.relay_protocol, local.relay_protocol_source) == ("udp", "priority")
    assert len(r.selected_pairs) == 1


def test_large_segment_parses() -> None:
    """A realistic 300-interval segment (about 0.5 MB with all blocks). Its speed is not timed here
    (a unit test's wall clock on a shared machine says little): tests/bench measures ingest."""
    ice = {
        "id": "CP1",
        "localCandidateId": "L1",
        "remoteCandidateId": "R1",
        "local": {
            "id": "L1",
            "candidateType": "relay",
            "protocol": "udp",
            "relayProtocol": "tls",
            "url": "turns:t:443",
        },
        "remote": {"id": "R1", "candidateType": "srflx", "protocol": "udp"},
        "currentRoundTripTime": 0.05,
    }
    stats = []
    for i in range(300):
        iv = interval(i, ice=ice, transport={"iceState": "connected", "dtlsState": "connected"})
        iv["audio"]["inbound"].update({f"extra{k}": k * 1.5 for k in range(25)})
        iv["audio"]["outbound"].update({f"extra{k}": k * 1.5 for k in range(25)})
        iv["mediaPlayout"] = {"totalSamplesCount": i * 48000, "totalPlayoutDelay": 1.5}
        stats.append(iv)
    body = orjson.dumps(payload(n=0, segment=2, flushReason={"type": "buffer-limit"}) | {"stats": stats})
    assert len(body) > 250_000
    reports = parse_upload(body, UploadContext(hash_key=KEY))
    assert len(reports[0].samples) == 300
    assert [s.packets_sent for s in reports[0].samples[1:]] == [50] * 299
    assert [s.rtt_ms for s in reports[0].samples] == pytest.approx([42.0] * 300)


# --------------------------------------------------------------------------------------------
# The logs block (collector/reports/telnyx_logs.py). The fixture has the 2.27.10 SDK's shape and
# log lines (tests/fixtures/telnyx/README.md): a host call whose SDK logged ICE connected at
# 332.1 ms and DTLS (connectionState connected) at 341.6 ms from the call's start.
# --------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telnyx"
SDK_HOST = FIXTURES / "sdk-2.27.10-host-logs.json"


def sdk_host() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(SDK_HOST.read_bytes())
    return doc


def facts(report: CallReport) -> CallFacts:
    return derive_call_facts(report, FactsEnv.default())


def log(at: datetime, message: str, level: str = "debug", **context: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"timestamp": iso(at), "level": level, "message": message}
    if context:
        entry["context"] = context
    return entry


def ice_line(at: datetime, state: str) -> dict[str, Any]:
    return log(at, f"[{iso(at)}] ICE Connection State", args=[state])


def test_logs_time_ice_and_dtls_exactly() -> None:
    body = sdk_host()
    r = parse(body)
    f = facts(r)
    assert f.ice_connect_ms == pytest.approx(332.1, abs=0.01)
    assert f.dtls_connect_ms == pytest.approx(9.5, abs=0.01)
    assert f.ice_gathering_ms == pytest.approx(96.0, abs=0.01)
    assert (f.path_class, f.ice_connected, f.dtls_connected, f.dtls_stall) == ("host", True, True, False)
    assert f.reconnects == 0
    start = datetime(2026, 11, 20, 14, 3, 7, 412000, tzinfo=UTC)
    ms = {(s.kind, s.state): (s.at - start).total_seconds() * 1000 for s in r.states}
    assert ms[("ice", "checking")] == pytest.approx(231.0)  # from the state-change line (ms precision)
    assert ms[("connection", "connected")] == pytest.approx(341.6)  # the timing table wins over its line
    # The same body without its logs: states are only seen at the end of the first 1 s interval.
    del body["logs"]
    late = facts(parse(body))
    assert late.ice_connect_ms == pytest.approx(1343.5, abs=1) and late.dtls_connect_ms == 0.0


def test_sdk_warnings_and_timings_become_notes() -> None:
    r = parse(sdk_host())
    sdk = {n.code: n for n in r.notes if n.source == "sdk"}
    assert sdk["33005"].text == "Only local network candidates available"
    assert sdk["33005"].at == datetime(2026, 11, 20, 14, 3, 7, 508000, tzinfo=UTC)
    assert sdk["31005"].text == "Low local microphone audio detected (logged 2 times)"
    assert sdk["31005"].at == datetime(2026, 11, 20, 14, 3, 10, 758000, tzinfo=UTC)  # the first of the two
    timings = sdk["call-timings"].text
    assert "ICE connection established 332.1 ms" in timings and "Call Start" not in timings
    assert facts(r).sdk_warnings == ["31005", "33005"]
    assert [n for n in r.notes if n.source == "reader"] == []


def test_report_ids_are_kept_for_support() -> None:
    r = parse(sdk_host(), report_id_hint="7f0e-report", voice_sdk_id_hint="vsdk\x00-42")
    ids = {n.code: n.text for n in r.notes if n.code in ("call-report-id", "voice-sdk-id")}
    assert ids == {"call-report-id": "7f0e-report", "voice-sdk-id": "vsdk-42"}  # control characters dropped
    # The report id stays content-derived: the header is shared by every call of an SDK session.
    assert r.report_id == stable_id(r.call_id, None, sdk_host()["stats"][0]["intervalStartUtc"])
    android = parse({"summary": {"callId": "a-1"}, "call_report_id": "crid-9", "voice_sdk_id": "v-9"})
    assert {n.code: n.text for n in android.notes} == {"call-report-id": "crid-9", "voice-sdk-id": "v-9"}


def test_interval_states_fill_in_what_the_logs_did_not_see() -> None:
    """Logs at the SDK's warn level carry no state lines: the intervals' states stay, as before.
    A reconnect the logs saw is timed by them and not counted twice from the intervals."""
    body = payload(n=6)
    for i, iv in enumerate(body["stats"]):
        iv["transport"] = {"iceState": "disconnected" if i == 3 else "connected", "dtlsState": "connected"}
    body["logs"] = [log(T0 + timedelta(milliseconds=10), "[c] Warning 33005: Only local network candidates available",
                        level="warn")]
    r = parse(body)
    assert [(s.kind, s.state, s.at) for s in r.states if s.kind == "ice"] == [
        ("ice", "connected", T0 + timedelta(seconds=1)),
        ("ice", "disconnected", T0 + timedelta(seconds=4)),
        ("ice", "connected", T0 + timedelta(seconds=5)),
    ]
    assert facts(r).reconnects == 1
    body["logs"] = [
        ice_line(T0 + timedelta(milliseconds=300), "connected"),
        ice_line(T0 + timedelta(milliseconds=3200), "disconnected"),
        ice_line(T0 + timedelta(milliseconds=3900), "connected"),
    ]
    r = parse(body)
    assert [(s.state, s.at) for s in r.states if s.kind == "ice"] == [
        ("connected", T0 + timedelta(milliseconds=300)),
        ("disconnected", T0 + timedelta(milliseconds=3200)),
        ("connected", T0 + timedelta(milliseconds=3900)),
    ]
    assert facts(r).reconnects == 1 and facts(r).ice_connect_ms == pytest.approx(300.0)


def test_info_level_logs_time_the_setup_and_the_intervals_keep_a_later_reconnect() -> None:
    """At debugLogLevel "info" the ICE lines (debug) are gone but the timing table is there: it
    dates ICE connected; the intervals still show a disconnection and the return to connected."""
    body = payload(n=6)
    for i, iv in enumerate(body["stats"]):
        iv["transport"] = {"iceState": "disconnected" if i == 3 else "connected", "dtlsState": "connected"}
    body["logs"] = [
        log(T0 + timedelta(milliseconds=350), "[CallTimings][outbound][trickle] ICE connection established"
            "            3.10ms      312.50ms", level="info"),
        log(T0 + timedelta(milliseconds=350), "[CallTimings][outbound][trickle] Secure media channel established"
            " (DTLS)   9.50ms      322.00ms", level="info"),
    ]
    r = parse(body)
    assert [(s.state, s.at) for s in r.states if s.kind == "ice"] == [
        ("connected", T0 + timedelta(milliseconds=312.5)),
        ("disconnected", T0 + timedelta(seconds=4)),
        ("connected", T0 + timedelta(seconds=5)),
    ]
    assert [(s.state, s.at) for s in r.states if s.kind == "dtls"] == [("connected", T0 + timedelta(milliseconds=322))]
    f = facts(r)
    assert f.ice_connect_ms == pytest.approx(312.5) and f.dtls_connect_ms == pytest.approx(9.5) and f.reconnects == 1


def test_hostile_logs_are_bounded_and_never_reject_the_report() -> None:
    body = payload(n=2)
    junk: list[Any] = [
        None, 7, "text", [], {}, {"message": 5}, {"message": "x" * 1_000_000},
        log(T0, "[2026-03-01T12:00:00.000Z] ICE Connection State", args=["exploded"]),  # not a state
        log(T0, "[2026-03-01T12:00:00.000Z] ICE Connection State", args=[{"s": "connected"}]),
        {"timestamp": "9999-01-01T00:00:00Z", "message": "[9999-01-01T00:00:00.000Z] ICE Connection State",
         "context": {"args": ["checking"]}},  # outside the era
        {"timestamp": "yesterday", "message": "[also not a time] ICE Gathering State", "context": {"args": ["new"]}},
        log(T0, "[CallTimings][outbound][trickle] ICE connection established  1.00ms  99999999999.00ms"),
        log(T0, "[c] Warning 33005: " + "y" * 600, level="warn"),  # longer than a warning text can be
        log(T0, "[c] Warning 09999: \x1b]0;owned\x07red\x9b31m", level="warn"),  # terminal escapes
    ]
    junk += [log(T0, f"[c] Warning {10000 + i}: w{i}", level="warn") for i in range(80)]
    junk += [log(T0, "debug noise", args=list(range(50)))] * 12_000
    body["logs"] = junk
    r = parse(body)
    assert r.states == [] and len(r.samples) == 2
    sdk_codes = [n.code for n in r.notes if n.source == "sdk"]
    assert sdk_codes == ["09999"] + [str(10000 + i) for i in range(49)]  # at most 50 distinct warning codes
    assert next(n.text for n in r.notes if n.code == "09999") == "]0;ownedred31m"
    skipped = next(n for n in r.notes if n.code == "logs-skipped")
    total = len(junk)
    assert skipped.source == "reader" and skipped.text.startswith(f"{total - 10_000 + 6} of {total} log entries")


def test_a_flapping_log_is_capped_below_the_reports_state_limit() -> None:
    body = payload(n=2)
    states = ["checking", "connected", "connected", "disconnected"] * 3_000  # repeats are not changes
    body["logs"] = [ice_line(T0 + timedelta(milliseconds=i), s) for i, s in enumerate(states)]
    r = parse(body)
    logged = [s for s in r.states if s.kind == "ice"]
    assert len(logged) == 5_000 and logged[:3] == [
        StateChange(at=T0, kind="ice", state="checking"),
        StateChange(at=T0 + timedelta(milliseconds=1), kind="ice", state="connected"),
        StateChange(at=T0 + timedelta(milliseconds=3), kind="ice", state="disconnected"),
    ]
    skipped = next(n for n in r.notes if n.code == "logs-skipped")
    # 2,000 beyond the 10,000 read, and the changes after the 5,000th
    assert skipped.text.endswith("of 12000 log entries not read (beyond 10000 entries or 5000 state changes, "
                                 "or not an object with a message)")
    assert int(skipped.text.split()[0]) > 2_000


def test_a_report_past_the_state_limit_keeps_the_exact_changes_and_says_so() -> None:
    """12,000 flapping intervals and 5,000 logged changes: 10,000 states kept, not a refusal."""
    body = payload(n=0)
    body["stats"] = [interval(i, transport={"iceState": "connected" if i % 2 else "disconnected"})
                     for i in range(12_000)]
    body["logs"] = [ice_line(T0 + timedelta(milliseconds=300 * i + 150), "connected" if i % 2 else "checking")
                    for i in range(5_000)]
    r = parse(body)
    assert len(r.states) == 10_000 and len(r.samples) == 12_000
    logged = [s for s in r.states if s.at.microsecond]  # the intervals end on whole seconds
    assert len(logged) == 5_000  # every exact change kept
    note = next(n for n in r.notes if n.code == "states-trimmed")
    assert note.source == "reader"
    assert re.fullmatch(r"\d+ state changes beyond the 10000 a report holds were not kept \(the latest ones\)",
                        note.text)
    assert int(note.text.split()[0]) > 5_000


@pytest.mark.parametrize("logs", [{"a": 1}, "lines", 3])
def test_logs_must_be_a_list(logs: Any) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(payload() | {"logs": logs})
    assert exc.value.path == "logs"


def test_connection_bitrate_counts_connection_bytes_only() -> None:
    """Connection bytes (RTP/RTCP headers, SRTP tags, STUN included) are not the audio payload's:
    an old report with audio bytes only has no connection bitrate rather than a smaller one."""
    f = facts(parse(sdk_host()))
    # 5 intervals of 1 s: 5,200 B/s on the pair plus the 1,900 B sent before the first interval.
    assert f.connection_send_kbps == pytest.approx((5 * 5200 + 1900) * 8 / 1000 / 5)
    assert f.connection_recv_kbps == pytest.approx((5 * 5200 + 1850) * 8 / 1000 / 5)
    body = payload(n=3)
    for iv in body["stats"]:
        del iv["connection"]
        iv["audio"]["outbound"]["bytesSent"] = 4000
    r = parse(body)
    assert [s.bytes_sent for s in r.samples] == [None, None, None]
    assert [s.packets_sent for s in r.samples] == [50, 50, 50]  # packets still come from the audio block
    assert facts(r).connection_send_kbps is None


# --------------------------------------------------------------------------------------------
# Real bodies of the unmodified SDK (tests/fixtures/telnyx-sdk/, recorded by the SDK test's
# harness): the connect times are the ones the SDK printed in its own [CallTimings] table.
# --------------------------------------------------------------------------------------------

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "telnyx-sdk"
SDK_TIMING = re.compile(r"^\[CallTimings\]\S* (?P<step>\S.*?) +(?:-|[\d.]+ms) +(?P<ms>[\d.]+)ms$")
SDK_WARNING = re.compile(r"[Ww]arning (\d{5}): ")


def sdk_timings(body: dict[str, Any]) -> dict[str, float]:
    found = (SDK_TIMING.match(e["message"]) for e in body["logs"])
    return {m.group("step"): float(m.group("ms")) for m in found if m}


@pytest.mark.parametrize(
    ("scenario", "path_class"), [("host", "host"), ("relay_udp", "relay-udp"), ("relay_tcp", "relay-tcp")]
)
def test_real_sdk_reports(scenario: str, path_class: str) -> None:
    body: dict[str, Any] = orjson.loads((REAL / f"{scenario}.json").read_bytes())
    headers: dict[str, str] = orjson.loads((REAL / f"{scenario}.headers.json").read_bytes())
    r = parse(body, report_id_hint=headers["x-call-report-id"], voice_sdk_id_hint=headers["x-voice-sdk-id"],
              call_id_hint=headers["x-call-id"])
    f = facts(r)
    logged = sdk_timings(body)
    ice, dtls = logged["ICE connection established"], logged["Secure media channel established (DTLS)"]
    assert f.ice_connect_ms == pytest.approx(ice, abs=0.001)
    assert f.dtls_connect_ms == pytest.approx(dtls - ice, abs=0.001)
    assert f.ice_gathering_ms == pytest.approx(logged["All ICE candidates gathered"], abs=0.001)
    assert (f.path_class, f.dtls_stall, f.reconnects) == (path_class, False, 0)
    warnings = sorted({m.group(1) for e in body["logs"] if (m := SDK_WARNING.search(e["message"]))})
    assert f.sdk_warnings == warnings and ("33005" in warnings) == (scenario == "host")  # only host candidates
    # Each kind's states in the order the SDK logged them, though its two clocks differ by milliseconds.
    for kind, order in (("ice", ["checking", "connected"]), ("connection", ["connecting", "connected"])):
        assert [s.state for s in r.states if s.kind == kind] == order
    ids = {n.code: n.text for n in r.notes if n.code in ("call-report-id", "voice-sdk-id")}
    assert ids == {"call-report-id": headers["x-call-report-id"], "voice-sdk-id": headers["x-voice-sdk-id"]}
    # No SDK log text is kept beyond its warnings and timings (its logs carry TURN credentials).
    assert ("testbed-secret" in (REAL / f"{scenario}.json").read_text()) == (scenario != "host")
    assert "testbed-secret" not in r.model_dump_json()
    # Without the logs, the states are stamped at the end of the first stats interval.
    del body["logs"]
    late = facts(parse(body))
    assert late.ice_connect_ms is not None and late.ice_connect_ms > ice + 500


def test_a_start_at_the_end_of_time_with_a_timing_table_is_refused_not_a_crash() -> None:
    """Found by the fuzz test: the timing table's milliseconds were added to a start near year 9999."""
    body = payload(n=1, logs=[log(T0, "[CallTimings][outbound][trickle] ICE connection established  0ms  1000ms")])
    body["summary"]["startTimestamp"] = "9999-12-31T23:59:59Z"
    with pytest.raises(InvalidInput) as exc:
        parse(body)
    assert exc.value.path == "started_at"
