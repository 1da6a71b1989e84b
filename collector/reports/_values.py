"""Small, total helpers for reading untrusted JSON values.

Everything here either returns a typed value (or None) or raises ``InvalidInput`` with the
JSON path that failed. Nothing raises KeyError/TypeError/ValueError on odd input.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from datetime import UTC, datetime
from typing import Any

from collector.errors import InvalidInput

JsonObject = dict[str, Any]

# Epoch milliseconds accepted as a timestamp: 1970 .. year 9999 (datetime's limit).
_MAX_EPOCH_MS = 253_402_300_799_000.0


_NUMBER = (int, float)  # a tuple: `int | float` would build a union object on every call


def num(value: object) -> float | None:
    """A finite number (bool is not a number), else None."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def count(value: object) -> int | None:
    """A non-negative integer counter (integral floats accepted), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    return None


def integer(value: object) -> int | None:
    """Any integer (integral floats accepted), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# Epoch seconds sent where milliseconds are expected (a common SDK mistake) are unambiguous: as
# milliseconds they would fall in the first weeks of 1970, as seconds they fall in 2000-5138.
_SECONDS_FROM, _SECONDS_BELOW = 946_684_800.0, 1e11


def epoch_ms(ms: float) -> datetime | None:
    """Epoch milliseconds as an aware UTC datetime (epoch seconds are recognised and converted)."""
    if _SECONDS_FROM <= ms < _SECONDS_BELOW:
        ms *= 1000.0
    if not 0.0 <= ms <= _MAX_EPOCH_MS:
        return None
    return datetime.fromtimestamp(ms / 1000.0, UTC)


def iso_time(value: str) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime (naive means UTC), else None."""
    s = value.strip()
    if not 10 <= len(s) <= 64:
        return None
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def when(value: object) -> datetime | None:
    """Epoch milliseconds (number) or an ISO-8601 string, else None."""
    f = num(value)
    if f is not None:
        return epoch_ms(f)
    if isinstance(value, str):
        return iso_time(value)
    return None


def require_obj(value: object, path: str) -> JsonObject:
    if not isinstance(value, dict):
        raise InvalidInput("expected a JSON object", path=path)
    return value


def require_list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput("expected a JSON array", path=path)
    return value


def require_time(value: object, path: str) -> datetime:
    dt = when(value)
    if dt is None:
        raise InvalidInput("expected a timestamp (epoch ms or ISO-8601 string)", path=path)
    return dt


def optional_time(value: object, path: str) -> datetime | None:
    return None if value is None else require_time(value, path)


def require_text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("expected a non-empty string", path=path)
    return value


def optional_text(value: object, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("expected a string", path=path)
    return value


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of a phone number or user id (hex); the clear value is never kept."""
    return hmac.new(key, value.strip().encode(), hashlib.sha256).hexdigest()


class DeltaTracker:
    """Turns cumulative counters into per-interval deltas, one baseline per counter identity.

    A counter seen for the first time yields its own value (it counted from zero), unless the
    tracker was told the baseline is unknown (a later segment of a call), then None. A counter
    that went backwards was reset (pair switch, ICE restart, SDK restart): the delta is the new
    value, counted from zero again. ``monotonic=False`` is for counters that may legitimately
    shrink a little (packetsLost after duplicates, even below 0): a decrease gives 0.
    """

    __slots__ = ("_last", "unknown_baseline")

    def __init__(self, unknown_baseline: bool = False) -> None:
        self._last: dict[str, int] = {}
        self.unknown_baseline = unknown_baseline

    def delta(self, key: str, value: int | None, monotonic: bool = True) -> int | None:
        if value is None:
            return None
        prev = self._last.get(key)
        self._last[key] = value
        if prev is None:
            if self.unknown_baseline:
                return None
            return value if monotonic else max(value, 0)
        if value >= prev:
            return value - prev
        return value if monotonic else 0


_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/([\d.]+)")),
    ("Firefox", re.compile(r"Firefox/([\d.]+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/([\d.]+)")),
    ("Safari", re.compile(r"Version/([\d.]+).*Safari/")),
)


def browser_from_user_agent(user_agent: str | None) -> str | None:
    """ "Chrome 117.0.0.0" style name and version from a User-Agent string."""
    if not user_agent:
        return None
    for name, pattern in _BROWSERS:
        m = pattern.search(user_agent[:1024])
        if m:
            return f"{name} {m.group(1)}"
    return None
