"""Telnyx WebRTC SDK call reports: ``{summary, stats[], logs?, segment?, flushReason?}``.

Every block is optional by SDK version (``ice`` since 2.25.23, ``transport`` since 2.25.24,
ids/URLs/relayProtocol since 2.27.2). Units: RTT in seconds (-> ms), jitter already in ms;
packet/byte counters are cumulative (-> per-interval deltas, guarded against resets). There is
no user agent or client address in the body: both come from the request (``UploadContext``).
Phone numbers are replaced by keyed hashes. ``report_id`` is
``stable_id(call_id, segment, first intervalStartUtc)`` so retried uploads of a segment give the
same id; the SDK's ``x-call-report-id`` (one per SDK session, shared by its calls) and
``x-voice-sdk-id`` headers (or the Android body's ``call_report_id``/``voice_sdk_id``) are kept as
notes so support can find a report by the ids Telnyx quotes.

State changes: the ``logs`` block (collector/reports/telnyx_logs.py) times them exactly (the
SDK's timing table, then its state-change log lines); an interval's ``transport`` states are
stamped at the interval's end and only fill in what the logs did not see. The SDK's warnings
(e.g. 33005 only host candidates) become notes (``source="sdk"``, the warning code).

Byte counters come from the ``connection`` block only (the selected candidate pair: every packet
on the ICE transport, RTP and RTCP headers, SRTP tags and STUN included), never from the
``audio`` block (RTP payload bytes), so that a call's connection bitrate means the same whatever
the SDK version sent. The SDK's own ``audio.*.bitrateAvg`` (payload bitrate) is not read.

The Android SDK variant (``android_extra``, snake-case top-level ids) is read too: its
``connectionTimeline`` gives states and ``iceCandidates.selectedPair`` the pair. Its RTT unit was
never verified; values above 10 are taken as milliseconds, smaller ones as seconds.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

from collector.contract import (
    MAX_CANDIDATES,
    MAX_SAMPLES,
    MAX_STATES,
    CallReport,
    Candidate,
    IceServer,
    ReportNote,
    RttSource,
    Sample,
    SelectedPair,
    StateChange,
    stable_id,
)
from collector.errors import InvalidInput, PayloadTooLarge
from collector.reports import candidates as cand
from collector.reports._events import ice_server_urls
from collector.reports._values import (
    DeltaTracker,
    browser_from_user_agent,
    count,
    integer,
    keyed_hash,
    num,
    optional_text,
    optional_time,
    require_list,
    require_obj,
    require_text,
    require_time,
    text,
    when,
)
from collector.reports.budget import Budget
from collector.reports.context import UploadContext
from collector.reports.stats_series import state_change
from collector.reports.telnyx_logs import merge_states, notes, read_logs, timed_states

_DIRECTIONS: dict[str, Literal["inbound", "outbound"]] = {
    "inbound": "inbound",
    "incoming": "inbound",
    "outbound": "outbound",
    "outgoing": "outbound",
}
# Android connectionTimeline events, e.g. "ICE_CONNECTED", "DTLS_FAILED: <reason>".
_TIMELINE = re.compile(r"^(ICE_GATHERING|ICE_CONNECTION|ICE|DTLS|PEER_CONNECTION|CONNECTION|SIGNALING)_([A-Z_]+)")
_TIMELINE_KINDS: dict[str, Any] = {
    "ICE_GATHERING": "gathering",
    "ICE_CONNECTION": "ice",
    "ICE": "ice",
    "DTLS": "dtls",
    "PEER_CONNECTION": "connection",
    "CONNECTION": "connection",
    "SIGNALING": "signaling",
}
_EMPTY: dict[str, Any] = {}
# Android connectionTimeline entries read: a real call has tens; a report holds MAX_STATES changes.
MAX_TIMELINE_ENTRIES = MAX_STATES


def _block(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """An optional nested object ({} when absent); ``path`` "" is the document root."""
    v = parent.get(key)
    if v is None:
        return _EMPTY
    if not isinstance(v, dict):
        raise InvalidInput("expected a JSON object", path=f"{path}.{key}" if path else key)
    return v


def _number(block: dict[str, Any], key: str, path: str) -> float | None:
    v = block.get(key)
    if v is None:
        return None
    f = num(v)
    if f is None:
        raise InvalidInput("expected a number", path=f"{path}.{key}")
    return f


def _counter(block: dict[str, Any], key: str, path: str) -> int | None:
    v = block.get(key)
    if v is None:
        return None
    c = count(v)
    if c is None:
        raise InvalidInput("expected a non-negative integer counter", path=f"{path}.{key}")
    return c


def _candidate(
    known: dict[str, Candidate], info: dict[str, Any], fallback_id: object, is_remote: bool, path: str
) -> Candidate | None:
    """The interval's candidate; built once per id (the same pair repeats every interval)."""
    ctype = cand.candidate_type(info.get("candidateType"))
    if ctype is None:
        if info.get("candidateType") is not None:
            raise InvalidInput("expected host|srflx|prflx|relay", path=f"{path}.candidateType")
        return None
    cid = text(info.get("id")) or text(fallback_id)
    if not cid:
        side = "remote" if is_remote else "local"
        cid = f"telnyx-{side}-{ctype}-{info.get('protocol')}-{info.get('address') or info.get('ip')}-{info.get('port')}"
    found = known.get(cid)
    if found is None:
        if len(known) >= MAX_CANDIDATES:  # a report holds no more: refused before more are built
            raise PayloadTooLarge(f"more than {MAX_CANDIDATES} distinct candidates in one report", path=path)
        found = cand.from_stats(cid, info, is_remote)
        if found is not None:
            known[cid] = found
    return found


