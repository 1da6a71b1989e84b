"""parse_upload on arbitrary input returns reports or raises InvalidInput, never anything else.

The tests call the dispatcher underneath parse_upload's last-resort wrapper, so a parser bug
(KeyError, TypeError, ...) fails here instead of being hidden as "malformed input".
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.contract import CallReport
from collector.errors import InvalidInput
from collector.reports import UploadContext, _parse, parse_upload
from tests.json_paths import json_paths

FORMATS = st.sampled_from([None, "telnyx", "w3c", "webrtc-internals", "rtcstats"])
KEYS = st.sampled_from(
    [
        "summary",
        "stats",
        "callId",
        "intervalStartUtc",
        "intervalEndUtc",
        "audio",
        "inbound",
        "outbound",
        "connection",
        "ice",
        "transport",
        "local",
        "remote",
        "candidateType",
        "roundTripTimeAvg",
        "segment",
        "flushReason",
        "packetsSent",
        "bytesReceived",
        "packetsLost",
        "jitterAvg",
        "iceState",
        "dtlsState",
        "call_id",
        "snapshots",
        "timestamp",
        "events",
        "at",
        "type",
        "state",
        "candidate",
        "errorCode",
        "id",
        "selectedCandidatePairId",
        "localCandidateId",
        "remoteCandidateId",
        "currentRoundTripTime",
        "PeerConnections",
        "updateLog",
        "values",
        "startTime",
        "value",
        "android_extra",
        "connectionTimeline",
        "iceServers",
        "urls",
        "relayProtocol",
        "priority",
        "url",
        "port",
        "selected",
        "format",
        "ice_servers",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "transport",
            "candidate-pair",
            "local-candidate",
            "relay",
            "connected",
            "getstats",
            "PC_0",
            "candidate:1 1 udp 2 1.2.3.4 5 typ host",
            "w3c",
            "[1,2]",
            '"x"',
            "{}",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS | st.text(max_size=5), inner, max_size=6),
    max_leaves=25,
)


def dumps(doc: Any) -> bytes:
    """stdlib JSON: it also writes integers beyond 64 bits, which clients may send."""
    return json.dumps(doc).encode()


def check(body: bytes, fmt: str | None) -> None:
    ctx = UploadContext(format_hint=fmt, hash_key=b"k")
    try:
        reports = _parse(body, ctx)
    except InvalidInput:
        return
    for r in reports:
        assert isinstance(r, CallReport)
        CallReport.model_validate(r.model_dump())
    assert parse_upload(body, ctx) == reports


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), FORMATS)
def test_arbitrary_bytes(body: bytes, fmt: str | None) -> None:
    check(body, fmt)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, FORMATS)
def test_arbitrary_json(doc: Any, fmt: str | None) -> None:
    check(dumps(doc), fmt)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(JSON, min_size=1, max_size=5), min_size=1, max_size=6), st.booleans())
def test_arbitrary_ndjson_dumps(rows: list[list[Any]], v3: bool) -> None:
    lines = b"\n".join(dumps(r) for r in rows)
    if v3:
        lines = b"RTCStatsDump\n{}\n" + lines
    check(lines, None)
    check(gzip.compress(lines), "rtcstats")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {"intervalStartUtc": SCALARS, "connection": JSON, "ice": JSON, "transport": JSON, "audio": JSON},
            optional={"intervalEndUtc": SCALARS, "remoteRtcp": JSON},
        ),
        max_size=4,
    ),
    JSON,
)
def test_telnyx_shaped(stats: list[dict[str, Any]], summary: Any) -> None:
    check(dumps({"summary": summary, "stats": stats}), None)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries({"timestamp": SCALARS, "stats": st.lists(st.dictionaries(KEYS, SCALARS), max_size=4)})
    ),
    st.lists(st.dictionaries(KEYS, JSON, max_size=5), max_size=4),
)
def test_w3c_shaped(snapshots: list[Any], events: list[Any]) -> None:
    check(dumps({"call_id": "c", "snapshots": snapshots, "events": events}), None)


def test_a_parser_bug_still_surfaces_as_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.reports import telnyx

    def broken(*args: object) -> list[CallReport]:  # (document, ctx, budget)
        raise KeyError("oops")

    monkeypatch.setattr(telnyx, "parse", broken)
    with pytest.raises(InvalidInput, match="KeyError"):
        parse_upload(b'{"summary": {"callId": "x"}}', UploadContext())


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


def _valid_documents() -> list[Any]:
    from tests.unit import test_reports_dumps, test_reports_telnyx, test_reports_w3c

    return [
        test_reports_w3c.documented_example(),
        test_reports_telnyx.payload(n=3),
        test_reports_dumps.internals_new(),
        [json.loads(line) for line in test_reports_dumps.V1.splitlines()],
    ]


VALID = _valid_documents()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_documents(data: st.DataObject) -> None:
    """Valid documents with one node replaced: reaches type confusion deep inside each parser."""
    index = data.draw(st.integers(0, len(VALID) - 1))
    doc = VALID[index]
    paths = json_paths(doc)
    path = paths[data.draw(st.integers(0, len(paths) - 1))]
    mutated = _replace(doc, path, data.draw(JSON))
    if index == len(VALID) - 1 and isinstance(mutated, list):  # rtcstats v1: one line per item
        body = b"\n".join(dumps(line) for line in mutated)
    else:
        body = dumps(mutated)
    check(body, None)


# Telnyx `logs` block (collector/reports/telnyx_logs.py): the SDK's own line shapes with hostile
# parts (times, states, numbers, codes, sizes), and the SDK-shaped fixture with one node replaced.
LOG_MESSAGES = st.one_of(
    st.text(max_size=40),
    st.builds(lambda t, s: f"[{t}] ICE Connection State{s}", st.text(max_size=30), st.sampled_from(["", " ", "x"])),
    st.builds(lambda t: f"[{t}] ICE Gathering State",
              st.sampled_from(["2026-01-01T00:00:00.000Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "",
                               "1e400"])),
    st.builds(lambda a, b: f"[2026-01-01T00:00:00.000Z] Connection State changed: {a} -> {b}",
              st.text(max_size=12), st.sampled_from(["connected", "failed", "null", "", "CONNECTED"])),
    st.builds(lambda label, d, f: f"[CallTimings][outbound][trickle] {label}  {d}ms  {f}ms",
              st.sampled_from(["ICE connection established", "Secure media channel established (DTLS)",
                               "All ICE candidates gathered", "", " "]),
              st.text("0123456789.-", max_size=12), st.text("0123456789.-e", max_size=14)),
    st.builds(lambda code, text: f"[call] Warning {code}: {text}",
              st.text("0123456789", max_size=7), st.text(max_size=20)),
    st.builds(lambda code: f"CallReportCollector: warning {code}: x", st.text("0123456789", max_size=6)),
)
LOG_ENTRY = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"message": LOG_MESSAGES},
        optional={"timestamp": SCALARS, "level": SCALARS,
                  "context": st.one_of(JSON, st.fixed_dictionaries({"args": JSON}))},
    ),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LOG_ENTRY, max_size=12), st.sampled_from([None, "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", 5]))
def test_telnyx_logs_shaped(logs: list[Any], start: Any) -> None:
    summary: dict[str, Any] = {"callId": "c"}
    if start is not None:
        summary["startTimestamp"] = start
    stats = [{"intervalStartUtc": "2026-01-01T00:00:01Z", "intervalEndUtc": "2026-01-01T00:00:02Z",
              "transport": {"iceState": "connected", "dtlsState": "connected"}}]
    check(dumps({"summary": summary, "stats": stats, "logs": logs}), None)
    check(dumps({"summary": summary, "logs": logs}), "telnyx")


def _telnyx_sdk_fixture() -> Any:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "fixtures" / "telnyx" / "sdk-2.27.10-host-logs.json"
    return json.loads(path.read_text())


TELNYX_SDK = _telnyx_sdk_fixture()
TELNYX_SDK_PATHS = json_paths(TELNYX_SDK)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_telnyx_sdk_report(data: st.DataObject) -> None:
    """The SDK-shaped report (stats and logs) with one node replaced."""
    path = TELNYX_SDK_PATHS[data.draw(st.integers(0, len(TELNYX_SDK_PATHS) - 1))]
    check(dumps(_replace(TELNYX_SDK, path, data.draw(JSON | LOG_ENTRY))), None)
