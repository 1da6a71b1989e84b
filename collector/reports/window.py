"""What a 202 promises: the report will be queryable. Checked at the HTTP edge (not by ``explain``,
which reads old captures): every time in the report lies within the window the tables keep, the
report spans at most ``MAX_SPAN``, and it holds something to store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from collector.contract import CallReport
from collector.errors import InvalidInput
from collector.retention import CALL_REPORT_MAX_AGE, MAX_AHEAD

# The window of times (collector/retention.py): the samples of a call are kept 30 days, the
# shortest retention of a call's rows, so an older report would lose them at once. Older captures
# are for `icewatch explain`, which reads them without storing them.

# One report covers one call or one segment; a longer span is a broken clock, and would spread one
# insert over more daily partitions than ClickHouse takes in one block.
MAX_SPAN = timedelta(days=2)


def _times(report: CallReport) -> Iterator[tuple[str, datetime]]:
    if report.started_at is not None:
        yield "started_at", report.started_at
    if report.ended_at is not None:
        yield "ended_at", report.ended_at
    for i, s in enumerate(report.samples):
        yield f"samples[{i}].start", s.start
        if s.end is not None:
            yield f"samples[{i}].end", s.end
    for i, st in enumerate(report.states):
        yield f"states[{i}].at", st.at
    for i, c in enumerate(report.candidates):
        if c.gathered_at is not None:
            yield f"candidates[{i}].gathered_at", c.gathered_at
    for i, e in enumerate(report.candidate_errors):
        if e.at is not None:
            yield f"candidate_errors[{i}].at", e.at
    for i, p in enumerate(report.selected_pairs):
        yield f"selected_pairs[{i}].at", p.at


def check_queryable(report: CallReport, now: datetime) -> None:
    """InvalidInput naming the first field that would make the report vanish or be refused by the store."""
    if not (report.samples or report.states or report.candidates or report.candidate_errors
            or report.selected_pairs):
        raise InvalidInput(f"report {report.call_id!r} holds no stats, states, candidates or errors: nothing to store")
    earliest: tuple[str, datetime] | None = None
    latest: tuple[str, datetime] | None = None
    for path, at in _times(report):
        if at < now - CALL_REPORT_MAX_AGE:
            raise InvalidInput(f"{at.isoformat()} is more than {CALL_REPORT_MAX_AGE.days} days old: it would expire "
                               "before it could be queried (seconds sent as milliseconds?)", path)
        if at > now + MAX_AHEAD:
            raise InvalidInput(f"{at.isoformat()} is in the future (milliseconds sent as microseconds?)", path)
        if earliest is None or at < earliest[1]:
            earliest = (path, at)
        if latest is None or at > latest[1]:
            latest = (path, at)
    if earliest is not None and latest is not None and latest[1] - earliest[1] > MAX_SPAN:
        raise InvalidInput(f"the report spans {latest[1] - earliest[1]} (from {earliest[0]} to this field); "
                           f"at most {MAX_SPAN.days} days", latest[0])
