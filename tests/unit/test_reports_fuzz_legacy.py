"""Fuzzing the legacy goog* reader and the older webrtc-internals fold like the other readers
(tests/unit/test_reports_fuzz.py): any input gives valid reports or InvalidInput, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.json_paths import json_paths
from tests.unit.test_reports_fuzz import JSON, SCALARS, _replace, check, dumps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
LEGACY_TYPES = st.sampled_from(
    ["googCandidatePair", "googComponent", "localcandidate", "remotecandidate", "ssrc", "VideoBwe", "googTrack"]
)
LEGACY_FIELDS = st.sampled_from(
    [
        "googActiveConnection",
        "googChannelId",
        "googRtt",
        "localCandidateId",
        "remoteCandidateId",
        "googLocalAddress",
        "googLocalCandidateType",
        "googRemoteAddress",
        "googRemoteCandidateType",
        "googTransportType",
        "bytesSent",
        "bytesReceived",
        "packetsSent",
        "packetsReceived",
        "packetsLost",
        "googJitterReceived",
        "mediaType",
        "transportId",
        "dtlsCipher",
        "srtpCipher",
        "selectedCandidatePairId",
        "candidateType",
        "ipAddress",
        "portNumber",
        "transport",
        "priority",
        "networkType",
    ]
)
LEGACY_VALUES = SCALARS | st.sampled_from(
    [
        "true",
        "false",
        "48",
        "-1",
        "1e309",
        "nan",
        "inf",
        "0x10",
        "99999999999999999999999999",
        "1" * 40,
        "Conn-0",
        "Cand-a",
        "Channel-0",
        "relay",
        "relayed",
        "local",
        "stun",
        "[::1]:5000",
        "1.2.3.4:99999",
        ":",
    ]
)
LEGACY_IDS = st.sampled_from(["Conn-0", "Conn-1", "Cand-a", "Cand-b", "Channel-0", "ssrc_1_recv", "ssrc_2_send", "x"])
LEGACY_REPORT = st.fixed_dictionaries({"type": LEGACY_TYPES}).flatmap(
    lambda base: st.dictionaries(LEGACY_FIELDS, LEGACY_VALUES, max_size=8).map(lambda d: {**d, **base})
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(LEGACY_IDS, LEGACY_REPORT | JSON, max_size=6), min_size=1, max_size=4), st.booleans())
def test_legacy_getstats_shaped(polls: list[dict[str, Any]], v3: bool) -> None:
    rows: list[list[Any]] = [["oniceconnectionstatechange", "PC_0", "connected", 1_600_000_000_000]]
    rows += [["getstats", "PC_0", poll, 1_600_000_001_000 + 1000 * i] for i, poll in enumerate(polls)]
    body = b"\n".join(dumps(r) for r in rows)
    check(body, None)
    if v3:
        check(b"RTCStatsDump\n{}\n" + b"\n".join(dumps(["getStats", r[1], r[2], 1000]) for r in rows[1:]), None)


SERIES_IDS = st.sampled_from(
    [
        "RTCTransport_0_1",
        "RTCIceCandidatePair_a_b",
        "RTCIceCandidate_a",
        "RTCIceCandidate_b",
        "RTCInboundRTPAudioStream_1",
        "RTCRemoteInboundRtpAudioStream_2",
        "Conn-audio-1-0",
        "Channel-audio-1",
        "Cand-a",
        "ssrc_1_recv",
        "",
        "-",
    ]
)
SERIES_PROPS = (
    st.sampled_from(
        ["selectedCandidatePairId", "localCandidateId", "remoteCandidateId", "currentRoundTripTime", "isRemote", "type"]
    )
    | LEGACY_FIELDS
)
TIMES = SCALARS | st.sampled_from(["2020-09-13T12:26:40.000Z", "2020-09-13T12:26:40.004Z", 1.6e12, 1e15, -1, 0])
VALUE_LISTS = st.lists(LEGACY_VALUES, max_size=5).map(lambda v: json.dumps(v)) | SCALARS | JSON


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.tuples(SERIES_IDS, SERIES_PROPS).map(lambda t: f"{t[0]}-{t[1]}"),
        st.fixed_dictionaries({"values": VALUE_LISTS}, optional={"startTime": TIMES, "endTime": TIMES}),
        max_size=10,
    ),
    st.lists(st.dictionaries(st.sampled_from(["time", "type", "value"]), SCALARS), max_size=3),
)
def test_older_internals_shaped(stats: dict[str, Any], log: list[Any]) -> None:
    check(dumps({"PeerConnections": {"1-1": {"stats": stats, "updateLog": log}}}), None)


def _documents() -> list[tuple[Any, bool]]:
    """(document, is rtcstats v1 lines) for each legacy fixture."""
    out: list[tuple[Any, bool]] = []
    for path in sorted(FIXTURES.iterdir()):
        if path.suffix == ".json":
            out.append((json.loads(path.read_text()), False))
        elif path.suffix == "" and path.is_file():
            out.append(([json.loads(line) for line in path.read_text().splitlines()], True))
    return out


DOCUMENTS = _documents()
PATHS = [json_paths(doc) for doc, _ in DOCUMENTS]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_legacy_fixtures(data: st.DataObject) -> None:
    """Each legacy fixture with one node replaced by arbitrary JSON or a legacy-looking value."""
    index = data.draw(st.integers(0, len(DOCUMENTS) - 1))
    doc, ndjson = DOCUMENTS[index]
    path = PATHS[index][data.draw(st.integers(0, len(PATHS[index]) - 1))]
    mutated = _replace(doc, path, data.draw(JSON | LEGACY_VALUES | LEGACY_REPORT))
    if ndjson and isinstance(mutated, list):
        check(b"\n".join(dumps(line) for line in mutated), None)
    else:
        check(dumps(mutated), None)


def test_fixtures_are_all_fuzzed() -> None:
    assert len(DOCUMENTS) == 4 and sum(ndjson for _, ndjson in DOCUMENTS) == 2
