"""Hand-made rtcstats (v1 and v3) and webrtc-internals dumps: decompression, timing, events."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.contract import CallReport
from collector.errors import InvalidInput, PayloadTooLarge, UnsupportedFormat
from collector.reports import UploadContext, parse_file, parse_upload

T0 = 1767261600000  # 2026-01-01T10:00:00Z


def lines(*items: list[Any]) -> bytes:
    return b"\n".join(orjson.dumps(i) for i in items) + b"\n"


def parse(body: bytes, **ctx: Any) -> list[CallReport]:
    reports = parse_upload(body, UploadContext(**ctx))
    for r in reports:
        CallReport.model_validate(r.model_dump())
    return reports


# ------------------------------------------------------------------------------------------
# rtcstats v1 (jitsi): delta-compressed getstats where absent ids are deleted
# ------------------------------------------------------------------------------------------

V1 = lines(
    ["connectionInfo", None, {"userAgent": "Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36"}, T0],
    ["create", "PC_0", {"iceServers": [{"urls": "turn:t.example:3478", "username": "u", "credential": "secret"}]}, T0],
    [
        "onicecandidate",
        "PC_0",
        {"candidate": "candidate:1 1 UDP 41885439 198.51.100.1 50000 typ relay raddr 0.0.0.0 rport 0"},
        T0 + 10,
    ],
    ["onicecandidate", "PC_0", None, T0 + 20],
    ["oniceconnectionstatechange", "PC_0", "connected", T0 + 100],
    ["onicecandidateerror", "PC_0", {"url": "stun:s.example:3478", "errorCode": 701, "errorText": "x"}, T0 + 110],
    [
        "getstats",
        "PC_0",
        {
            "T": {"type": "transport", "selectedCandidatePairId": "P", "dtlsState": "connecting", "bytesSent": 100},
            "P": {
                "type": "candidate-pair",
                "localCandidateId": "L",
                "remoteCandidateId": "R",
                "currentRoundTripTime": 0.05,
            },
            "L": {
                "type": "local-candidate",
                "candidateType": "relay",
                "protocol": "udp",
                "port": 50000,
                "priority": 41885439,
            },
            "R": {"type": "remote-candidate", "candidateType": "host", "protocol": "udp", "port": 9},
            "OLD": {"type": "candidate-pair", "localCandidateId": "X", "remoteCandidateId": "R"},
            "timestamp": T0 + 1000,
        },
        T0 + 1000,
    ],
    # Only changed properties; OLD is absent, so it is gone.
    ["getstats", "PC_0", {"T": {"dtlsState": "connected", "bytesSent": 300}, "P": {}, "L": {}, "R": {}}, T0 + 2000],
    ["close", "PC_0", None, T0 + 3000],
)


def test_rtcstats_v1_delta_decompression_and_events() -> None:
    (r,) = parse(V1, call_id_hint="dump7")
    assert r.source_format == "rtcstats" and r.call_id == "dump7:PC_0" and r.peer_connection_id == "PC_0"
    assert r.browser == "Chrome 120.0.0.0"
    assert r.ice_servers[0].urls == ["turn:t.example:3478"]
    assert "secret" not in r.model_dump_json()
    assert [s.rtt_ms for s in r.samples] == pytest.approx([50.0, 50.0])  # carried over by the delta
    assert [s.bytes_sent for s in r.samples] == [100, 200]
    assert [s.dtls_state for s in r.samples] == ["connecting", "connected"]
    assert [(s.kind, s.state) for s in r.states] == [
        ("ice", "connected"),
        ("dtls", "connecting"),
        ("dtls", "connected"),
    ]
    relay = next(c for c in r.candidates if c.id == "L")
    assert (relay.relay_protocol, relay.relay_protocol_source) == ("udp", "priority")
    assert relay.gathered_at == datetime.fromtimestamp((T0 + 10) / 1000, UTC)
    assert [e.error_code for e in r.candidate_errors] == [701]
    assert r.ended_at == datetime.fromtimestamp((T0 + 3000) / 1000, UTC)  # close
    assert r.started_at == datetime.fromtimestamp(T0 / 1000, UTC)


def test_rtcstats_v1_multiple_pcs_and_default_base() -> None:
    body = V1 + lines(["create", "PC_1", {}, T0], ["oniceconnectionstatechange", "PC_1", "failed", T0 + 5])
    reports = parse(body)
    assert [r.peer_connection_id for r in reports] == ["PC_0", "PC_1"]
    base = reports[0].call_id.rsplit(":", 1)[0]
    assert reports[1].call_id == f"{base}:PC_1" and base.startswith("dump-")
    assert parse(body)[0].report_id == reports[0].report_id  # deterministic


def test_rtcstats_v1_bad_line_names_it() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(V1 + b"{not json\n")
    bad_line = len(V1.splitlines()) + 1
    assert exc.value.path == f"line[{bad_line}]"


def test_rtcstats_legacy_goog_pair_without_candidate_ids() -> None:
    """Chrome before the pair named its candidates: they come from googLocal*/googRemote*."""
    pair = {
        "type": "googCandidatePair",
        "googRtt": "20",
        "googActiveConnection": "true",
        "googLocalAddress": "[2001:db8::1]:5000",
        "googLocalCandidateType": "local",
        "googRemoteAddress": "198.51.100.7:6000",
        "googRemoteCandidateType": "stun",
        "googTransportType": "udp",
    }
    body = lines(["create", "PC_0", {}, T0], ["getstats", "PC_0", {"Conn-audio-1-0": pair}, T0 + 1000])
    (r,) = parse(body)
    assert [s.rtt_ms for s in r.samples] == [20.0]
    assert [(p.local_candidate_id, p.remote_candidate_id) for p in r.selected_pairs] == [
        ("Conn-audio-1-0-local", "Conn-audio-1-0-remote")
    ]
    by_id = {c.id: c for c in r.candidates}
    local, remote = by_id["Conn-audio-1-0-local"], by_id["Conn-audio-1-0-remote"]
    assert (local.candidate_type, local.address, local.port, local.protocol) == ("host", "2001:db8::1", 5000, "udp")
    assert (remote.candidate_type, remote.address, remote.port, remote.is_remote) == (
        "srflx",
        "198.51.100.7",
        6000,
        True,
    )


def test_rtcstats_without_peer_connections_rejected() -> None:
    with pytest.raises(UnsupportedFormat, match="no peer connections"):
        parse(lines(["connectionInfo", None, {}, T0]))


# ------------------------------------------------------------------------------------------
# rtcstats v3 (RTCStatsDump): time deltas, compressed methods/types/properties, null = removed
# ------------------------------------------------------------------------------------------


def v3(*items: list[Any]) -> bytes:
    return (
        b"RTCStatsDump\n"
        + orjson.dumps({"fileFormat": 3, "userAgent": "Mozilla/5.0 Firefox/130.0"})
        + b"\n"
        + lines(*items)
    )


def test_rtcstats_v3() -> None:
    body = v3(
        [39, "1", {"iceServers": [{"urls": ["turns:t.example:443"]}], "iceTransportPolicy": "relay"}, T0],
        [24, "1", '"connected"', 100],  # Chrome JSON-encodes states
        [
            "g",
            "1",
            {
                "0": {"type": 5, "125": "2", "123": "connected", "80": 1000},
                "2": {"type": 6, "148": "3", "149": "4", "152": 0.02},
                "3": {"type": 7, "136": "relay", "116": "udp", "139": "tls", "135": 40000},
                "4": {"type": 8, "136": "srflx", "116": "udp"},
                "9": {"type": 6, "148": "3", "149": "4"},
                "t": T0 + 1000,
            },
            900,
        ],
        ["g", "1", {"0": {"80": 1500}, "2": {"152": 0.03}, "9": None, "t": T0 + 2000}, 1000],
        [36, "1", None, 500],
    )
    (r,) = parse(body, call_id_hint="v3")
    assert r.call_id == "v3:1" and r.browser == "Firefox 130.0"
    assert r.ice_transport_policy == "relay" and r.ice_servers[0].urls == ["turns:t.example:443"]
    assert [(s.kind, s.state) for s in r.states] == [("ice", "connected"), ("dtls", "connected")]
    assert r.states[0].at == datetime.fromtimestamp((T0 + 100) / 1000, UTC)
    assert [s.rtt_ms for s in r.samples] == pytest.approx([20.0, 30.0])
    assert [s.bytes_sent for s in r.samples] == [1000, 500]
    assert r.samples[1].start == datetime.fromtimestamp((T0 + 1000) / 1000, UTC)
    relay = next(c for c in r.candidates if c.id == "3")
    assert (relay.relay_protocol, relay.relay_protocol_source, relay.port) == ("tls", "relayProtocol", 40000)
    assert [(p.local_candidate_id, p.remote_candidate_id) for p in r.selected_pairs] == [("3", "4")]


def test_rtcstats_v3_crafted_growth_is_bounded() -> None:
    """Absent ids carry over in v3: a dump adding one object per line must not go quadratic."""
    body = v3(*[["g", "1", {str(i): {"type": 5}}, 1] for i in range(3000)])
    with pytest.raises(PayloadTooLarge):
        parse(body)


# ------------------------------------------------------------------------------------------
# webrtc-internals
# ------------------------------------------------------------------------------------------


def series(values: list[Any], start: float, stats_type: str) -> dict[str, Any]:
    iso = datetime.fromtimestamp(start / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"startTime": iso, "endTime": iso, "statsType": stats_type, "values": orjson.dumps(values).decode()}


def internals_new() -> dict[str, Any]:
    ts = [T0 + 1000.4, T0 + 2000.7, T0 + 3001.1]
    stats = {
        "T01-timestamp": series(ts, ts[0], "transport"),
        "T01-selectedCandidatePairId": series(["CP1", "CP1", "CP2"], ts[0], "transport"),
        "T01-dtlsState": series(["connecting", "connected", "connected"], ts[0], "transport"),
        "T01-bytesSent": series([10, 20, 35], ts[0], "transport"),
        "CP1-timestamp": series(ts, ts[0], "candidate-pair"),
        "CP1-localCandidateId": series(["L1", "L1", "L1"], ts[0], "candidate-pair"),
        "CP1-remoteCandidateId": series(["R1", "R1", "R1"], ts[0], "candidate-pair"),
        "CP1-currentRoundTripTime": series([0.01, 0.02, 0.03], ts[0], "candidate-pair"),
        # A pair that appears later: its series start at the third sample.
        "CP2-timestamp": series(ts[2:], ts[2], "candidate-pair"),
        "CP2-localCandidateId": series(["L2"], ts[2], "candidate-pair"),
        "CP2-remoteCandidateId": series(["R1"], ts[2], "candidate-pair"),
        "CP2-currentRoundTripTime": series([0.04], ts[2], "candidate-pair"),
        "CP2-[bytesSent_in_bits/s]": series([1, 2], ts[2], "candidate-pair"),
        "L2-timestamp": series(ts[2:], ts[2], "local-candidate"),
        "L2-candidateType": series(["relay"], ts[2], "local-candidate"),
        "L2-url": series(["turns:t.example:443?transport=tcp"], ts[2], "local-candidate"),
        "L2-priority": series([1234], ts[2], "local-candidate"),
    }
    log = [
        {"type": "oniceconnectionstatechange", "value": '"checking"', "timestamp": T0 + 10},
        {"type": "oniceconnectionstatechange", "value": '"connected"', "timestamp": T0 + 50},
        {
            "type": "onicecandidate",
            "value": '{"sdpMid":"0","candidate":"candidate:9 1 udp 2122260223 a.local 5000 typ host generation 0"}',
            "timestamp": T0 + 5,
        },
        {
            "type": "onicecandidateerror",
            "value": orjson.dumps(
                {"url": "turn:t.example:3478", "port": 5001, "error_text": "Unauthorized", "error_code": 401}
            ).decode(),
            "timestamp": T0 + 60,
        },
    ]
    pc = {
        "pid": 1,
        "rtcConfiguration": '{"iceServers":[{"urls":["stun:s.example:19302"]}]}',
        "updateLog": log,
        "stats": stats,
    }
    return {
        "PeerConnections": {"1-1": pc},
        "UserAgent": "Mozilla/5.0 Chrome/147.0.0.0 Safari/537.36",
        "getUserMedia": [],
    }


def test_internals_new_chrome() -> None:
    (r,) = parse(orjson.dumps(internals_new()), call_id_hint="dump")
    assert r.source_format == "webrtc-internals" and r.call_id == "dump:1-1" and r.browser == "Chrome 147.0.0.0"
    assert [s.rtt_ms for s in r.samples] == pytest.approx([10.0, 20.0, 40.0])
    assert [s.bytes_sent for s in r.samples] == [10, 10, 15]
    assert r.samples[0].end == datetime.fromtimestamp((T0 + 1000.4) / 1000, UTC)
    assert r.samples[0].start == datetime.fromtimestamp((T0 + 5) / 1000, UTC)  # first event
    assert [(p.pair_id, p.local_candidate_id) for p in r.selected_pairs] == [("CP1", "L1"), ("CP2", "L2")]
    # ICE from the events, DTLS from the transport stats (no DTLS event in internals dumps).
    assert [(s.kind, s.state) for s in r.states] == [
        ("ice", "checking"),
        ("ice", "connected"),
        ("dtls", "connecting"),
        ("dtls", "connected"),
    ]
    l2 = next(c for c in r.candidates if c.id == "L2")
    assert (l2.relay_protocol, l2.relay_protocol_source) == ("tls", "url")
    assert any(c.address == "a.local" for c in r.candidates)
    assert [(e.error_code, e.error_text, e.port) for e in r.candidate_errors] == [(401, "Unauthorized", 5001)]
    assert r.ice_servers[0].urls == ["stun:s.example:19302"]


def test_internals_old_chrome_without_timestamps() -> None:
    start = T0 + 1000
    stats = {
        "RTCTransport_0_1-selectedCandidatePairId": {
            "startTime": start,
            "endTime": start + 2000,
            "values": '["RTCIceCandidatePair_a_b","RTCIceCandidatePair_a_b","RTCIceCandidatePair_a_b"]',
        },
        "RTCTransport_0_1-type": {
            "startTime": start,
            "endTime": start + 2000,
            "values": '["transport","transport","transport"]',
        },
        "RTCTransport_0_1-dtlsState": {
            "startTime": start,
            "endTime": start + 2000,
            "values": '["new","connecting","connecting"]',
        },
        "RTCIceCandidatePair_a_b-type": {
            "startTime": start,
            "endTime": start + 2000,
            "values": '["candidate-pair","candidate-pair","candidate-pair"]',
        },
        "RTCIceCandidatePair_a_b-localCandidateId": {
            "startTime": start,
            "endTime": start + 2000,
            "values": '["a","a","a"]',
        },
        "RTCIceCandidatePair_a_b-remoteCandidateId": {
            "startTime": start,
            "endTime": start + 2000,
            "values": '["b","b","b"]',
        },
        "RTCIceCandidatePair_a_b-currentRoundTripTime": {
            "startTime": start + 1000,
            "endTime": start + 2000,
            "values": "[0.1,0.2]",
        },
    }
    log = [
        {"time": "1/1/2026, 10:00:00 AM", "type": "iceConnectionStateChange", "value": "checking"},
        {"time": "1/1/2026, 10:00:01 AM", "type": "iceConnectionStateChange", "value": "connected"},
        {
            "time": "1/1/2026, 10:00:00 AM",
            "type": "onIceCandidate",
            "value": "sdpMid: 0, sdpMLineIndex: 0, candidate: "
            "candidate:1 1 udp 25108223 203.0.113.9 4000 typ relay raddr 10.0.0.1 rport 5000",
        },
        {
            "time": "1/1/2026, 10:00:00 AM",
            "type": "icecandidateerror",
            "value": "url: stun:x.example:3478, error_code: 701, error_text: unreachable",
        },
    ]
    dump = {
        "PeerConnections": {
            "7-1": {
                "rtcConfiguration": "{ iceServers: [turn:t.example:3478?transport=tcp], iceTransportPolicy: relay }",
                "updateLog": log,
                "stats": stats,
            }
        },
        "UserAgent": "Mozilla/5.0 Chrome/86.0.4240.75 Safari/537.36",
    }
    (r,) = parse(orjson.dumps(dump))
    # 1 s spacing from each series' startTime; the RTT series starts one sample later.
    assert [s.rtt_ms for s in r.samples] == [None, pytest.approx(100.0), pytest.approx(200.0)]
    assert r.samples[1].end == datetime.fromtimestamp((start + 1000) / 1000, UTC)
    assert [(s.kind, s.state) for s in r.states][:2] == [("ice", "checking"), ("ice", "connected")]
    assert r.states[0].at == datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
    relay = next(c for c in r.candidates if c.candidate_type == "relay")
    assert (relay.relay_protocol, relay.relay_protocol_source, relay.related_address) == ("tcp", "priority", "10.0.0.1")
    assert [(e.url, e.error_code) for e in r.candidate_errors] == [("stun:x.example:3478", 701)]
    assert r.ice_servers[0].urls == ["turn:t.example:3478?transport=tcp"] and r.ice_transport_policy == "relay"
    assert [p.local_candidate_id for p in r.selected_pairs] == ["a"]


def test_internals_absurd_start_time_is_bounded() -> None:
    stats = {
        "T-type": {"startTime": T0, "endTime": T0, "values": '["transport"]'},
        "T-dtlsState": {"startTime": 1e15, "endTime": 1e15, "values": '["new"]'},
    }
    (r,) = parse(orjson.dumps({"PeerConnections": {"1-1": {"stats": stats}}}))
    assert len(r.samples) == 1 and r.samples[0].dtls_state is None


def test_internals_empty_dump_rejected() -> None:
    with pytest.raises(UnsupportedFormat, match="no peer connections in this dump"):
        parse(b'{"getUserMedia": [], "PeerConnections": {}, "UserAgent": "x"}')


def test_gzip_and_parse_file(tmp_path: Path) -> None:
    path = tmp_path / "my-capture.txt.gz"
    path.write_bytes(gzip.compress(orjson.dumps(internals_new())))
    (r,) = parse_file(path)
    assert r.call_id == "my-capture.txt:1-1"


def test_unknown_format_and_hints() -> None:
    with pytest.raises(UnsupportedFormat):
        parse(b'{"hello": "world"}')
    with pytest.raises(UnsupportedFormat):
        parse(b"plain text")
    with pytest.raises(UnsupportedFormat, match="unknown format"):
        parse(b"{}", format_hint="twilio")
    with pytest.raises(InvalidInput):
        parse(b"", format_hint="w3c")
    with pytest.raises(InvalidInput):
        parse(b"\x1f\x8bnot really gzip")
