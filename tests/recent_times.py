"""Committed documents with fixed ISO-8601 UTC times (``2026-11-26T07:01:14.488Z``), moved to now.

The collector accepts reports from the last 29 days only, and the store's TTLs drop rows older than
their tables keep (call samples and TURN events 30 days, calls 400), so a test that uploads or stores
such a document moves every time in it by the same amount first, in values and inside text (the
Telnyx SDK's log messages start with their own time): the earliest lands ``ago`` before now, the
spans between times stay, and each string keeps its own format (``Z`` or ``+00:00``, the digits of its
fraction unless the moved time needs more).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

# A UTC time: date, time, optional fraction, then Z or +00:00 (not part of a longer run of digits).
_ISO_UTC = re.compile(r"(?<!\d)(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|\+00:00)(?!\d)")


def _parse(m: re.Match[str]) -> datetime:
    frac = (m.group(3) or "").ljust(6, "0")
    return datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{frac}+00:00")


def _format_like(m: re.Match[str], at: datetime) -> str:
    out = at.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{at.microsecond:06d}"
    digits = len(m.group(3) or "")
    if frac[digits:].strip("0"):  # the moved time needs more digits than the string had: never round
        digits = 3 if frac[3:] == "000" else 6
    if digits:
        out += "." + frac[:digits]
    return out + m.group(4)


def _times(node: Any) -> list[datetime]:
    if isinstance(node, dict):
        return [t for v in node.values() for t in _times(v)]
    if isinstance(node, list):
        return [t for v in node for t in _times(v)]
    if isinstance(node, str):
        return [_parse(m) for m in _ISO_UTC.finditer(node)]
    return []


def shift_iso_times(node: Any, delta: timedelta) -> Any:
    """A copy of ``node`` (JSON values) with every UTC time in its strings moved by ``delta``."""
    if isinstance(node, dict):
        return {k: shift_iso_times(v, delta) for k, v in node.items()}
    if isinstance(node, list):
        return [shift_iso_times(v, delta) for v in node]
    if isinstance(node, str):
        return _ISO_UTC.sub(lambda m: _format_like(m, _parse(m) + delta), node)
    return node


def moved_to_recent(node: Any, ago: timedelta = timedelta(minutes=10)) -> Any:
    """``node`` with its times moved so the earliest is ``ago`` before now, on a whole millisecond
    (fractions of three digits move exactly)."""
    times = _times(node)
    assert times, "no ISO-8601 UTC time in the document"
    start = datetime.now(UTC) - ago
    start = start.replace(microsecond=start.microsecond // 1000 * 1000)
    return shift_iso_times(node, start - min(times))
