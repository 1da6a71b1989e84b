"""Numbers for people: facts rounded to what a measurement can tell, with their unit.

Every function takes ``None`` (a fact the report does not have) and gives ``"-"``.
- latency (RTT, jitter): whole milliseconds, one decimal below 10 ms ("0.4 ms", "77 ms");
- durations: milliseconds below one second ("332 ms", "9.5 ms"), seconds with one decimal up to
  100 s ("2.0 s"), whole seconds above ("754 s");
- distances: whole kilometres with thousands separators ("1,234 km"), one decimal below 10 km;
- percentages: two decimals below 1 %, one below 10 %, whole above ("0.41 %", "1.4 %", "12 %");
- bitrates: kbit/s like distances ("38 kbps"); MOS: two decimals ("4.35").
"""

from __future__ import annotations

import math

NONE = "-"


def _number(value: float, decimals_below_10: int = 1) -> str:
    if not math.isfinite(value):
        return str(value)
    rounded = round(value, decimals_below_10)
    if abs(rounded) < 10 and rounded != int(rounded):
        return f"{rounded:.{decimals_below_10}f}"
    return f"{round(value):,}"


def latency_ms(value: float | None) -> str:
    return NONE if value is None else f"{_number(value)} ms"


def duration_ms(value: float | None) -> str:
    if value is None:
        return NONE
    if value < 1000:
        return f"{_number(value)} ms"
    seconds = value / 1000
    return f"{seconds:.1f} s" if seconds < 100 else f"{round(seconds):,} s"


def offset_ms(value: float | None) -> str:
    """A time from the report's start: ``+2.0 s``."""
    return NONE if value is None else f"+{duration_ms(value)}"


def km(value: float | None) -> str:
    return NONE if value is None else f"{_number(value)} km"


def percent(value: float | None) -> str:
    if value is None:
        return NONE
    if value == 0:
        return "0 %"
    if value < 1:
        return f"{value:.2f} %"
    if value < 10:
        return f"{value:.1f} %"
    return f"{round(value)} %"


def kbps(value: float | None) -> str:
    return NONE if value is None else f"{_number(value)} kbps"


def mos(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 sample``, ``3 samples``, ``1,204 samples``."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"
