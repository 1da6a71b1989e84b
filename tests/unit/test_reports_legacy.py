"""Chrome's legacy goog* stats and older webrtc-internals dumps (tests/fixtures/legacy, built from
WebRTC's source; see its README), read into the canonical report and through derive_call_facts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.contract import CallReport, Candidate
from collector.reports import UploadContext, parse_file, parse_upload
from collector.reports.legacy_stats import is_legacy_type
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.model import CallFacts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
T0 = 1_600_000_000_000  # the fixtures' clock (tests/fixtures/legacy/build.py)
RTT_MS = [41.0, 45.0, 43.0, 47.0]
JITTER_MS = [3.0, 5.0, 4.0, 6.0]


def only(name: str) -> CallReport:
    (r,) = parse_file(FIXTURES / name)
    CallReport.model_validate(r.model_dump())
    return r


def facts(r: CallReport) -> CallFacts:
    return derive_call_facts(r, FactsEnv.default())


def candidate(r: CallReport, cid: str) -> Candidate:
    return next(c for c in r.candidates if c.id == cid)


def at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def assert_relay_tcp_call(r: CallReport) -> None:
    """What every fixture's call holds, whichever reading produced it."""
    assert [s.rtt_ms for s in r.samples] == pytest.approx(RTT_MS)
    assert {s.rtt_source for s in r.samples} == {"candidate-pair"}
    assert [s.jitter_ms for s in r.samples] == pytest.approx(JITTER_MS)
    assert [s.packets_lost for s in r.samples] == [0, 2, 3, 0]
    assert [s.packets_received for s in r.samples] == [48, 50, 50, 50]
    assert [s.bytes_sent for s in r.samples] == [6000, 6100, 6050, 6150]
    assert [s.end for s in r.samples] == [at(T0 + 1000 * (i + 1)) for i in range(4)]
    (pair,) = r.selected_pairs
    local, remote = candidate(r, pair.local_candidate_id), candidate(r, pair.remote_candidate_id)
    assert (local.candidate_type, local.is_remote, local.address, local.port) == ("relay", False, "203.0.113.50", 61000)
    assert (local.relay_protocol, local.relay_protocol_source) == ("tcp", "priority")
    assert (remote.candidate_type, remote.is_remote, remote.address) == ("srflx", True, "198.51.100.20")
    assert r.notes == []
    f = facts(r)
    assert (f.path_class, f.relay_protocol, f.rtt_band) == ("relay-tcp", "tcp", "excellent")
    assert f.rtt_median_ms == pytest.approx(44.0)
    assert f.ice_connected and f.dtls_connected and not f.dtls_stall
    assert f.loss_pct == pytest.approx(100 * 5 / (198 + 5))
    assert f.jitter_ms == pytest.approx(4.5)


def test_rtcstats_v1_legacy_only() -> None:
    r = only("rtcstats-v1-chrome70-legacy-relay-tcp")
    assert r.source_format == "rtcstats" and r.browser == "Chrome 70.0.3538.77"
    assert_relay_tcp_call(r)
    assert r.selected_pairs[0].pair_id == "Conn-audio-1-0"
    # The inactive pair's host candidate is kept; the googRtt 3000 of that pair is never read.
    assert candidate(r, "Cand-L2").candidate_type == "host"
    # googComponent has ciphers from the second poll on: DTLS connected there (no DTLS events).
    assert [s.dtls_state for s in r.samples] == [None, "connected", "connected", "connected"]
    assert [(s.kind, s.state, s.at) for s in r.states if s.kind == "dtls"] == [("dtls", "connected", at(T0 + 2000))]
    f = facts(r)
    assert f.ice_connect_ms == pytest.approx(300.0) and f.dtls_connect_ms == pytest.approx(120.0)


def _getstats_lines(body: bytes, keep: Any) -> bytes:
    out = []
    for raw in body.splitlines():
        item = orjson.loads(raw)
        if item[0] == "getstats":
            item[2] = {k: v for k, v in item[2].items() if k == "timestamp" or keep(k, v)}
        out.append(orjson.dumps(item))
    return b"\n".join(out) + b"\n"