class _Call:
    """Accumulates candidates, pairs and states across the intervals of one payload."""

    def __init__(self) -> None:
        self.candidates: dict[str, Candidate] = {}
        self.selected: list[SelectedPair] = []
        self.states: list[StateChange] = []  # seen by the stats intervals (stamped at their end)
        self.last_state: dict[str, str] = {}
        self.exact_states: list[StateChange] = []  # timed by the client (Android connectionTimeline)
        self.timeline_skipped = 0  # connectionTimeline entries beyond MAX_TIMELINE_ENTRIES, not read
        self.pair_changes: int | None = None

    def pair(self, at: datetime, pair_id: str | None, local: Candidate | None, remote: Candidate | None) -> None:
        if local is None or remote is None:
            return
        last = self.selected[-1] if self.selected else None
        if last is None or (last.local_candidate_id, last.remote_candidate_id) != (local.id, remote.id):
            self.selected.append(
                SelectedPair(at=at, pair_id=pair_id, local_candidate_id=local.id, remote_candidate_id=remote.id)
            )

    def state(self, at: datetime, kind: Any, value: str | None) -> None:
        if value and self.last_state.get(kind) != value:
            self.last_state[kind] = value
            self.states.append(state_change(at, kind, value))


def _rtt(
    conn: dict[str, Any], ice: dict[str, Any], rr_in: dict[str, Any], path: str, android: bool
) -> tuple[float | None, RttSource | None]:
    source: RttSource = "candidate-pair"
    value = _number(conn, "roundTripTimeAvg", f"{path}.connection")
    if value is None:
        value = _number(conn, "currentRoundTripTime", f"{path}.connection")
    if value is not None:
        declared = conn.get("roundTripTimeSource")
        if isinstance(declared, str) and declared.startswith("remote-inbound"):
            source = "remote-inbound-rtp"
    else:
        value = _number(ice, "currentRoundTripTime", f"{path}.ice")
    if value is None:
        source = "remote-inbound-rtp"
        value = _number(rr_in, "roundTripTimeAvg", f"{path}.remoteRtcp.inbound")
        if value is None:
            value = _number(rr_in, "roundTripTime", f"{path}.remoteRtcp.inbound")
    if value is None or value < 0:
        return None, None
    if android and value > 10:
        return value, source  # already milliseconds
    return value * 1000.0, source


