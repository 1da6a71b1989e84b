"""Crafted upload bodies that try to make the report readers do far more work than parsing their
JSON: one generator per shape, each filling about ``size`` bytes. Used by
tests/bench/bench_hostile_parse.py (CPU time vs an orjson parse of the same bytes) and by
tests/unit/test_reports_hostile.py (the limit each one meets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import orjson

from collector.contract import MAX_SAMPLES
from collector.reports.budget import DUMP_OBJECT_BYTES, DUMP_SAMPLE_BYTES, Budget

T0_MS = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
T0_ISO = datetime.fromtimestamp(T0_MS / 1000, UTC).isoformat()


def _dumps(doc: object) -> bytes:
    return orjson.dumps(doc)


def _series(values: Sequence[object], stats_type: str | None = None) -> dict[str, object]:
    s: dict[str, object] = {"values": orjson.dumps(values).decode(), "startTime": T0_ISO, "endTime": T0_ISO}
    if stats_type is not None:
        s["statsType"] = stats_type
    return s


def wi_many_pcs(size: int) -> bytes:
    """webrtc-internals: the most peer connections a dump may hold, each with as many timed
    objects as the bytes allow."""
    per_pc = size // 64
    n = max(1, per_pc // 16)  # samples per timestamp series: one per poll
    ts = [T0_MS + 1000 * i for i in range(n)]
    pcs = {f"pc-{p}": {"updateLog": [], "stats": {"T-timestamp": _series(ts, "transport")}} for p in range(64)}
    return _dumps({"PeerConnections": pcs})


def wi_many_ids_timed(size: int) -> bytes:
    """webrtc-internals: many stats objects, each with a timestamp series over the same polls, so
    every poll holds every object (polls x objects snapshot entries)."""
    polls = 1000
    ts = orjson.dumps([T0_MS + 1000 * i for i in range(polls)]).decode()
    ids = max(1, size // (len(ts) + 60))
    stats = {f"RTCTransport_{i}-timestamp": {"values": ts, "statsType": "transport"} for i in range(ids)}
    return _dumps({"PeerConnections": {"pc": {"updateLog": [], "stats": stats}}})


def wi_largest_accepted(size: int) -> bytes:
    """webrtc-internals: as many polls and objects as the upload's budget allows
    (collector/reports/budget.py), the rest of the body one long string: accepted, with the most work."""
    budget = Budget.for_body(size, sample_bytes=DUMP_SAMPLE_BYTES, object_bytes=DUMP_OBJECT_BYTES)
    polls = budget.max_samples - 10
    objects = max(1, budget.max_objects // polls - 1)
    ts = orjson.dumps([T0_MS + 1000 * i for i in range(polls)]).decode()
    stats: dict[str, object] = {f"RTCTransport_{i}-timestamp": {"values": ts, "statsType": "transport"}
                                for i in range(objects)}
    used = len(_dumps({"PeerConnections": {"pc": {"updateLog": [], "stats": stats}}}))
    stats["pad-x"] = {"values": orjson.dumps(["x" * max(0, size - used - 100)]).decode()}
    return _dumps({"PeerConnections": {"pc": {"updateLog": [], "stats": stats}}})


def wi_long_untimed(size: int) -> bytes:
    """webrtc-internals (no timestamp series): few objects with very long series, each a property
    of its own, on a 1 s grid from its endTime."""
    n = 20_000
    vals = orjson.dumps([1] * n).decode()
    props = max(1, size // (len(vals) + 80))
    end = datetime.fromtimestamp((T0_MS + 1000 * n) / 1000, UTC).isoformat()
    stats = {
        f"RTCTransport_{i % 8}-p{i}": {"values": vals, "startTime": T0_ISO, "endTime": end, "statsType": "transport"}
        for i in range(props)
    }
    return _dumps({"PeerConnections": {"pc": {"updateLog": [], "stats": stats}}})


def wi_long_untimed_shifted(size: int) -> bytes:
    """As ``wi_long_untimed``, but every series ends a millisecond later than the one before, so no
    two share their sample times."""
    n = 8_000
    vals = orjson.dumps([1] * n).decode()
    props = max(1, size // (len(vals) + 110))
    stats = {}
    for i in range(props):
        end = datetime.fromtimestamp((T0_MS + 1000 * n + i) / 1000, UTC).isoformat()
        stats[f"RTCTransport_{i % 8}-p{i}"] = {"values": vals, "startTime": T0_ISO, "endTime": end,
                                                "statsType": "transport"}
    return _dumps({"PeerConnections": {"pc": {"updateLog": [], "stats": stats}}})


def wi_many_tiny_series(size: int) -> bytes:
    """webrtc-internals (no timestamp series): many objects of one sample each, all at distinct
    times, so the polls x objects product explodes."""
    n = max(1, size // 110)
    stats = {}
    for i in range(n):
        at = datetime.fromtimestamp((T0_MS + 1000 * i) / 1000, UTC).isoformat()
        stats[f"RTCTransport_{i}-x"] = {"values": "[1]", "startTime": at, "endTime": at}
    return _dumps({"PeerConnections": {"pc": {"updateLog": [], "stats": stats}}})


def wi_many_events(size: int) -> bytes:
    """webrtc-internals: an updateLog of state changes and candidates far past what a report holds."""
    line = "candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host generation 0"
    log = []
    for i in range(max(1, size // 120)):
        if i % 2:
            log.append({"type": "oniceconnectionstatechange", "value": "checking", "timestamp": T0_MS + i})
        else:
            log.append({"type": "onicecandidate", "value": line.replace("50000", str(1000 + i % 60000)),
                        "timestamp": T0_MS + i})
    return _dumps({"PeerConnections": {"pc": {"updateLog": log, "stats": {}}}})


def wi_huge_strings(size: int) -> bytes:
    """webrtc-internals: a few huge string values (candidate addresses, ids, state names)."""
    big = "a" * (size // 4)
    stats = {
        "RTCIceCandidate_x-address": _series([big], "local-candidate"),
        "RTCIceCandidate_x-candidateType": _series(["host"], "local-candidate"),
        "RTCTransport_0-iceState": _series([big], "transport"),
        f"RTCTransport_{big[:1000]}-timestamp": _series([T0_MS], "transport"),
    }
    log = [{"type": "oniceconnectionstatechange", "value": big, "timestamp": T0_MS}]
    return _dumps({"PeerConnections": {"pc": {"updateLog": log, "stats": stats}}})


def rtcstats_v1_wide_object(size: int) -> bytes:
    """rtcstats v1: one stats object with very many properties, then tiny deltas that each name it,
    so a naive merge copies the whole object once per line."""
    props = {f"p{i}": i for i in range(max(1, size // 40))}
    lines = [_dumps(["getstats", "pc", {"o": {"type": "transport", **props}}, T0_MS])]
    room = size - len(lines[0])
    for i in range(max(1, room // 40)):
        lines.append(_dumps(["getstats", "pc", {"o": {"x": i}}, T0_MS + i + 1]))
    return b"\n".join(lines)


def rtcstats_v3_many_ids(size: int) -> bytes:
    """rtcstats v3: many stats ids once, then empty deltas: every line is a snapshot of all of them."""
    ids = {f"i{i}": {"type": 5} for i in range(max(1, size // 40))}
    head = [b"RTCStatsDump", b"{}", _dumps(["g", "pc", ids, T0_MS])]
    room = size - sum(len(x) for x in head)
    lines = [_dumps(["g", "pc", {}, 1]) for _ in range(max(1, room // 16))]
    return b"\n".join(head + lines)


def rtcstats_v3_many_pcs(size: int) -> bytes:
    """rtcstats v3: the most peer connections, each with a few hundred objects, then empty deltas
    spread over all of them (a per-peer-connection budget alone would allow 64 times the work)."""
    ids = {f"i{i}": {"type": 5} for i in range(300)}
    head = [b"RTCStatsDump", b"{}"] + [_dumps(["g", f"p{p}", ids, T0_MS if p == 0 else 0]) for p in range(64)]
    room = size - sum(len(x) for x in head)
    lines = [_dumps(["g", f"p{i % 64}", {}, 1]) for i in range(max(1, room // 17))]
    return b"\n".join(head + lines)


def rtcstats_v3_largest_accepted(size: int) -> bytes:
    """rtcstats v3: as many snapshots and objects as the upload's budget allows, each delta line
    empty (every object carried over), the first line padded to the size."""
    budget = Budget.for_body(size)
    polls = min(budget.max_samples, MAX_SAMPLES) - 10
    per = max(1, budget.max_objects // polls - 1)
    ids = {f"T{i}": {"type": 5, "iceState": "connected", "selectedCandidatePairId": "P"} for i in range(per)}
    ids["P"] = {"type": 6, "localCandidateId": "L", "remoteCandidateId": "R", "pad": ""}
    head = [b"RTCStatsDump", b"{}"]
    lines = [_dumps(["g", "pc", {}, 1000]) for _ in range(polls)]
    used = sum(len(x) + 1 for x in head + lines) + len(_dumps(["g", "pc", ids, T0_MS]))
    ids["P"]["pad"] = "x" * max(0, size - used - 16)
    return b"\n".join([*head, _dumps(["g", "pc", ids, T0_MS]), *lines])


def rtcstats_v1_legacy(size: int) -> bytes:
    """rtcstats v1 of Chrome's legacy reports: every line a fresh full set of goog* reports."""
    reports = {}
    for i in range(40):
        reports[f"Conn-{i}"] = {"type": "googCandidatePair", "googActiveConnection": "true",
                                "googChannelId": "Channel-0-1", "bytesSent": "1", "localCandidateId": f"Cand-l{i}",
                                "remoteCandidateId": f"Cand-r{i}"}
        reports[f"ssrc_{i}_recv"] = {"type": "ssrc", "packetsReceived": "1", "transportId": "Channel-0-1"}
    one = len(_dumps(["getstats", "pc", reports, T0_MS]))
    lines = [_dumps(["getstats", "pc", reports, T0_MS + 1000 * i]) for i in range(max(1, size // one))]
    return b"\n".join(lines)


def rtcstats_v1_many_events(size: int) -> bytes:
    """rtcstats v1: state changes and candidates spread over the most peer connections, each one
    under its own limits."""
    line = "candidate:1 1 udp 2122260223 10.0.0.1 {} typ host generation 0"
    lines = []
    for i in range(max(1, size // 90)):
        pc = f"p{i % 64}"
        if i % 2:
            lines.append(_dumps(["oniceconnectionstatechange", pc, "checking", T0_MS + i]))
        else:
            lines.append(_dumps(["onicecandidate", pc, {"candidate": line.format(i % 60000)}, T0_MS + i]))
    return b"\n".join(lines)


def w3c_deep_nesting(size: int) -> bytes:
    """W3C: stats objects whose unread properties nest as deep as the JSON parser allows."""
    deep = "[" * 1000 + "]" * 1000
    obj = '{"id":"o%d","type":"transport","x":' + deep + "}"
    per = max(1, size // 2000 // (len(obj) + 4))
    stats = ",".join(obj % j for j in range(per))
    snaps = ",".join(f'{{"timestamp":{T0_MS + 1000 * i},"stats":[{stats}]}}' for i in range(2000))
    return ('{"call_id":"hostile","snapshots":[' + snaps + "]}").encode()


def w3c_largest_accepted(size: int) -> bytes:
    """W3C: as many snapshots as the upload's budget allows, each with a transport and its pair,
    the rest of the body one long string."""
    polls = min(Budget.for_body(size).max_samples, MAX_SAMPLES) - 10
    stats = [{"id": "T", "type": "transport", "selectedCandidatePairId": "P", "iceState": "connected"},
             {"id": "P", "type": "candidate-pair", "localCandidateId": "L", "remoteCandidateId": "R",
              "currentRoundTripTime": 0.05, "bytesSent": 1000}]
    snaps = [{"timestamp": T0_MS + 1000 * i, "stats": stats} for i in range(polls)]
    used = len(_dumps({"call_id": "hostile", "snapshots": snaps}))
    return _dumps({"call_id": "hostile", "pad": "x" * max(0, size - used - 20), "snapshots": snaps})


def w3c_many_objects(size: int) -> bytes:
    """W3C: the most snapshots a report holds, each with as many small objects as fit."""
    snaps = 20_000
    per = max(1, size // snaps // 26)
    stats = [{"id": f"o{j}", "type": "x"} for j in range(per)]
    doc = {"call_id": "hostile", "snapshots": [{"timestamp": T0_MS + 1000 * i, "stats": stats} for i in range(snaps)]}
    return _dumps(doc)


def w3c_many_events(size: int) -> bytes:
    """W3C: events far past what a report holds (states, candidates, errors)."""
    events = []
    for i in range(max(1, size // 90)):
        at = T0_MS + i
        if i % 3 == 0:
            events.append({"at": at, "type": "iceconnectionstatechange", "state": "checking"})
        elif i % 3 == 1:
            events.append({"at": at, "type": "icecandidate",
                           "candidate": {"candidateType": "host", "address": "10.0.0.1", "port": i % 65535}})
        else:
            events.append({"at": at, "type": "icecandidateerror", "errorCode": 701})
    return _dumps({"call_id": "hostile", "snapshots": [], "events": events})


def telnyx_many_intervals(size: int) -> bytes:
    """Telnyx: the most intervals a segment holds, each with distinct candidates."""
    n = 20_000
    per = max(0, size // n - 200)
    stats = []
    for i in range(n):
        stats.append({
            "intervalStartUtc": T0_MS + 1000 * i, "intervalEndUtc": T0_MS + 1000 * i + 1000,
            "ice": {"id": f"p{i}", "local": {"id": f"l{i}", "candidateType": "host", "address": "a" * per},
                    "remote": {"id": f"r{i}", "candidateType": "relay"}},
            "transport": {"iceState": "connected" if i % 2 else "checking"},
        })
    return _dumps({"summary": {"callId": "hostile"}, "stats": stats})


def telnyx_many_logs(size: int) -> bytes:
    """Telnyx: a logs block of many entries with long messages that almost match."""
    msg = "[" + T0_ISO + "] Connection State changed: new -> connected"
    entries = [{"timestamp": T0_ISO, "level": "info", "message": msg + " " * 900} for _ in range(max(1, size // 1000))]
    return _dumps({"summary": {"callId": "hostile"}, "stats": [], "logs": entries})


def telnyx_android_timeline(size: int) -> bytes:
    """Telnyx Android: a connectionTimeline of alternating states far past what a report holds."""
    events = [{"event": "ICE_CONNECTED" if i % 2 else "ICE_CHECKING", "timestamp": T0_MS + i}
              for i in range(max(1, size // 50))]
    return _dumps({"summary": {"callId": "hostile"}, "stats": [], "android_extra": {"connectionTimeline": events}})


CASES: dict[str, Callable[[int], bytes]] = {
    "webrtc-internals: 64 peer connections": wi_many_pcs,
    "webrtc-internals: many timed objects": wi_many_ids_timed,
    "webrtc-internals: largest accepted dump": wi_largest_accepted,
    "webrtc-internals: long untimed series": wi_long_untimed,
    "webrtc-internals: long untimed series, shifted times": wi_long_untimed_shifted,
    "webrtc-internals: many one-sample series": wi_many_tiny_series,
    "webrtc-internals: many events": wi_many_events,
    "webrtc-internals: huge strings": wi_huge_strings,
    "rtcstats v1: wide object, tiny deltas": rtcstats_v1_wide_object,
    "rtcstats v1: legacy goog* reports": rtcstats_v1_legacy,
    "rtcstats v3: many ids, empty deltas": rtcstats_v3_many_ids,
    "rtcstats v3: 64 peer connections, empty deltas": rtcstats_v3_many_pcs,
    "rtcstats v3: largest accepted dump": rtcstats_v3_largest_accepted,
    "rtcstats v1: many events, 64 peer connections": rtcstats_v1_many_events,
    "w3c: many objects": w3c_many_objects,
    "w3c: largest accepted report": w3c_largest_accepted,
    "w3c: deep nesting": w3c_deep_nesting,
    "w3c: many events": w3c_many_events,
    "telnyx: many intervals": telnyx_many_intervals,
    "telnyx: many log entries": telnyx_many_logs,
    "telnyx android: long connection timeline": telnyx_android_timeline,
}
