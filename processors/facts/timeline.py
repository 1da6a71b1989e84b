"""The timeline helpers every fact uses: states and samples in time order, samples' durations, report
start and end, milliseconds between two times."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from collector.contract import CallReport, Sample, StateChange

_T = TypeVar("_T")


def state_timeline(report: CallReport) -> list[StateChange]:
    """State changes in time order (stable for equal times), exact repeats dropped."""
    unique = dict.fromkeys((s.at, s.kind, s.state) for s in report.states)
    ordered = sorted(unique, key=lambda k: k[0])
    return [StateChange(at=at, kind=kind, state=state) for at, kind, state in ordered]


def time_order(samples: Sequence[Sample]) -> list[int] | None:
    """The positions of ``samples`` in time order, the first per start time (a resent segment repeats
    them); None when that is every sample as it stands (starts strictly increasing: the usual report)."""
    starts = [s.start for s in samples]
    if all(map(operator.lt, starts, starts[1:])):
        return None
    unique: dict[datetime, int] = {}
    for i, start in enumerate(starts):
        unique.setdefault(start, i)
    return [unique[k] for k in sorted(unique)]


def in_time_order(items: Sequence[_T], order: list[int] | None) -> list[_T]:
    """The samples (or one value per sample) picked and ordered by the samples' ``time_order``."""
    return list(items) if order is None else [items[i] for i in order]


def ordered_samples(report: CallReport) -> list[Sample]:
    """Samples in time order, one per start time (a resent segment repeats them)."""
    return in_time_order(report.samples, time_order(report.samples))


def sample_durations(samples: Sequence[Sample]) -> list[float | None]:
    """Each sample's ``end - start`` in seconds (None without an end), in order: the subtraction is
    done once per report, for the facts (processors/facts/rtt.py seconds_of) and the rows."""
    return [(end - s.start).total_seconds() if (end := s.end) is not None else None for s in samples]


def sample_time(s: Sample) -> datetime:
    """When a sample's states were observed: the end of its interval (the getStats call)."""
    return s.end or s.start


def report_origin(report: CallReport, samples: Sequence[Sample] | None = None) -> datetime | None:
    """The earliest timestamp anywhere in the report (``samples``: its ``ordered_samples``, if at
    hand: then the first one's start stands for all of theirs)."""
    times: list[datetime] = [s.at for s in report.states]
    times += [c.gathered_at for c in report.candidates if c.gathered_at is not None]
    times += [e.at for e in report.candidate_errors if e.at is not None]
    times += [p.at for p in report.selected_pairs]
    if samples is None:
        times += [s.start for s in report.samples]
    elif samples:
        times.append(samples[0].start)
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
