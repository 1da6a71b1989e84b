"""A time series of W3C ``getStats()`` snapshots plus peer-connection events -> one CallReport.

Shared by the W3C, webrtc-internals and rtcstats parsers. Rules:

- Selected pair: ``transport.selectedCandidatePairId``; when no transport names one (Firefox has
  no transport stats), the candidate-pair marked ``selected: true``. A change of the selected
  pair's (local, remote) candidates starts a new ``SelectedPair`` entry.
- RTT: the selected pair's ``currentRoundTripTime``; else ``remote-inbound-rtp.roundTripTime``
  (audio first). Seconds in, milliseconds out, with ``rtt_source``.
- Counters are cumulative in getStats; samples carry per-interval deltas (``DeltaTracker``
  guards against resets). Bytes/packets come from the transport when it has them, else from the
  selected pair; ``packets_lost`` is summed over inbound-rtp streams.
- ICE and DTLS states come from the events; for a kind without any event they are derived from
  the transport's ``iceState``/``dtlsState`` whenever the value changes.
- A peer connection that connected (ICE or connection state) but yields no selected pair gets a
  ``no-selected-pair`` reader note saying why: no stats at all, no candidate-pair among them, a
  selected id naming a pair the stats do not hold, or pairs of which none is marked selected.
- When DTLS connected comes only from the stats (no DTLS or connection state events) and the
  first poll showing it is more than 2 s after the poll before it (or after ICE connected), a
  ``coarse-dtls-time`` reader note says the DTLS time is only that exact (legacy dumps were often
  polled every 10 s; a DTLS stall diagnosis may then be the poll spacing).
- Sample ``i`` covers (snapshot ``i-1``, snapshot ``i``]. The first covers the time since the peer
  connection started (its counters count from there): from the earliest event when that is
  before the first snapshot, else one snapshot spacing (1 s when there is a single snapshot).
  Every sample therefore has a distinct ``start`` and an ``end``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from collector.contract import (
    MAX_SELECTED_PAIRS,
    CallReport,
    Candidate,
    CandidateError,
    IceServer,
    ReportNote,
    RttSource,
    Sample,
    SelectedPair,
    SourceFormat,
    StateChange,
    StateKind,
    stable_id,
)
from collector.reports import candidates as cand
from collector.reports._values import DeltaTracker, count, num, text

StatsObject = dict[str, Any]
Snapshot = tuple[datetime, Mapping[str, StatsObject]]

_COUNTERS = ("packetsSent", "packetsReceived", "bytesSent", "bytesReceived")


@dataclass
class SeriesMeta:
    """What a format knows about the call besides its stats."""

    call_id: str
    source_format: SourceFormat
    peer_connection_id: str | None = None
    sdk_name: str | None = None
    sdk_version: str | None = None
    browser: str | None = None
    user_agent: str | None = None
    client_address: str | None = None
    ice_servers: list[list[str]] = field(default_factory=list)
    ice_transport_policy: Literal["all", "relay"] | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass
class SeriesEvents:
    """Peer-connection events, already normalized by the format parser."""

    states: list[StateChange] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    errors: list[CandidateError] = field(default_factory=list)


def state_change(at: datetime, kind: StateKind, state: str) -> StateChange:
    return StateChange(at=at, kind=kind, state=state)


def _pick_remote_inbound(objs: list[StatsObject]) -> float | None:
    best: float | None = None
    for o in objs:
        rtt = num(o.get("roundTripTime"))
        if rtt is None or rtt < 0:
            continue
        if o.get("kind") == "audio" or o.get("mediaType") == "audio":
            return rtt
        if best is None:
            best = rtt
    return best


def _pick_jitter(objs: list[StatsObject]) -> float | None:
    other: float | None = None
    for o in objs:
        j = num(o.get("jitter"))
        if j is None or j < 0:
            continue
        if o.get("kind") == "audio" or o.get("mediaType") == "audio":
            return j * 1000.0
        other = j if other is None else max(other, j)
    return None if other is None else other * 1000.0


def _selected_pair_id(transports: list[tuple[str, StatsObject]], pairs: Mapping[str, StatsObject]) -> str | None:
    first: str | None = None  # the first transport's choice, when none names a pair the stats hold
    for _, t in transports:
        pid = t.get("selectedCandidatePairId")
        if isinstance(pid, str) and pid:
            if pid in pairs:
                return pid
            first = first or pid
    if first is not None:
        return first
    for pid, p in pairs.items():
        if p.get("selected") is True:
            return pid
    return None


def _main_transport(transports: list[tuple[str, StatsObject]], pair_id: str | None) -> tuple[str, StatsObject] | None:
    if not transports:
        return None
    if pair_id is not None:
        for tid, t in transports:
            if t.get("selectedCandidatePairId") == pair_id:
                return tid, t
    return transports[0]


def _merge_candidates(from_stats: dict[str, Candidate], from_events: Iterable[Candidate]) -> list[Candidate]:
    """Stats candidates (they carry ids, URLs, relayProtocol) completed with the event times;
    event-only candidates (gathered but gone from the stats) are added."""
    by_key: dict[cand.CandidateKey, str] = {}
    for cid, c in from_stats.items():
        by_key.setdefault(cand.key_of(c), cid)
    merged = dict(from_stats)
    for ev in from_events:
        match = by_key.get(cand.key_of(ev))
        if match is not None:
            known = merged[match]
            if ev.gathered_at is not None and (known.gathered_at is None or ev.gathered_at < known.gathered_at):
                merged[match] = known.model_copy(update={"gathered_at": ev.gathered_at})
        elif ev.id not in merged:
            merged[ev.id] = ev
            by_key[cand.key_of(ev)] = ev.id
    return list(merged.values())


@dataclass
class _PairEvidence:
    """What the snapshots said about candidate pairs, for a note when none was selected."""

    snapshots: int = 0
    pairs: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    named_absent: str | None = None  # a selectedCandidatePairId naming no pair in the stats
    without_ends: str | None = None  # a selected pair without local/remote candidate ids

    def note(self, connected: StateChange | Sample | None) -> ReportNote | None:
        if connected is None:
            return None
        if isinstance(connected, StateChange):
            at, what = connected.at, f"{connected.kind} state {connected.state}"
        else:
            at, what = connected.end or connected.start, f"transport iceState {connected.ice_state}"
        if self.snapshots == 0:
            why = "the capture holds no getStats samples for it, so the pair in use is unknown"
        elif not self.pairs:
            seen = ", ".join(sorted(self.types)[:8]) or "no typed objects"
            why = f"none of its {self.snapshots} getStats samples holds a candidate-pair (they hold: {seen})"
        elif self.named_absent is not None:
            why = f"the transport names pair {self.named_absent[:80]!r} as selected, but the stats hold no such pair"
        elif self.without_ends is not None:
            why = f"the selected pair {self.without_ends[:80]!r} names no local and remote candidate ids"
        else:
            why = (
                f"its stats list {len(self.pairs)} candidate pair(s), but no transport names a selected pair "
                "(selectedCandidatePairId) and none is marked selected (Firefox) or active (legacy "
                "googActiveConnection)"
            )
        text = f"Connected ({what}) but no selected candidate pair: {why}; path class and RTT cannot be derived."
        return ReportNote(source="reader", code="no-selected-pair", text=text, at=at)


_COARSE_DTLS_MS = 2000.0  # polls further apart than this make a stats-only DTLS time a rough one


def _coarse_dtls_note(events: SeriesEvents, states: list[StateChange], samples: list[Sample]) -> ReportNote | None:
    """When DTLS connected is known only from getStats polls far apart, say how rough it is: the
    DTLS connect time (and a stall judged from it) is then only as exact as the poll spacing."""
    if any(s.kind in ("dtls", "connection") for s in events.states):
        return None  # state events time it exactly
    idx = next((i for i, s in enumerate(samples) if s.dtls_state == "connected"), None)
    if idx is None or samples[idx].end is None:
        return None
    seen = samples[idx].end
    if idx > 0:
        before, what = samples[idx - 1].end, "the poll before it"
    else:
        ice = _connected([st for st in states if st.kind == "ice"], [])
        before, what = (ice.at if isinstance(ice, StateChange) else None), "ICE connected"
    if before is None or seen is None:
        return None
    gap_s = (seen - before).total_seconds()
    if gap_s * 1000.0 <= _COARSE_DTLS_MS:
        return None
    text = (
        f"DTLS connected is known only from the getStats poll at {seen:%H:%M:%S} UTC ({what}: {gap_s:.1f} s "
        f"earlier; no DTLS or connection state events): the DTLS connect time, and a DTLS stall judged "
        f"from it, are exact to {gap_s:.1f} s only."
    )
    return ReportNote(source="reader", code="coarse-dtls-time", text=text, at=seen)


def _connected(states: list[StateChange], samples: list[Sample]) -> StateChange | Sample | None:
    for st in states:
        if (st.kind == "ice" and st.state in ("connected", "completed")) or (
            st.kind == "connection" and st.state == "connected"
        ):
            return st
    return next((s for s in samples if s.ice_state in ("connected", "completed")), None)


def _first_start(meta: SeriesMeta, series: list[Snapshot], events: SeriesEvents) -> datetime:
    """Where the first sample's interval begins (see the module docstring)."""
    if not series:
        return datetime.max.replace(tzinfo=UTC)  # unused: no samples
    t0 = series[0][0]
    earlier = [s.at for s in events.states if s.at < t0]
    earlier += [c.gathered_at for c in events.candidates if c.gathered_at is not None and c.gathered_at < t0]
    if meta.started_at is not None and meta.started_at < t0:
        earlier.append(meta.started_at)
    if earlier:
        return min(earlier)
    gap = series[1][0] - t0 if len(series) > 1 and series[1][0] > t0 else timedelta(seconds=1)
    return t0 - gap