def _interval(call: _Call, deltas: DeltaTracker, iv_raw: object, path: str, android: bool) -> tuple[Sample, str | None]:
    iv = require_obj(iv_raw, path)
    start_raw = iv.get("intervalStartUtc")
    start = require_time(start_raw, f"{path}.intervalStartUtc")
    end = optional_time(iv.get("intervalEndUtc"), f"{path}.intervalEndUtc")
    at = end or start
    audio = _block(iv, "audio", path)
    inbound = _block(audio, "inbound", f"{path}.audio")
    outbound = _block(audio, "outbound", f"{path}.audio")
    conn = _block(iv, "connection", path)
    ice = _block(iv, "ice", path)
    transport = _block(iv, "transport", path)
    rr_in = _block(_block(iv, "remoteRtcp", path), "inbound", f"{path}.remoteRtcp")

    pair_id = text(ice.get("id")) or text(transport.get("selectedCandidatePairId"))
    if ice:
        local = _candidate(
            call.candidates,
            _block(ice, "local", f"{path}.ice"),
            ice.get("localCandidateId"),
            False,
            f"{path}.ice.local",
        )
        remote = _candidate(
            call.candidates,
            _block(ice, "remote", f"{path}.ice"),
            ice.get("remoteCandidateId"),
            True,
            f"{path}.ice.remote",
        )
        call.pair(start, pair_id, local, remote)

    ice_state = optional_text(transport.get("iceState"), f"{path}.transport.iceState")
    dtls_state = optional_text(transport.get("dtlsState"), f"{path}.transport.dtlsState")
    call.state(at, "ice", ice_state)
    call.state(at, "dtls", dtls_state)
    changes = _counter(transport, "selectedCandidatePairChanges", f"{path}.transport")
    if changes is not None:
        call.pair_changes = changes

    rtt, rtt_source = _rtt(conn, ice, rr_in, path, android)
    jitter = _number(inbound, "jitterAvg", f"{path}.audio.inbound")
    if jitter is None:
        jitter = _number(rr_in, "jitter", f"{path}.remoteRtcp.inbound")

    # Pair-level counters when the SDK sent them, else the audio stream's packets. Bytes are
    # connection-level only (see the module docstring): no audio payload bytes in their place.
    scope = f"pair:{pair_id}" if pair_id else "pair"
    cpath = f"{path}.connection"
    sent_b = deltas.delta(f"{scope}.bs", _counter(conn, "bytesSent", cpath))
    recv_b = deltas.delta(f"{scope}.br", _counter(conn, "bytesReceived", cpath))
    if "packetsSent" in conn or "packetsReceived" in conn or "bytesSent" in conn or "bytesReceived" in conn:
        sent_p = deltas.delta(f"{scope}.ps", _counter(conn, "packetsSent", cpath))
        recv_p = deltas.delta(f"{scope}.pr", _counter(conn, "packetsReceived", cpath))
    else:
        opath, ipath = f"{path}.audio.outbound", f"{path}.audio.inbound"
        sent_p = deltas.delta("audio.ps", _counter(outbound, "packetsSent", opath))
        recv_p = deltas.delta("audio.pr", _counter(inbound, "packetsReceived", ipath))
        _counter(outbound, "bytesSent", opath)  # still type-checked: a bad value is a bad report
        _counter(inbound, "bytesReceived", ipath)
    lost_raw = inbound.get("packetsLost")
    lost_value = integer(lost_raw)
    if lost_raw is not None and lost_value is None:
        raise InvalidInput("expected an integer", path=f"{path}.audio.inbound.packetsLost")
    lost = deltas.delta("audio.lost", lost_value, monotonic=False)

    sample = Sample(
        start=start,
        end=end,
        rtt_ms=rtt,
        rtt_source=rtt_source,
        jitter_ms=jitter,
        packets_sent=sent_p,
        packets_received=recv_p,
        packets_lost=lost,
        bytes_sent=sent_b,
        bytes_received=recv_b,
        ice_state=ice_state,
        dtls_state=dtls_state,
        selected_pair_id=pair_id,
    )
    return sample, start_raw if isinstance(start_raw, str) else str(start_raw)


def _android(call: _Call, extra: dict[str, Any], at: datetime | None) -> str | None:
    """States and the selected pair from ``android_extra``; returns the device user agent. At most
    ``MAX_TIMELINE_ENTRIES`` timeline entries are read (the rest are counted in a note)."""
    timeline = extra.get("connectionTimeline")
    entries = timeline if isinstance(timeline, list) else []
    call.timeline_skipped = max(0, len(entries) - MAX_TIMELINE_ENTRIES)
    for i, entry in enumerate(entries[:MAX_TIMELINE_ENTRIES]):
        if not isinstance(entry, dict) or not isinstance(entry.get("event"), str):
            continue
        m = _TIMELINE.match(entry["event"])
        t = when(entry.get("timestamp"))
        if m is None or t is None:
            if m is not None:
                raise InvalidInput("expected a timestamp", path=f"android_extra.connectionTimeline[{i}].timestamp")
            continue
        kind, state = _TIMELINE_KINDS[m.group(1)], m.group(2).lower().replace("_", "-")
        last = next((s for s in reversed(call.exact_states) if s.kind == kind), None)
        if last is None or last.state != state:
            call.exact_states.append(state_change(t, kind, state))
    ice = extra.get("iceCandidates")
    pair = ice.get("selectedPair") if isinstance(ice, dict) else None
    if isinstance(pair, dict) and at is not None:
        path = "android_extra.iceCandidates.selectedPair"
        local = _candidate(call.candidates, _block(pair, "local", path), None, False, f"{path}.local")
        remote = _candidate(call.candidates, _block(pair, "remote", path), None, True, f"{path}.remote")
        call.pair(at, None, local, remote)
    device = extra.get("deviceInfo")
    return text(device.get("userAgent")) if isinstance(device, dict) else None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # the ids are printed to terminals by `icewatch explain`


def _id_notes(d: dict[str, Any], ctx: UploadContext) -> list[ReportNote]:
    """The SDK's own ids of the upload (headers, else the Android body's fields), for support."""
    found = (
        ("call-report-id", ctx.report_id_hint or d.get("call_report_id")),
        ("voice-sdk-id", ctx.voice_sdk_id_hint or d.get("voice_sdk_id")),
    )
    out: list[ReportNote] = []
    for code, value in found:
        cleaned = _CONTROL.sub("", value).strip()[:256] if isinstance(value, str) else ""
        if cleaned:
            out.append(ReportNote(source="sdk", code=code, text=cleaned))
    return out


