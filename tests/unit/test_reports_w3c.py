"""The W3C snapshot-series format: the documented example, browser quirks, paths of bad input."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.contract import CallReport
from collector.errors import InvalidInput
from collector.reports import UploadContext, parse_upload

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats" / "w3c.md"
T0 = 1767261600000


def parse(body: dict[str, Any], **ctx: Any) -> CallReport:
    reports = parse_upload(orjson.dumps(body), UploadContext(**ctx))
    assert len(reports) == 1
    CallReport.model_validate(reports[0].model_dump())
    return reports[0]


def documented_example() -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    doc = orjson.loads(blocks[0])
    assert isinstance(doc, dict)
    return doc


def test_documented_example() -> None:
    r = parse(documented_example(), user_agent="Mozilla/5.0 Firefox/128.0", client_address="203.0.113.5")
    assert r.source_format == "w3c" and r.call_id == "c0ffee-0001"
    assert (r.sdk_name, r.sdk_version) == ("acme-voice-js", "4.2.0")
    assert r.browser == "Firefox 128.0" and r.client_address == "203.0.113.5"
    assert [s.urls for s in r.ice_servers] == [
        ["stun:stun.example.net:3478"],
        ["turns:turn.example.net:443?transport=tcp"],
    ]
    assert r.ice_transport_policy == "all"
    assert [s.rtt_ms for s in r.samples] == pytest.approx([31.0, 29.0])
    assert [s.packets_sent for s in r.samples] == [50, 50]
    assert [s.packets_lost for s in r.samples] == [0, 1]
    assert [s.jitter_ms for s in r.samples] == pytest.approx([4.0, 5.0])
    relay = next(c for c in r.candidates if c.id == "Irelay1")
    assert (relay.relay_protocol, relay.relay_protocol_source) == ("tls", "relayProtocol")
    assert relay.gathered_at == datetime.fromtimestamp((T0 + 180) / 1000, UTC)
    assert any(c.candidate_type == "host" for c in r.candidates)  # event-only candidate kept
    assert [(e.url, e.error_code) for e in r.candidate_errors] == [("stun:stun.example.net:3478", 701)]
    assert [(p.local_candidate_id, p.remote_candidate_id) for p in r.selected_pairs] == [("Irelay1", "Iremote1")]
    assert r.reported_pair_changes == 1
    kinds = [(s.kind, s.state) for s in r.states]
    assert ("dtls", "connected") in kinds and ("ice", "connected") in kinds
    assert [s.at for s in r.states] == sorted(s.at for s in r.states)
    assert r.started_at == datetime.fromtimestamp(T0 / 1000, UTC)


def test_same_upload_same_report_id() -> None:
    assert parse(documented_example()).report_id == parse(documented_example()).report_id


def snapshot(ts: int, *objs: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": ts, "stats": list(objs)}


def test_firefox_no_transport_selected_flag_and_rtcp_rtt() -> None:
    pair = {
        "id": "p1",
        "type": "candidate-pair",
        "localCandidateId": "l1",
        "remoteCandidateId": "r1",
        "selected": True,
        "state": "succeeded",
        "bytesSent": 1000,
        "bytesReceived": 900,
    }
    other = {
        "id": "p2",
        "type": "candidate-pair",
        "localCandidateId": "l2",
        "remoteCandidateId": "r1",
        "selected": False,
    }
    local = {
        "id": "l1",
        "type": "local-candidate",
        "candidateType": "relay",
        "protocol": "udp",
        "port": 1,
        "priority": 8331263,
        "relayProtocol": "tls",
    }
    rir = {"id": "ri", "type": "remote-inbound-rtp", "kind": "audio", "roundTripTime": 0.044}
    body = {
        "call_id": "ff",
        "snapshots": [snapshot(T0, pair, other, local, rir), snapshot(T0 + 1000, {**pair, "bytesSent": 1500}, rir)],
    }
    r = parse(body)
    assert [p.pair_id for p in r.selected_pairs] == ["p1"]
    assert [s.rtt_source for s in r.samples] == ["remote-inbound-rtp", "remote-inbound-rtp"]
    assert r.samples[0].rtt_ms == pytest.approx(44.0)
    assert [s.bytes_sent for s in r.samples] == [1000, 500]  # pair counters without a transport
    assert r.states == []


def test_safari_relay_without_relay_protocol_uses_url_then_priority() -> None:
    via_url = {
        "id": "a",
        "type": "local-candidate",
        "candidateType": "relay",
        "protocol": "udp",
        "url": "turn:t.example:3478?transport=tcp",
        "priority": 41885439,
    }
    via_prio = {"id": "b", "type": "local-candidate", "candidateType": "relay", "protocol": "udp", "priority": 25108223}
    r = parse({"call_id": "safari", "snapshots": [snapshot(T0, via_url, via_prio)]})
    got = {c.id: (c.relay_protocol, c.relay_protocol_source) for c in r.candidates}
    assert got == {"a": ("tcp", "url"), "b": ("tcp", "priority")}


def test_states_from_transport_when_no_events() -> None:
    def transport(ice: str, dtls: str) -> dict[str, Any]:
        return {"id": "T", "type": "transport", "iceState": ice, "dtlsState": dtls}

    body = {
        "call_id": "x",
        "events": [{"at": T0, "type": "iceconnectionstatechange", "state": "checking"}],
        "snapshots": [
            snapshot(T0 + 1000, transport("connected", "connecting")),
            snapshot(T0 + 2000, transport("connected", "connecting")),
            snapshot(T0 + 3000, transport("connected", "failed")),
        ],
    }
    r = parse(body)
    # ICE events exist, so ICE comes only from them; DTLS is derived from the transport.
    assert [(s.kind, s.state) for s in r.states] == [("ice", "checking"), ("dtls", "connecting"), ("dtls", "failed")]
    assert [s.dtls_state for s in r.samples] == ["connecting", "connecting", "failed"]


def test_stats_as_map_and_iso_timestamps_and_sdp_candidate() -> None:
    body = {
        "call_id": "m",
        "events": [
            {
                "at": "2026-01-01T10:00:00Z",
                "type": "icecandidate",
                "candidate": {"candidate": "candidate:1 1 udp 2122260223 10.0.0.2 5000 typ host"},
            }
        ],
        "snapshots": [
            {"timestamp": "2026-01-01T10:00:01+00:00", "stats": {"T": {"type": "transport", "iceState": "new"}}}
        ],
    }
    r = parse(body)
    assert r.samples[0].end == datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC)
    assert r.samples[0].start == datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)  # the candidate event
    assert r.candidates[0].address == "10.0.0.2" and r.candidates[0].gathered_at is not None


def test_selected_pair_change_and_counter_reset() -> None:
    def snap(ts: int, pair: str, local: str, sent: int) -> dict[str, Any]:
        return snapshot(
            ts,
            {"id": "T", "type": "transport", "selectedCandidatePairId": pair, "packetsSent": sent},
            {"id": pair, "type": "candidate-pair", "localCandidateId": local, "remoteCandidateId": "R"},
        )

    body = {
        "call_id": "s",
        "snapshots": [snap(T0, "P1", "L1", 100), snap(T0 + 1000, "P1", "L1", 150), snap(T0 + 2000, "P2", "L2", 20)],
    }
    r = parse(body)
    assert [(p.pair_id, p.local_candidate_id) for p in r.selected_pairs] == [("P1", "L1"), ("P2", "L2")]
    assert [s.packets_sent for s in r.samples] == [100, 50, 20]
    assert r.samples[1].start == r.samples[0].end
    # No events before the first snapshot: the first interval is one snapshot spacing long.
    first, second = r.samples[0], r.samples[1]
    assert first.end is not None and second.end is not None
    assert first.end - first.start == second.end - second.start


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"snapshots": []}, "call_id"),
        ({"call_id": "x", "snapshots": {}}, "snapshots"),
        ({"call_id": "x", "snapshots": [{"timestamp": "soon", "stats": []}]}, "snapshots[0].timestamp"),
        (
            {
                "call_id": "x",
                "snapshots": [{"timestamp": T0, "stats": [{"id": "a", "type": "transport"}, {"id": "b"}]}],
            },
            "snapshots[0].stats[1].type",
        ),
        (
            {"call_id": "x", "snapshots": [{"timestamp": T0, "stats": [{"type": "transport"}]}]},
            "snapshots[0].stats[0].id",
        ),
        ({"call_id": "x", "snapshots": [{"timestamp": T0, "stats": 5}]}, "snapshots[0].stats"),
        (
            {"call_id": "x", "snapshots": [], "events": [{"at": T0, "type": "icecandidateerror", "url": "stun:x"}]},
            "events[0].errorCode",
        ),
        ({"call_id": "x", "snapshots": [], "events": [{"type": "dtlsstatechange", "state": "new"}]}, "events[0].at"),
        ({"call_id": "x", "snapshots": [], "events": [{"at": T0, "type": "dtlsstatechange"}]}, "events[0].state"),
        ({"call_id": "x", "snapshots": [], "ice_servers": [{"urls": 3}]}, "ice_servers[0].urls"),
        ({"call_id": "x", "snapshots": [], "ice_transport_policy": "some"}, "ice_transport_policy"),
        (
            {
                "call_id": "x",
                "snapshots": [],
                "events": [{"at": T0, "type": "icecandidate", "candidate": {"candidateType": "weird"}}],
            },
            "events[0].candidate.candidateType",
        ),
    ],
)
def test_bad_input_names_the_path(body: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(body)
    assert exc.value.path == path


def test_unknown_keys_and_events_are_ignored() -> None:
    body = {"call_id": "x", "future": 1, "snapshots": [], "events": [{"at": T0, "type": "somethingnew", "x": 1}]}
    assert parse(body).samples == []


def test_format_hint_forces_w3c() -> None:
    body = orjson.dumps({"call_id": "h", "snapshots": []})
    assert parse_upload(body, UploadContext(format_hint="w3c"))[0].source_format == "w3c"