def build_report(meta: SeriesMeta, snapshots: Iterable[Snapshot], events: SeriesEvents) -> CallReport:
    series = sorted(snapshots, key=lambda s: s[0])
    stats_candidates: dict[str, Candidate] = {}
    pair_ends: dict[str, tuple[str, str]] = {}
    selected: list[SelectedPair] = []
    samples: list[Sample] = []
    derived: list[StateChange] = []
    last_state: dict[StateKind, str] = {}
    deltas = DeltaTracker()
    reported_changes: int | None = None
    evidence = _PairEvidence(snapshots=len(series))
    seen_types: set[str] = set()  # the types already noted in evidence (checked once per object)
    prev_t = _first_start(meta, series, events)

    for t, stats in series:
        transports: list[tuple[str, StatsObject]] = []
        pairs: dict[str, StatsObject] = {}
        remote_inbound: list[StatsObject] = []
        inbound: list[tuple[str, StatsObject]] = []
        for sid, s in stats.items():
            typ = s.get("type")
            if isinstance(typ, str) and typ not in seen_types and len(seen_types) < 64:
                seen_types.add(typ)
                evidence.types.add(typ[:40])
            if typ == "candidate-pair":
                pairs[sid] = s
                local, remote = text(s.get("localCandidateId")), text(s.get("remoteCandidateId"))
                if local and remote:
                    pair_ends[sid] = (local, remote)
            elif typ == "transport":
                transports.append((sid, s))
            elif typ == "inbound-rtp":
                inbound.append((sid, s))
            elif typ == "remote-inbound-rtp":
                remote_inbound.append(s)
            elif (typ == "local-candidate" or typ == "remote-candidate") and sid not in stats_candidates:
                c = cand.from_stats(sid, s, typ == "remote-candidate")
                if c is not None:
                    stats_candidates[sid] = c

        pair_id = _selected_pair_id(transports, pairs)
        main = _main_transport(transports, pair_id)
        transport = main[1] if main else None
        pair = pairs.get(pair_id) if pair_id else None

        ends = pair_ends.get(pair_id) if pair_id else None
        if len(evidence.pairs) < MAX_SELECTED_PAIRS:
            evidence.pairs.update(pairs)
        if pair_id is not None and pair is None:
            evidence.named_absent = pair_id
        elif pair_id is not None and ends is None:
            evidence.without_ends = pair_id
        if ends is not None and (
            not selected or (selected[-1].local_candidate_id, selected[-1].remote_candidate_id) != ends
        ):
            selected.append(
                SelectedPair(at=t, pair_id=pair_id, local_candidate_id=ends[0], remote_candidate_id=ends[1])
            )

        rtt_s: float | None = None
        rtt_source: RttSource | None = None
        if pair is not None:
            cur = num(pair.get("currentRoundTripTime"))
            if cur is not None and cur >= 0:
                rtt_s, rtt_source = cur, "candidate-pair"
        if rtt_s is None:
            rtt_s = _pick_remote_inbound(remote_inbound)
            if rtt_s is not None:
                rtt_source = "remote-inbound-rtp"

        if main is not None and any(k in main[1] for k in _COUNTERS):
            counter_src: tuple[str, StatsObject] | None = main
        elif pair is not None and pair_id is not None:
            counter_src = (pair_id, pair)
        else:
            counter_src = None
        moved: dict[str, int | None] = dict.fromkeys(_COUNTERS)
        if counter_src is not None:
            src_id, src = counter_src
            for k in _COUNTERS:
                moved[k] = deltas.delta(f"{src_id}.{k}", count(src.get(k)))

        lost: int | None = None
        for sid, s in inbound:
            d = deltas.delta(f"{sid}.packetsLost", count(s.get("packetsLost")), monotonic=False)
            if d is not None:
                lost = d if lost is None else lost + d

        ice_state = dtls_state = None
        if transport is not None:
            ice_state = text(transport.get("iceState"))
            dtls_state = text(transport.get("dtlsState"))
            observed: tuple[tuple[StateKind, str | None], ...] = (("ice", ice_state), ("dtls", dtls_state))
            for kind, value in observed:
                if value and last_state.get(kind) != value:
                    last_state[kind] = value
                    derived.append(state_change(t, kind, value))
            changes = count(transport.get("selectedCandidatePairChanges"))
            if changes is not None:
                reported_changes = changes

        samples.append(
            Sample(
                start=prev_t,
                end=t,
                rtt_ms=None if rtt_s is None else rtt_s * 1000.0,
                rtt_source=rtt_source,
                jitter_ms=_pick_jitter([s for _, s in inbound]),
                packets_sent=moved["packetsSent"],
                packets_received=moved["packetsReceived"],
                packets_lost=lost,
                bytes_sent=moved["bytesSent"],
                bytes_received=moved["bytesReceived"],
                ice_state=ice_state,
                dtls_state=dtls_state,
                selected_pair_id=pair_id,
            )
        )
        prev_t = t

    evented = {s.kind for s in events.states}
    states = list(events.states) + [s for s in derived if s.kind not in evented]
    states.sort(key=lambda s: s.at)
    candidates = _merge_candidates(stats_candidates, events.candidates)
    notes = [n for n in (None if selected else evidence.note(_connected(states, samples)),) if n]
    notes += [n for n in (_coarse_dtls_note(events, states, samples),) if n]

    times = [s.at for s in states] + [c.gathered_at for c in candidates if c.gathered_at]
    times += [e.at for e in events.errors if e.at]
    if series:
        times += [series[0][0], series[-1][0]]
    started = meta.started_at or (min(times) if times else None)
    ended = meta.ended_at or (max(times) if times else None)
    first = series[0][0] if series else started

    return CallReport(
        call_id=meta.call_id,
        report_id=stable_id(meta.call_id, None, first.isoformat() if first else None),
        segment=None,
        final=True,
        source_format=meta.source_format,
        peer_connection_id=meta.peer_connection_id,
        sdk_name=meta.sdk_name,
        sdk_version=meta.sdk_version,
        browser=meta.browser,
        user_agent=meta.user_agent,
        client_address=meta.client_address,
        direction=None,
        started_at=started,
        ended_at=ended,
        ice_servers=[IceServer(urls=u) for u in meta.ice_servers if u],
        ice_transport_policy=meta.ice_transport_policy,
        candidates=candidates,
        candidate_errors=sorted(events.errors, key=lambda e: e.at.timestamp() if e.at else 0.0),
        selected_pairs=selected,
        reported_pair_changes=reported_changes,
        states=states,
        samples=samples,
        notes=notes,
        caller_hash=None,
        callee_hash=None,
    )