def parse(document: object, ctx: UploadContext, budget: Budget | None = None) -> list[CallReport]:
    budget = budget or Budget.for_body(0)
    d = require_obj(document, "$")
    summary = _block(d, "summary", "")
    android_extra = d.get("android_extra")
    android = isinstance(android_extra, dict)
    call_id_raw = summary.get("callId", d.get("call_id", ctx.call_id_hint))
    call_id = require_text(call_id_raw, "summary.callId")

    segment_raw = d.get("segment")
    segment = count(segment_raw)
    if segment_raw is not None and segment is None:
        raise InvalidInput("expected a non-negative integer", path="segment")
    flush = d.get("flushReason")
    if flush is not None and not isinstance(flush, dict):
        raise InvalidInput("expected a JSON object", path="flushReason")

    stats = require_list(d.get("stats"), "stats") if d.get("stats") is not None else []
    if len(stats) > MAX_SAMPLES:
        raise PayloadTooLarge(f"{len(stats)} stats intervals; at most {MAX_SAMPLES} per segment", path="stats")
    budget.charge_samples(len(stats))
    call = _Call()
    # A later segment starts mid-call: its first cumulative values are not deltas.
    deltas = DeltaTracker(unknown_baseline=bool(segment))
    samples: list[Sample] = []
    first_start: str | None = None
    for i, iv in enumerate(stats):
        sample, start_raw = _interval(call, deltas, iv, f"stats[{i}]", android)
        samples.append(sample)
        if first_start is None:
            first_start = start_raw

    started = optional_time(summary.get("startTimestamp"), "summary.startTimestamp")
    ended = optional_time(summary.get("endTimestamp"), "summary.endTimestamp")
    user_agent = ctx.user_agent
    if android and isinstance(android_extra, dict):
        device_ua = _android(call, android_extra, samples[0].start if samples else started)
        user_agent = user_agent or device_ua

    direction_raw = optional_text(summary.get("direction"), "summary.direction")
    client = _block(summary, "clientSummary", "summary")
    media = _block(client, "media", "summary.clientSummary")
    caller = optional_text(summary.get("callerNumber"), "summary.callerNumber")
    callee = optional_text(summary.get("destinationNumber"), "summary.destinationNumber")
    sdk_version = optional_text(summary.get("sdkVersion"), "summary.sdkVersion")

    logs_raw = d.get("logs")
    findings = read_logs(require_list(logs_raw, "logs")) if logs_raw is not None else None
    logged = sorted(call.exact_states + (findings.states if findings else []), key=lambda s: s.at)
    timed = timed_states(findings, started) if findings else []
    lengths = [s.end - s.start for s in samples if s.end is not None and s.end > s.start]
    interval = min(max(lengths, default=timedelta(seconds=1)), timedelta(seconds=60))
    states, dropped = merge_states(timed, logged, call.states, interval)
    report_notes = _id_notes(d, ctx) + (notes(findings) if findings else [])
    if dropped:
        text = f"{dropped} state changes beyond the {MAX_STATES} a report holds were not kept (the latest ones)"
        report_notes.append(ReportNote(source="reader", code="states-trimmed", text=text))
    if call.timeline_skipped:
        text = (f"{call.timeline_skipped} android_extra.connectionTimeline entries beyond the first "
                f"{MAX_TIMELINE_ENTRIES} were not read")
        report_notes.append(ReportNote(source="reader", code="timeline-trimmed", text=text))

    report = CallReport(
        call_id=call_id,
        report_id=stable_id(call_id, segment, first_start),
        segment=segment,
        final=flush is None,
        source_format="telnyx",
        peer_connection_id=None,
        sdk_name="telnyx-android" if android else "telnyx-webrtc-js",
        sdk_version=sdk_version,
        browser=None if android else browser_from_user_agent(user_agent),
        user_agent=user_agent,
        client_address=ctx.client_address,
        direction=_DIRECTIONS.get(direction_raw.strip().lower()) if direction_raw else None,
        started_at=started,
        ended_at=ended,
        ice_servers=[IceServer(urls=u) for u in ice_server_urls(media.get("iceServers"))],
        ice_transport_policy="relay" if media.get("forceRelayCandidate") is True else None,
        candidates=list(call.candidates.values()),
        candidate_errors=[],
        selected_pairs=call.selected,
        reported_pair_changes=call.pair_changes,
        states=states,
        samples=samples,
        notes=report_notes,
        caller_hash=keyed_hash(caller, ctx.hash_key) if caller else None,
        callee_hash=keyed_hash(callee, ctx.hash_key) if callee else None,
    )
    return [report]
