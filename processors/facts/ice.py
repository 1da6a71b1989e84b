"""ICE timing and failures: gathering, first srflx/relay, connect time, failure, reconnects, errors.

All times are milliseconds from the report's origin: its earliest timestamp of any kind
(``started_at``, state changes, candidates, candidate errors, selected pairs, samples).

Definitions:
- *ICE connected*: an ICE state ``connected``/``completed``; else a sample whose ``ice_state``
  says so; else a connection state ``connected`` (it implies ICE); else a selected pair, or a
  sample with an RTT or received packets (media flowed, so ICE must have connected).
- ``ice_gathering_ms``: the gathering state ``complete``; else the last local candidate.
- ``ice_failed``: a ``failed`` ICE/connection state (or sample ``ice_state``) while ICE never
  connected and no pair was ever selected. A call that connected and failed later is not an ICE
  failure (it shows up as a reconnect or a DTLS stall instead).
- ``never_connected``: the report shows an attempt (states, candidates, errors or samples) but
  ICE never connected, failed or not. Chromium with a wrong TURN password and a relay-only
  policy stays ``new`` forever: ``never_connected`` without ``ice_failed``.
- ``reconnects``: returns to ``connected``/``completed`` after ``disconnected``/``failed``; the
  largest count of the ICE state sequence, the connection state sequence and the per-sample
  ``ice_state`` sequence (real dumps show recoveries in connectionState only).
- Candidate errors are counted per (url, code) after dropping exact repeats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from collector.contract import CallReport, Sample, StateChange
from processors.facts.candidate_mix import local_candidates
from processors.facts.model import CandidateErrorCount
from processors.facts.timeline import first_at, ms_between, ordered_samples, report_origin, sample_time, state_timeline

CONNECTED_STATES = frozenset({"connected", "completed"})
BROKEN_STATES = frozenset({"disconnected", "failed"})


@dataclass(frozen=True)
class IceFacts:
    ice_gathering_ms: float | None
    first_srflx_ms: float | None
    first_relay_ms: float | None
    ice_connect_ms: float | None
    ice_connected: bool
    ice_connected_at: datetime | None
    ice_failed: bool
    never_connected: bool
    reconnects: int
    candidate_errors: tuple[CandidateErrorCount, ...]


# What said ICE connected (ice_connected_evidence), in the order the evidence is tried.
ICE_CONNECTED_EVIDENCE = ("ice-state", "sample-ice-state", "connection-state", "selected-pair", "media")


def ice_connected_evidence(
    report: CallReport, states: Sequence[StateChange], samples: Sequence[Sample]
) -> tuple[datetime | None, str]:
    """When ICE connected and which evidence said so (one of ICE_CONNECTED_EVIDENCE); (None, "")."""
    at = first_at(states, "ice", CONNECTED_STATES)
    if at is not None:
        return at, "ice-state"
    at = next((sample_time(s) for s in samples if s.ice_state in CONNECTED_STATES), None)
    if at is not None:
        return at, "sample-ice-state"
    at = first_at(states, "connection", frozenset({"connected"}))
    if at is not None:
        return at, "connection-state"
    if report.selected_pairs:
        return min(p.at for p in report.selected_pairs), "selected-pair"
    media = (s for s in samples if s.rtt_ms is not None or (s.packets_received or 0) > 0)
    at = next((s.start for s in media), None)
    return (at, "media") if at is not None else (None, "")


def ice_connected_at(
    report: CallReport, states: Sequence[StateChange], samples: Sequence[Sample]
) -> tuple[bool, datetime | None]:
    """Whether ICE connected, and when (see the module rules for the evidence used)."""
    at, _ = ice_connected_evidence(report, states, samples)
    return at is not None, at


def count_reconnects(sequence: Iterable[str]) -> int:
    reconnects = 0
    connected_before = broken = False
    for state in sequence:
        if state in CONNECTED_STATES:
            if connected_before and broken:
                reconnects += 1
            connected_before, broken = True, False
        elif state in BROKEN_STATES and connected_before:
            broken = True
    return reconnects


def count_candidate_errors(report: CallReport) -> tuple[CandidateErrorCount, ...]:
    unique = dict.fromkeys((e.at, e.url or "", e.error_code, e.address, e.port) for e in report.candidate_errors)
    counts = Counter((url, code) for _, url, code, _, _ in unique)
    return tuple(CandidateErrorCount(url=url, error_code=code, count=n) for (url, code), n in sorted(counts.items()))


def derive_ice(report: CallReport, samples: Sequence[Sample] | None = None) -> IceFacts:
    """ICE facts of a report (``samples``: already ordered/deduplicated samples, if at hand)."""
    states = state_timeline(report)
    samples = ordered_samples(report) if samples is None else samples
    origin = report_origin(report, samples)
    locals_ = local_candidates(report)

    def first_gathered(ctype: str) -> datetime | None:
        times = [c.gathered_at for c in locals_ if c.candidate_type == ctype and c.gathered_at is not None]
        return min(times) if times else None

    gathered_at = first_at(states, "gathering", frozenset({"complete"}))
    if gathered_at is None:
        times = [c.gathered_at for c in locals_ if c.gathered_at is not None]
        gathered_at = max(times) if times else None

    connected, connected_at = ice_connected_at(report, states, samples)
    sample_ice_states = [s.ice_state for s in samples]
    failed_seen = any(s.state == "failed" for s in states if s.kind in ("ice", "connection")) or (
        "failed" in sample_ice_states
    )
    attempted = bool(states or report.candidates or report.candidate_errors or samples)
    return IceFacts(
        ice_gathering_ms=ms_between(origin, gathered_at),
        first_srflx_ms=ms_between(origin, first_gathered("srflx")),
        first_relay_ms=ms_between(origin, first_gathered("relay")),
        ice_connect_ms=ms_between(origin, connected_at),
        ice_connected=connected,
        ice_connected_at=connected_at,
        ice_failed=failed_seen and not connected and not report.selected_pairs,
        never_connected=attempted and not connected,
        reconnects=max(
            count_reconnects(s.state for s in states if s.kind == "ice"),
            count_reconnects(s.state for s in states if s.kind == "connection"),
            # a state repeated in a row changes no count: the samples' runs of one state count once
            count_reconnects(state for state, _ in groupby(sample_ice_states) if state),
        ),
        candidate_errors=count_candidate_errors(report),
    )
