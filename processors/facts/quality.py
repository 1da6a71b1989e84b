"""Media quality: jitter, loss %, bitrates, and an E-model MOS estimate.

- ``jitter_ms``: mean of the per-sample jitter values.
- ``loss_pct``: sum of per-interval lost packets / (received + lost), in percent. Negative
  interval losses (duplicates reported late) count as 0.
- Connection bitrates (``connection_send_kbps``/``connection_recv_kbps``): the samples' byte
  counters over the total duration of the samples carrying them, in kbit/s. Every reader fills
  those counters from the ICE transport (RTCTransportStats, the selected candidate pair, the
  Telnyx ``connection`` block): every packet's bytes, RTP/RTCP headers, SRTP tags and STUN
  included, IP/UDP/TCP and TURN framing not. They are not an audio (payload) bitrate.
- MOS: ITU-T G.107 E-model reduced to the terms a call report can feed:

      one-way delay  d  = RTT / 2
      effective lat. Le = d + 2 * jitter + 10 ms          (jitter-buffer and codec allowance)
      delay impair.  Id = Le / 40            if Le < 160
                        = (Le - 120) / 10    otherwise
      loss impair.   Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl), Ie = 0, Bpl = 25.1
                     (G.711 with packet-loss concealment, random loss; Opus does at least as well)
      R   = clamp(93.2 - Id - Ie_eff, 0, 100)
      MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), clamped to 1..4.5

  It uses the call's median RTT, mean jitter and loss %; a missing RTT or jitter counts as 0.
  No MOS without any media evidence (neither jitter nor loss known).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.contract import CallReport, Sample
from processors.facts.rtt import seconds_of
from processors.facts.timeline import ordered_samples

_BPL = 25.1  # packet-loss robustness factor, G.711 with PLC (ITU-T G.113 Appendix I)


@dataclass(frozen=True)
class QualityFacts:
    jitter_ms: float | None
    loss_pct: float | None
    mos: float | None
    connection_send_kbps: float | None
    connection_recv_kbps: float | None


def r_factor(rtt_ms: float, jitter_ms: float, loss_pct: float) -> float:
    effective = rtt_ms / 2 + 2 * jitter_ms + 10.0
    delay = effective / 40 if effective < 160 else (effective - 120) / 10
    loss = 95.0 * loss_pct / (loss_pct + _BPL) if loss_pct > 0 else 0.0
    return min(100.0, max(0.0, 93.2 - delay - loss))


def mos_from_r(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return min(4.5, max(1.0, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)))


def estimate_mos(rtt_ms: float | None, jitter_ms: float | None, loss_pct: float | None) -> float | None:
    """MOS from call-level RTT, jitter and loss (see the module docstring); None without media."""
    if jitter_ms is None and loss_pct is None:
        return None
    return mos_from_r(r_factor(rtt_ms or 0.0, jitter_ms or 0.0, loss_pct or 0.0))


def _kbps(total_bytes: int, seconds: float) -> float | None:
    return total_bytes * 8 / 1000 / seconds if seconds > 0 else None


def derive_quality(
    report: CallReport,
    rtt_median_ms: float | None,
    samples: Sequence[Sample] | None = None,
    seconds: Sequence[float] | None = None,
) -> QualityFacts:
    """Quality facts of a report (``samples``: already ordered/deduplicated samples, if at hand;
    ``seconds``: their ``seconds_of``, if at hand). One pass over the samples."""
    ordered = ordered_samples(report) if samples is None else samples
    durations = seconds_of(ordered) if seconds is None else seconds
    jitters: list[float] = []
    received = lost = 0
    counted = False
    sent_bytes = received_bytes = 0
    sent_seconds = received_seconds = 0.0
    # negative counters count as 0 (``x > 0`` tests instead of max(0, x) calls: same sums, a third of the time)
    for s, d in zip(ordered, durations, strict=True):
        j = s.jitter_ms
        if j is not None and j >= 0:
            jitters.append(j)
        pr, pl = s.packets_received, s.packets_lost
        if pr is not None or pl is not None:
            counted = True
            if pr is not None and pr > 0:
                received += pr
            if pl is not None and pl > 0:
                lost += pl
        b = s.bytes_sent
        if b is not None:
            if b > 0:
                sent_bytes += b
            sent_seconds += d
        b = s.bytes_received
        if b is not None:
            if b > 0:
                received_bytes += b
            received_seconds += d
    jitter = sum(jitters) / len(jitters) if jitters else None
    loss = 100.0 * lost / (received + lost) if counted and received + lost > 0 else None
    return QualityFacts(
        jitter_ms=jitter,
        loss_pct=loss,
        mos=estimate_mos(rtt_median_ms, jitter, loss),
        connection_send_kbps=_kbps(sent_bytes, sent_seconds),
        connection_recv_kbps=_kbps(received_bytes, received_seconds),
    )
