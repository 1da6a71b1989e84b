"""tests/recent_times.py: every UTC time in a document's strings moves by the same amount, keeps its
format, and the earliest lands where asked; nothing else changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.recent_times import moved_to_recent, shift_iso_times

DOC: dict[str, Any] = {
    "summary": {"startTimestamp": "2026-11-20T14:03:07.412Z", "endTimestamp": "2026-11-20T14:03:12.824Z"},
    "stats": [{"intervalStartUtc": "2026-11-20T14:03:08Z", "at": "2026-11-20T14:03:09.5+00:00"}],
    "logs": [{"timestamp": "2026-11-20T14:03:10.000001Z", "message": "2026-11-20T14:03:07.412Z in a sentence"}],
    "not times": ["2026-11-20", "2026-11-20T14:03:07", "2026-11-20T14:03:07.412+01:00", 1795688204, None],
}


def test_every_time_moves_by_the_delta_in_its_own_format_with_more_digits_only_when_needed() -> None:
    moved = shift_iso_times(DOC, timedelta(days=40, milliseconds=1))
    assert moved["summary"] == {"startTimestamp": "2026-12-30T14:03:07.413Z",
                                "endTimestamp": "2026-12-30T14:03:12.825Z"}
    assert moved["stats"] == [{"intervalStartUtc": "2026-12-30T14:03:08.001Z", "at": "2026-12-30T14:03:09.501+00:00"}]
    assert moved["logs"][0]["timestamp"] == "2026-12-30T14:03:10.001001Z"
    assert moved["logs"][0]["message"] == "2026-12-30T14:03:07.413Z in a sentence"  # times inside text too
    # dates, naive times, other zones and numbers stay as they are
    assert moved["not times"] == DOC["not times"]
    assert DOC["summary"]["startTimestamp"] == "2026-11-20T14:03:07.412Z"  # the input is not changed


def test_the_earliest_time_lands_ago_before_now_and_the_spans_stay() -> None:
    before = datetime.now(UTC)
    moved = moved_to_recent(DOC, ago=timedelta(minutes=10))
    after = datetime.now(UTC)
    start = datetime.fromisoformat(moved["summary"]["startTimestamp"])
    end = datetime.fromisoformat(moved["summary"]["endTimestamp"])
    assert before - timedelta(minutes=10, milliseconds=1) <= start <= after - timedelta(minutes=10)
    assert end - start == timedelta(seconds=5, milliseconds=412)
    assert start.microsecond % 1000 == 0
