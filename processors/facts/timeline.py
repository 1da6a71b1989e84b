"""The timeline helpers every fact uses: states and samples in time order, report start and end,
milliseconds between two times."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from collector.contract import CallReport, Sample, StateChange


def state_timeline(report: CallReport) -> list[StateChange]:
    """State changes in time order (stable for equal times), exact repeats dropped."""
    unique = dict.fromkeys((s.at, s.kind, s.state) for s in report.states)
    ordered = sorted(unique, key=lambda k: k[0])
    return [StateChange(at=at, kind=kind, state=state) for at, kind, state in ordered]


def ordered_samples(report: CallReport) -> list[Sample]:
    """Samples in time order, one per start time (a resent segment repeats them)."""
    unique: dict[datetime, Sample] = {}
    for s in report.samples:
        unique.setdefault(s.start, s)
    return [unique[k] for k in sorted(unique)]


def sample_time(s: Sample) -> datetime:
    """When a sample's states were observed: the end of its interval (the getStats call)."""
    return s.end or s.start


def report_origin(report: CallReport) -> datetime | None:
    """The earliest timestamp anywhere in the report."""
    times: list[datetime] = [s.at for s in report.states]
    times += [c.gathered_at for c in report.candidates if c.gathered_at is not None]
    times += [e.at for e in report.candidate_errors if e.at is not None]
    times += [p.at for p in report.selected_pairs]
    times += [s.start for s in report.samples]
    if report.started_at is not None:
        times.append(report.started_at)
    return min(times) if times else None


def report_end(report: CallReport) -> datetime | None:
    """The latest timestamp anywhere in the report (or ``ended_at`` when later)."""
    times: list[datetime] = [s.at for s in report.states]
    times += [sample_time(s) for s in report.samples]
    times += [p.at for p in report.selected_pairs]
    if report.ended_at is not None:
        times.append(report.ended_at)
    return max(times) if times else None


def ms_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds() * 1000.0)


def first_at(states: Iterable[StateChange], kind: str, wanted: frozenset[str]) -> datetime | None:
    return next((s.at for s in states if s.kind == kind and s.state in wanted), None)