def test_legacy_and_standard_of_one_connection_give_the_same_facts() -> None:
    path = FIXTURES / "rtcstats-v1-legacy-and-standard"
    body = path.read_bytes()
    ctx = UploadContext(call_id_hint="both")
    (both,) = parse_upload(body, ctx)
    # Standard wins: the pair and candidate ids are the standard ones.
    assert both.selected_pairs[0].pair_id == "RTCIceCandidatePair_L1_R1"
    assert [s.dtls_state for s in both.samples] == ["connecting", "connected", "connected", "connected"]
    assert_relay_tcp_call(both)

    # The first poll lists every object with its type; later jitsi deltas carry changes only.
    first = next(orjson.loads(raw)[2] for raw in body.splitlines() if raw.startswith(b'["getstats"'))
    legacy_ids = {k for k, v in first.items() if isinstance(v, dict) and is_legacy_type(v.get("type"))}
    assert {"Conn-audio-1-0", "Channel-audio-1", "Cand-L1", "ssrc_1111_recv"} <= legacy_ids
    (legacy,) = parse_upload(_getstats_lines(body, lambda k, v: k in legacy_ids), ctx)
    (standard,) = parse_upload(_getstats_lines(body, lambda k, v: k not in legacy_ids), ctx)
    assert legacy.selected_pairs[0].pair_id == "Conn-audio-1-0"
    assert_relay_tcp_call(legacy)
    assert facts(legacy) == facts(both) == facts(standard)


def test_internals_chrome86_types_from_ids_and_end_aligned_samples() -> None:
    r = only("internals-chrome86-standard.json")
    assert r.source_format == "webrtc-internals" and r.browser == "Chrome 86.0.4240.75"
    assert_relay_tcp_call(r)
    assert [s.dtls_state for s in r.samples] == ["connecting", "connected", "connected", "connected"]
    assert r.selected_pairs[0].pair_id == "RTCIceCandidatePair_L1_R1"
    assert r.ice_servers[0].urls == ["turn:turn.example.net:443?transport=tcp"]
    # Old updateLog: locale times, plain values; states and the relay candidate event are read.
    assert ("ice", "connected") in [(s.kind, s.state) for s in r.states]
    # ... and the onIceCandidate event is the stats' relay candidate (same port and priority).
    assert candidate(r, "RTCIceCandidate_L1").gathered_at == at(T0)
    assert not any(c.id.startswith("sdp-") for c in r.candidates)


def test_internals_chrome70_legacy_series() -> None:
    r = only("internals-chrome70-legacy.json")
    assert_relay_tcp_call(r)
    assert r.selected_pairs[0].pair_id == "Conn-audio-1-0"
    assert [s.dtls_state for s in r.samples] == [None, "connected", "connected", "connected"]
    # Cand-* ids say nothing of the side: the pair naming them does.
    assert candidate(r, "Cand-R1").is_remote and not candidate(r, "Cand-L2").is_remote


def _series(values: list[Any], end_ms: float) -> dict[str, Any]:
    iso = at(end_ms).isoformat().replace("+00:00", "Z")
    return {"startTime": "2020-01-01T00:00:00Z", "endTime": iso, "values": orjson.dumps(values).decode()}


def _internals(stats: dict[str, Any], log: list[dict[str, Any]] | None = None) -> bytes:
    connected = [
        {"time": "9/13/2020, 12:26:40 PM", "type": "iceConnectionStateChange", "value": "connected"},
    ]
    pc = {"updateLog": connected if log is None else log, "stats": stats}
    return orjson.dumps({"PeerConnections": {"1-1": pc}, "UserAgent": "Chrome/80.0.0.0"})


