"""Line prefixes in front of a coturn message: transport wrappers, then coturn's own prefix.

Wrappers (outermost first, each optional): RFC 5424 and RFC 3164 syslog (with or without
``<PRI>``), ``journalctl`` short/short-iso output, ``journalctl -o json`` objects, the
``MESSAGE=`` field of ``journalctl -o export`` and docker-compose's ``name | `` column.

coturn prefixes (research/turn_logs.md 1.1):

- E1 (<= 4.5.1.x): ``<secs>: msg``, ``<secs>: ERROR: msg``
- E2 (4.5.2-4.6.1): ``<secs>: : msg``, ``<secs>: : ERROR: msg``;
  with --new-log-timestamp ``<iso>: msg``
- E3 (4.6.2-4.16): ``<secs>: (<tid>): INFO: msg``; with --new-log-timestamp ``<iso>(<tid>): INFO: msg``
- E4 (4.17+): ``<iso with ms> INFO msg``; with --new-log-timestamp=false ``<secs> INFO msg``

Pure functions, no I/O. Hot path: cheap character tests first, one regex per recognised shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

LEVELS = frozenset({"INFO", "ERROR", "WARNING", "DEBUG", "CONTROL"})
_MONTHS = {
    m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))
}

# <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD]|- MSG
_RFC5424 = re.compile(r"<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?$", re.S)
# [<PRI>]Mmm dd hh:mm:ss [host] tag[pid]: MSG
_RFC3164 = re.compile(
    r"(?:<\d{1,3}>)?([A-Z][a-z]{2}) ( \d|\d\d) (\d\d):(\d\d):(\d\d) "
    r"(?:([^\s:\[\]]+) )?([^\s:\[]+)(?:\[(\d+)\])?: ?(.*)$",
    re.S,
)
# journalctl -o short-iso / rsyslog high precision: ISO host tag[pid]: MSG
_ISO_HOST_TAG = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) (\S+) ([^\s:\[]+)(?:\[(\d+)\])?: ?(.*)$",
    re.S,
)
_DOCKER = re.compile(r"([A-Za-z0-9][\w.-]*)\s+\| ?(.*)$", re.S)

_COUNTER_E4 = re.compile(r"([0-9]{1,10}) (INFO|ERROR|WARNING|DEBUG|CONTROL) ")
_ISO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)")
_TID_LEVEL = re.compile(r"\((\d+)\): (INFO|ERROR|WARNING|DEBUG|CONTROL): ?")


@dataclass(slots=True)
class Unwrapped:
    """The text a wrapper carried, plus the wall-clock time and host the wrapper added."""

    body: str
    at: datetime | None = None
    host: str | None = None
    wrapper: str | None = None
    pid: str | None = None  # the sender's process id (syslog tag ``turnserver[pid]``)


@dataclass(slots=True)
class CoturnPrefix:
    """coturn's own prefix, split off ``msg``."""

    era: str  # E1 | E2 | E3 | E4 | bare
    msg: str
    level: str | None = None
    uptime: int | None = None  # seconds since process start (E1-E3 and E4 without timestamp)
    at: datetime | None = None  # wall clock printed by coturn (--new-log-timestamp, E4)


