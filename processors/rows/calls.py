"""Rows for one canonical call report: ``calls``, ``call_samples``, ``candidates``, ``candidate_errors``.

Pure: the facts come from processors/facts/call_facts.py; this module only lays them out as rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from collector.contract import CallReport
from collector.netaddr import truncate_ip
from processors.facts.model import CallFacts
from processors.facts.rtt import rtt_band
from processors.facts.timeline import sample_durations, time_order
from processors.rows.batch import ColumnRows, Rows


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower() if ":" in url else ""


def richness(report: CallReport) -> int:
    """How much of its call a report carries: a fuller report of the same call and segment has more."""
    order = time_order(report.samples)  # distinct starts, without hashing 300 zoned datetimes in order
    starts = len(report.samples) if order is None else len(order)
    return (starts + len(report.states) + len(report.candidates)
            + len(report.candidate_errors) + len(report.selected_pairs))


def _sample_columns(report: CallReport, facts: CallFacts, tenant: str, ingested_at: datetime,
                    durations: Sequence[float | None]) -> ColumnRows:
    """``call_samples`` as columns: a list per column, not a dict per sample (a 300-interval report's
    300 rows are inserted as Arrow columns; building and reading back 300 dicts cost ~3x as much)."""
    ss = report.samples
    n = len(ss)
    rtt = [s.rtt_ms for s in ss]
    return ColumnRows({
        "tenant": [tenant] * n,
        "call_id": [report.call_id] * n,
        "client_region": [facts.client_region] * n,
        "turn_region": [facts.turn_region] * n,
        "path_class": [facts.path_class] * n,
        "ingested_at": [ingested_at] * n,
        "at": [s.start for s in ss],
        "duration_s": [1.0 if d is None else d for d in durations],
        "rtt_ms": rtt,
        "rtt_source": [s.rtt_source or "" for s in ss],
        "rtt_band": [rtt_band(r) if r is not None else "" for r in rtt],
        "jitter_ms": [s.jitter_ms for s in ss],
        "packets_received": [s.packets_received for s in ss],
        "packets_lost": [s.packets_lost for s in ss],
        "bytes_sent": [s.bytes_sent for s in ss],
        "bytes_received": [s.bytes_received for s in ss],
        "ice_state": [s.ice_state or "" for s in ss],
        "dtls_state": [s.dtls_state or "" for s in ss],
    })


def rows_for_call(report: CallReport, facts: CallFacts, tenant: str, ingested_at: datetime,
                  durations: Sequence[float | None] | None = None) -> Rows:
    """The rows of ``report`` with its ``facts``. ``durations``: ``sample_durations(report.samples)``,
    if at hand (the row builder's, shared with the facts)."""
    event_time = facts.started_at or (report.samples[0].start if report.samples else ingested_at)
    call = facts.model_dump(mode="python", exclude={"candidate_errors"})
    call.update(tenant=tenant, event_time=event_time, ingested_at=ingested_at, richness=richness(report))

    if durations is None:
        durations = sample_durations(report.samples)
    samples = _sample_columns(report, facts, tenant, ingested_at, durations)
    selected = {(p.local_candidate_id, False) for p in report.selected_pairs} | {
        (p.remote_candidate_id, True) for p in report.selected_pairs
    }
    candidates = [
        {
            "tenant": tenant,
            "call_id": report.call_id,
            "candidate_id": f"{'r' if c.is_remote else 'l'}:{c.id}",
            "event_time": c.gathered_at or event_time,
            "is_remote": c.is_remote,
            "candidate_type": c.candidate_type,
            "protocol": c.protocol or "",
            "relay_protocol": c.relay_protocol or "",
            "url": c.url or "",
            # relayed addresses belong to TURN servers and are kept whole; client addresses are truncated
            "address": (c.address or "") if c.candidate_type == "relay" else truncate_ip(c.address or ""),
            "port": c.port,
            "turn_server_id": facts.turn_server_id if c.url and c.url == facts.turn_url else "",
            "selected": (c.id, c.is_remote) in selected,
            "ingested_at": ingested_at,
        }
        for c in report.candidates
    ]
    errors = [
        {
            "tenant": tenant,
            "call_id": report.call_id,
            "event_time": e.at or event_time,
            "url": e.url or "",
            "url_scheme": _scheme(e.url or ""),
            "error_code": e.error_code,
            "error_text": e.error_text or "",
            "client_region": facts.client_region,
            "turn_server_id": facts.turn_server_id,
            "turn_region": facts.turn_region,
            "ingested_at": ingested_at,
        }
        for e in report.candidate_errors
        if 0 <= e.error_code < 65536
    ]
    return {"calls": [call], "call_samples": samples, "candidates": candidates, "candidate_errors": errors}