def test_internals_series_aligned_on_their_end() -> None:
    """Without timestamps a series' last value is at its endTime: a pair that went away early and
    one that appeared late land on the right polls, whatever startTime says."""
    end = T0 + 5000
    stats = {
        "RTCTransport_0_1-selectedCandidatePairId": _series(
            ["RTCIceCandidatePair_a_b"] * 3 + ["RTCIceCandidatePair_c_b"] * 2, end
        ),
        "RTCIceCandidatePair_a_b-localCandidateId": _series(["RTCIceCandidate_a"] * 3, end - 2000),
        "RTCIceCandidatePair_a_b-remoteCandidateId": _series(["RTCIceCandidate_b"] * 3, end - 2000),
        "RTCIceCandidatePair_a_b-currentRoundTripTime": _series([0.01, 0.02, 0.03], end - 2000),
        "RTCIceCandidatePair_c_b-localCandidateId": _series(["RTCIceCandidate_c"] * 2, end),
        "RTCIceCandidatePair_c_b-remoteCandidateId": _series(["RTCIceCandidate_b"] * 2, end),
        "RTCIceCandidatePair_c_b-currentRoundTripTime": _series([0.2, 0.3], end),
        "RTCIceCandidate_a-candidateType": _series(["host"] * 5, end),
        "RTCIceCandidate_c-candidateType": _series(["relay"] * 2, end),
        "RTCIceCandidate_c-priority": _series([(2 << 24) | 255] * 2, end),
        "RTCIceCandidate_b-candidateType": _series(["srflx"] * 5, end),
        "RTCIceCandidate_b-isRemote": _series([True] * 5, end),
    }
    (r,) = parse_upload(_internals(stats), UploadContext())
    assert [s.end for s in r.samples] == [at(end - 1000 * k) for k in (4, 3, 2, 1, 0)]
    assert [s.rtt_ms for s in r.samples] == pytest.approx([10.0, 20.0, 30.0, 200.0, 300.0])
    assert [(p.local_candidate_id, p.at) for p in r.selected_pairs] == [
        ("RTCIceCandidate_a", at(end - 4000)),
        ("RTCIceCandidate_c", at(end - 1000)),
    ]
    assert candidate(r, "RTCIceCandidate_b").is_remote and not candidate(r, "RTCIceCandidate_c").is_remote
    assert candidate(r, "RTCIceCandidate_c").relay_protocol == "udp"
    assert facts(r).path_class == "relay-udp"


def test_internals_poll_times_a_few_ms_apart_are_one_poll() -> None:
    """Objects of one getStats answer can end a few ms apart; they are one sample, not two."""
    stats = {
        "RTCTransport_0_1-selectedCandidatePairId": _series(["RTCIceCandidatePair_a_b"] * 2, T0 + 2000),
        "RTCIceCandidatePair_a_b-localCandidateId": _series(["A"] * 2, T0 + 2004),
        "RTCIceCandidatePair_a_b-remoteCandidateId": _series(["B"] * 2, T0 + 2004),
        "RTCIceCandidatePair_a_b-currentRoundTripTime": _series([0.05, 0.06], T0 + 2004),
    }
    (r,) = parse_upload(_internals(stats), UploadContext())
    assert [s.rtt_ms for s in r.samples] == pytest.approx([50.0, 60.0])
    assert [s.selected_pair_id for s in r.samples] == ["RTCIceCandidatePair_a_b"] * 2


@pytest.mark.parametrize(
    ("stats", "why"),
    [
        ({}, "holds no getStats samples"),
        (
            {"RTCTransport_0_1-dtlsState": _series(["connected"], T0 + 1000)},
            "holds a candidate-pair (they hold: transport)",
        ),
        (
            {
                "RTCTransport_0_1-selectedCandidatePairId": _series(["RTCIceCandidatePair_x_y"], T0 + 1000),
                "RTCIceCandidatePair_a_b-localCandidateId": _series(["a"], T0 + 1000),
            },
            "names pair 'RTCIceCandidatePair_x_y' as selected, but the stats hold no such pair",
        ),
        (
            {"RTCIceCandidatePair_a_b-localCandidateId": _series(["a"], T0 + 1000)},
            "list 1 candidate pair(s), but no transport names a selected pair",
        ),
        (
            {"Conn-audio-1-0-googRtt": _series(["20"], T0 + 1000)},
            "list 1 candidate pair(s), but no transport names a selected pair",
        ),
    ],
    ids=["no-stats", "no-pair", "named-absent", "none-selected", "legacy-none-active"],
)
def test_connected_without_selected_pair_says_why(stats: dict[str, Any], why: str) -> None:
    (r,) = parse_upload(_internals(stats), UploadContext())
    assert r.selected_pairs == []
    (note,) = r.notes
    assert (note.source, note.code) == ("reader", "no-selected-pair")
    assert why in note.text and "ice state connected" in note.text
    assert note.at == datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)


