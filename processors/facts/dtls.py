"""DTLS after ICE: time to DTLS connected, the DTLS stall, DTLS failure.

Evidence that DTLS finished (earliest wins): a DTLS state event ``connected``; a sample whose
transport ``dtls_state`` is ``connected``; a connection state ``connected`` (RTCPeerConnection
``connectionState`` is ``connected`` only once ICE *and* DTLS are up; this is the only evidence
Firefox gives, having no transport stats).

``dtls_stall`` (default threshold 5000 ms, ``FactsEnv.dtls_stall_ms``): ICE connected and then
- DTLS reached ``connected`` only after more than the threshold, or
- DTLS ``failed`` before connecting, or
- DTLS never reached ``connected`` and either the report is final or more than the threshold
  passed between ICE connected and the end of the report.
``dtls_stall_ms``: ICE connected to DTLS connected (late case), else to the end of the report.

A report with no DTLS or connection state at all (early Telnyx SDKs) never shows a stall;
``dtls_connected`` is then inferred from received media packets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.contract import CallReport, Sample
from processors.facts.ice import ice_connected_at
from processors.facts.timeline import first_at, ms_between, ordered_samples, report_end, sample_time, state_timeline

DEFAULT_DTLS_STALL_MS = 5000.0
_CONNECTED = frozenset({"connected"})
_FAILED = frozenset({"failed"})


@dataclass(frozen=True)
class DtlsFacts:
    dtls_connect_ms: float | None  # ICE connected -> DTLS connected
    dtls_connected: bool
    dtls_stall: bool
    dtls_stall_ms: float | None
    dtls_failed: bool


def _earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def derive_dtls(
    report: CallReport, stall_threshold_ms: float = DEFAULT_DTLS_STALL_MS, samples: Sequence[Sample] | None = None
) -> DtlsFacts:
    """DTLS facts of a report (``samples``: already ordered/deduplicated samples, if at hand)."""
    states = state_timeline(report)
    samples = ordered_samples(report) if samples is None else samples
    connected_at = _earliest(
        first_at(states, "dtls", _CONNECTED),
        next((sample_time(s) for s in samples if s.dtls_state == "connected"), None),
        first_at(states, "connection", _CONNECTED),
    )
    failed_at = _earliest(
        first_at(states, "dtls", _FAILED),
        next((sample_time(s) for s in samples if s.dtls_state == "failed"), None),
    )
    failed = failed_at is not None and (connected_at is None or failed_at < connected_at)
    ice_ok, ice_at = ice_connected_at(report, states, samples)
    has_evidence = any(s.kind in ("dtls", "connection") for s in states) or any(s.dtls_state for s in samples)
    if not has_evidence:  # e.g. an early Telnyx report: no transport block, no state events
        media = any((s.packets_received or 0) > 0 for s in samples)
        return DtlsFacts(None, media, False, None, False)

    stall = False
    stall_ms: float | None = None
    connect_ms = ms_between(ice_at, connected_at)
    if ice_ok and ice_at is not None:
        if connected_at is not None and not failed:
            stall = connect_ms is not None and connect_ms > stall_threshold_ms
            stall_ms = connect_ms if stall else None
        else:
            waited = ms_between(ice_at, failed_at if failed else report_end(report)) or 0.0
            stall = failed or report.final or waited > stall_threshold_ms
            stall_ms = waited if stall else None
    return DtlsFacts(
        dtls_connect_ms=connect_ms,
        dtls_connected=connected_at is not None,
        dtls_stall=stall,
        dtls_stall_ms=stall_ms,
        dtls_failed=failed,
    )