_ERA_START = datetime(2000, 1, 1, tzinfo=UTC)
_ERA_END = datetime(2100, 1, 1, tzinfo=UTC)
_EPOCH_END = 4_102_444_800  # 2100-01-01: epoch seconds (or micros) beyond it are taken as no time
_iso_cache: dict[str, datetime] = {}
_bsd_cache: dict[tuple[str, int], datetime] = {}


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 as coturn/journald print it (``+0000``, ``Z``, ``,`` fractions); naive = UTC."""
    hit = _iso_cache.get(text)
    if hit is not None:
        return hit
    try:
        dt = datetime.fromisoformat(text.replace(",", "."))
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 at +01:00 overflows
        return None
    if not _ERA_START <= dt < _ERA_END:  # the contract's era (collector/contract.py Time)
        return None
    if len(_iso_cache) > 4096:
        _iso_cache.clear()
    _iso_cache[text] = dt
    return dt


def _bsd_in_year(m: re.Match[str], year: int) -> datetime | None:
    """The RFC 3164 time of ``m`` in ``year``; None if that day does not exist (Feb 29 of a common year)."""
    key = (m.string[m.start(1) : m.end(5)], year)
    dt = _bsd_cache.get(key)
    if dt is None:
        month = _MONTHS.get(m.group(1))
        if month is None:
            return None
        try:
            dt = datetime(year, month, int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)), tzinfo=UTC)
        except ValueError:
            return None
        if len(_bsd_cache) > 4096:
            _bsd_cache.clear()
        _bsd_cache[key] = dt
    return dt


def _bsd_time(m: re.Match[str], ref: datetime | None) -> datetime | None:
    """RFC 3164 time has no year and no zone: take the year of ``ref`` (UTC, default now), one
    back if that would put the line more than a day in the future or the day is not in that year
    (Feb 29 read in a common year); None if it is in neither (Feb 29 read early in a leap year)."""
    ref = ref or datetime.now(UTC)
    dt = _bsd_in_year(m, ref.year)
    if dt is None or (dt - ref).days >= 1:
        dt = _bsd_in_year(m, ref.year - 1)
    return dt


def micros_time(text: str) -> datetime | None:
    """journald's ``__REALTIME_TIMESTAMP`` (microseconds since the epoch, ASCII digits) before
    2100; None for anything else."""
    if not (0 < len(text) <= 16 and text.isascii() and text.isdigit()):
        return None
    micros = int(text)
    return datetime.fromtimestamp(micros / 1e6, UTC) if micros < _EPOCH_END * 1_000_000 else None


def _journald_json(line: str) -> Unwrapped | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    msg = obj.get("MESSAGE")
    if not isinstance(msg, str):
        return None
    at = None
    ts = obj.get("__REALTIME_TIMESTAMP")
    if isinstance(ts, str):
        at = micros_time(ts)
    host = obj.get("_HOSTNAME")
    return Unwrapped(msg, at, host if isinstance(host, str) else None, "journald-json")


def unwrap(line: str, ref: datetime | None = None) -> Unwrapped:
    """Strip transport wrappers (at most two, e.g. docker inside syslog)."""
    out = Unwrapped(line)
    for _ in range(2):
        body = out.body
        if not body:
            return out
        c = body[0]
        if c == "<":
            m5 = _RFC5424.match(body)
            if m5:
                msg = (m5.group(5) or "").lstrip("\ufeff")
                pid = m5.group(4) if m5.group(4) != "-" else None
                out = Unwrapped(msg, parse_iso(m5.group(1)), m5.group(2), "rfc5424", pid)
                continue
            m3 = _RFC3164.match(body)
            if m3:
                at = _bsd_time(m3, ref)
                out = Unwrapped(m3.group(9), at, m3.group(6), "rfc3164", m3.group(8))
                continue
            return out
        if c.isupper() and body[3:4] == " " and body[:3] in _MONTHS:
            m3 = _RFC3164.match(body)
            if m3:
                at = _bsd_time(m3, ref)
                out = Unwrapped(m3.group(9), at, m3.group(6), "rfc3164", m3.group(8))
                continue
            return out
        if c == "{":
            j = _journald_json(body)
            return j if j is not None else out
        if c == "M" and body.startswith("MESSAGE="):
            return Unwrapped(body[8:], out.at, out.host, "journald-export", out.pid)
        if c.isdigit():
            if body[4:5] == "-" and body[10:11] == "T":
                mi = _ISO_HOST_TAG.match(body)
                if mi and mi.group(2) not in LEVELS:
                    out = Unwrapped(mi.group(5), parse_iso(mi.group(1)), mi.group(2), "journald", mi.group(4))
                    continue
            return out
        if " |" in body[:80]:
            md = _DOCKER.match(body)
            if md:
                out = Unwrapped(md.group(2), out.at, out.host, "docker", out.pid)
                continue
        return out
    return out


def split_coturn(body: str) -> CoturnPrefix | None:
    """coturn's prefix: era, level, uptime or printed time, and the message. None = no prefix."""
    if not body or not body[0].isdigit():
        return None
    if body[4:5] == "-" and body[10:11] == "T":
        mi = _ISO.match(body)
        if mi is None:
            return None
        at = parse_iso(mi.group(1))
        rest = body[mi.end() :]
        if rest.startswith("("):  # E3 with --new-log-timestamp
            mt = _TID_LEVEL.match(rest)
            if mt is None:
                return None
            return CoturnPrefix("E3", rest[mt.end() :], mt.group(2), None, at)
        if rest.startswith(": ") or rest == ":":  # E2 (or E1) with --new-log-timestamp
            msg = rest[2:]
            if msg.startswith(": "):
                msg = msg[2:]
            if msg.startswith("ERROR: "):
                return CoturnPrefix("E2", msg[7:], "ERROR", None, at)
            return CoturnPrefix("E2", msg, "INFO", None, at)
        if rest.startswith(" "):  # E4
            sp = rest.find(" ", 1)
            level = rest[1:sp] if sp > 0 else rest[1:]
            if level in LEVELS:
                return CoturnPrefix("E4", rest[sp + 1 :] if sp > 0 else "", level, None, at)
        return None
    t = split_counter(body)
    if t is not None:
        return CoturnPrefix(*t)
    m = _COUNTER_E4.match(body)  # E4 without timestamp: "<secs> LEVEL msg"
    if m is None:
        return None
    return CoturnPrefix("E4", body[m.end() :], m.group(2), int(m.group(1)), None)


Counter = tuple[str, str, str, int | None, datetime | None]  # era, msg, level, uptime, at


def split_counter(body: str) -> Counter | None:
    """The E1-E3 prefix ``<secs>: ...`` (the common case, so a tuple and no object): ``(era, msg,
    level, uptime, at)``, or None when ``body`` does not start with 1-10 ASCII digits and a colon."""
    head, sep, rest = body.partition(":")
    if not sep or not (0 < len(head) <= 10 and head.isascii() and head.isdigit()):
        return None
    secs = int(head)
    if rest[:1] == " ":
        rest = rest[1:]
    uptime: int | None = secs
    at = None
    if secs >= 1_000_000_000:  # rfc5766-turn-server printed epoch seconds
        uptime = None
        if secs < _EPOCH_END:
            at = datetime.fromtimestamp(secs, UTC)
    if rest[:1] == "(":  # E3: "(tid): LEVEL: msg", split by hand (the hot path of 4.6-4.16 logs)
        close = rest.find("): ", 1, 24)
        if close > 1 and rest[1:close].isdigit():
            colon = rest.find(":", close + 3, close + 13)
            level = rest[close + 3 : colon]
            if colon > 0 and level in LEVELS:
                start = colon + 2 if rest[colon + 1 : colon + 2] == " " else colon + 1
                return "E3", rest[start:], level, uptime, at
    if rest.startswith(": ") or rest == ":":
        msg = rest[2:]
        if msg.startswith("ERROR: "):
            return "E2", msg[7:], "ERROR", uptime, at
        return "E2", msg, "INFO", uptime, at
    if rest.startswith("ERROR: "):
        return "E1", rest[7:], "ERROR", uptime, at
    return "E1", rest, "INFO", uptime, at