def test_no_note_when_the_connection_never_connected() -> None:
    log = [{"time": "9/13/2020, 12:26:40 PM", "type": "iceConnectionStateChange", "value": "failed"}]
    (r,) = parse_upload(_internals({}, log), UploadContext())
    assert r.notes == [] and r.selected_pairs == []


def test_internals_chrome86_with_stats_types() -> None:
    """Chrome ~M87-M116: the same series with ``statsType`` (and still no timestamps)."""
    dump = orjson.loads((FIXTURES / "internals-chrome86-standard.json").read_bytes())
    (pc,) = dump["PeerConnections"].values()
    types = {"RTCTransport": "transport", "RTCIceCandidatePair": "candidate-pair", "RTCInboundRTP": "inbound-rtp"}
    types |= {"RTCRemoteInboundRtp": "remote-inbound-rtp"}
    for key, series in pc["stats"].items():
        prefix = key.split("_", 1)[0]
        if prefix == "RTCIceCandidate":
            is_remote = orjson.loads(pc["stats"][key.rsplit("-", 1)[0] + "-isRemote"]["values"])[0]
            series["statsType"] = "remote-candidate" if is_remote else "local-candidate"
        else:
            series["statsType"] = next(t for p, t in types.items() if prefix.startswith(p))
    (r,) = parse_upload(orjson.dumps(dump), UploadContext(call_id_hint="internals-chrome86-standard"))
    assert_relay_tcp_call(r)
    assert facts(r) == facts(only("internals-chrome86-standard.json"))


def test_rtcstats_v3_with_legacy_reports() -> None:
    """The same legacy call framed as an RTCStatsDump (v3: metadata line, time deltas)."""
    rows = [
        orjson.loads(line) for line in (FIXTURES / "rtcstats-v1-chrome70-legacy-relay-tcp").read_bytes().splitlines()
    ]
    meta = {"fileFormat": 3, "userAgent": rows[0][2]["userAgent"]}
    lines, clock = [b"RTCStatsDump", orjson.dumps(meta)], 0
    for method, pc, value, ts in rows[1:]:
        lines.append(orjson.dumps(["getStats" if method == "getstats" else method, pc, value, ts - clock]))
        clock = ts
    (r,) = parse_upload(b"\n".join(lines), UploadContext(call_id_hint="v3"))
    assert r.source_format == "rtcstats" and r.browser == "Chrome 70.0.3538.77"
    assert_relay_tcp_call(r)
    assert facts(r).path_class == "relay-tcp"


def test_legacy_pair_read_when_the_standard_objects_have_no_pair_or_transport() -> None:
    """A dump whose standard objects are only RTP streams (no candidate-pair, no transport) is
    read from its legacy reports, which have the pair."""
    body = (FIXTURES / "rtcstats-v1-chrome70-legacy-relay-tcp").read_bytes()
    extra = {"RTCOutboundRTPAudioStream_2222": {"type": "outbound-rtp", "kind": "audio", "packetsSent": 1}}
    lines = []
    for raw in body.splitlines():
        item = orjson.loads(raw)
        if item[0] == "getstats":
            item[2] |= extra
        lines.append(orjson.dumps(item))
    (r,) = parse_upload(b"\n".join(lines), UploadContext(call_id_hint="mixed"))
    assert_relay_tcp_call(r)


def _no_connection_events(poll_spacing_ms: int) -> CallReport:
    """The legacy fixture without connection state events, its polls ``poll_spacing_ms`` apart."""
    lines = []
    for raw in (FIXTURES / "rtcstats-v1-chrome70-legacy-relay-tcp").read_bytes().splitlines():
        item = orjson.loads(raw)
        if item[0] == "onconnectionstatechange":
            continue
        if item[0] in ("getstats", "close"):
            item[3] = T0 + poll_spacing_ms * ((item[3] - T0) // 1000)
            if item[0] == "getstats":
                item[2]["timestamp"] = item[3]
        lines.append(orjson.dumps(item))
    (r,) = parse_upload(b"\n".join(lines), UploadContext(call_id_hint="slow"))
    return r


def test_dtls_known_only_from_polls_far_apart_is_noted() -> None:
    """No connection state events (Chrome before M72) and polls 10 s apart: DTLS connected is
    known only at the first poll with a cipher, so the reader says how exact that time is."""
    r = _no_connection_events(10_000)
    (note,) = r.notes
    assert (note.source, note.code, note.at) == ("reader", "coarse-dtls-time", at(T0 + 20_000))
    assert "poll before it: 10.0 s earlier" in note.text and "exact to 10.0 s only" in note.text
    assert facts(r).dtls_connect_ms == pytest.approx(20_000 - 300)
    # Polls one second apart time it well enough: no note.
    fine = _no_connection_events(1000)
    assert fine.notes == [] and facts(fine).dtls_connect_ms == pytest.approx(2000 - 300)


def test_internals_throttled_page_keeps_its_own_poll_spacing() -> None:
    """A webrtc-internals tab throttled in the background polled every 5 s: the series' own
    (endTime - startTime) / (n - 1) spaces the samples; a pair that appeared later lines up."""

    def series(values: list[Any], first_ms: float, last_ms: float) -> dict[str, Any]:
        return {
            "startTime": at(first_ms).isoformat(),
            "endTime": at(last_ms).isoformat(),
            "values": orjson.dumps(values).decode(),
        }

    end = T0 + 20_000
    stats = {
        "RTCTransport_0_1-selectedCandidatePairId": series(["RTCIceCandidatePair_a_b"] * 5, T0, end),
        "RTCIceCandidatePair_a_b-localCandidateId": series(["A"] * 3, end - 10_000, end),
        "RTCIceCandidatePair_a_b-remoteCandidateId": series(["B"] * 3, end - 10_000, end),
        "RTCIceCandidatePair_a_b-currentRoundTripTime": series([0.01, 0.02, 0.03], end - 10_000, end),
    }
    (r,) = parse_upload(_internals(stats), UploadContext())
    assert [s.end for s in r.samples] == [at(T0 + 5000 * k) for k in range(5)]
    assert [s.rtt_ms for s in r.samples] == pytest.approx([None, None, 10.0, 20.0, 30.0])
    assert r.selected_pairs[0].at == at(T0 + 10_000)


def test_old_internals_state_enum_names() -> None:
    """Old webrtc-internals wrote enum names (ICEConnectionStateConnected, ...): read as states."""
    log = [
        {"time": "9/13/2020, 12:26:40 PM", "type": "signalingStateChange", "value": "SignalingStateHaveLocalOffer"},
        {"time": "9/13/2020, 12:26:40 PM", "type": "iceGatheringStateChange", "value": "ICEGatheringStateComplete"},
        {"time": "9/13/2020, 12:26:40 PM", "type": "iceConnectionStateChange", "value": "ICEConnectionStateChecking"},
        {"time": "9/13/2020, 12:26:41 PM", "type": "iceConnectionStateChange", "value": "ICEConnectionStateConnected"},
        {"time": "9/13/2020, 12:26:49 PM", "type": "iceConnectionStateChange", "value": "kICEConnectionStateFailed"},
    ]
    (r,) = parse_upload(_internals({}, log), UploadContext())
    assert [(s.kind, s.state) for s in r.states] == [
        ("signaling", "have-local-offer"),
        ("gathering", "complete"),
        ("ice", "checking"),
        ("ice", "connected"),
        ("ice", "failed"),
    ]
    f = facts(r)
    assert f.ice_connected and f.ice_connect_ms == pytest.approx(1000.0)
    assert [n.code for n in r.notes] == ["no-selected-pair"]
