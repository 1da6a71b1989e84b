"""Chrome ``chrome://webrtc-internals`` dumps: one CallReport per peer connection.

``PeerConnections[<key>].stats`` holds one series per ``"<statsId>-<property>"`` with
``values`` a JSON array in a string. Since M117 a ``"<statsId>-timestamp"`` series gives each
sample's time; in older dumps a series' last value is at its ``endTime`` and the others one poll
apart before it (``_series_times``; series ends under 500 ms apart are one poll). The stats type is the
series' ``statsType``, else a ``-type`` series, else the id's prefix (Chrome before M117, legacy
ids included: ``_ID_PREFIX_TYPES``). The series are folded back into getStats snapshots: one per
poll time, each object with its latest sample at or before it. Legacy goog* objects are read by
collector/reports/legacy_stats.py when the peer connection has no standard pair or transport.
``updateLog`` gives states, candidates and icecandidateerror, in the new form
(``{type, value, timestamp}``, JSON-encoded values) and the old one (``{time, type, value}``
with a locale time string and plain values).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from collector.contract import MAX_PEER_CONNECTIONS, CallReport
from collector.contract import MAX_SAMPLES as MAX_REPORT_SAMPLES
from collector.errors import PayloadTooLarge, UnsupportedFormat
from collector.reports._events import (
    MAX_STATS_OBJECTS,
    PeerConnectionLog,
    ice_server_urls,
    transport_policy,
)
from collector.reports._values import browser_from_user_agent, epoch_ms, iso_time, num, require_obj, text
from collector.reports.budget import MAX_PROPERTIES, Budget, check_properties
from collector.reports.context import UploadContext
from collector.reports.stats_series import SeriesMeta, build_report

# Old Chrome (< M90 or so) updateLog event names -> the current ones.
_OLD_EVENTS = {
    "iceConnectionStateChange": "oniceconnectionstatechange",
    "connectionStateChange": "onconnectionstatechange",
    "iceGatheringStateChange": "onicegatheringstatechange",
    "signalingStateChange": "onsignalingstatechange",
    "onIceCandidate": "onicecandidate",
    "icecandidateerror": "onicecandidateerror",
}
_OLD_TIME_FORMATS = ("%m/%d/%Y, %I:%M:%S %p", "%d/%m/%Y, %H:%M:%S", "%m/%d/%Y, %H:%M:%S", "%d.%m.%Y, %H:%M:%S")
_SDP_CANDIDATE = re.compile(r"candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ \S+[^,\n]*")
_OLD_KV = re.compile(r"(\w+): ([^,]*)")
_URL = re.compile(r"(?:stuns?|turns?):[^\s,'\"\]\}]+")
_POLICY = re.compile(r"iceTransportPolicy\W+(all|relay)")
_OLD_TEXT_CHARS = 4096  # an old candidate line or error text is well under 1 KB
# Samples per property series without a timestamp series; Chrome keeps at most 1000.
MAX_SAMPLES = 20_000
# Stats ids of one peer connection (a long SFU call with many tracks and candidates has a few thousand).
MAX_OBJECTS = 20_000
# Objects whose own timestamp is a remote (RTCP) time rather than the poll time.
_REMOTE_TYPES = frozenset({"remote-inbound-rtp", "remote-outbound-rtp"})
# Placeholder types of candidates whose id does not say which side they are on.
_CANDIDATE = "?candidate"
_LEGACY_CANDIDATE = "?legacy-candidate"


def _old_time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    for fmt in _OLD_TIME_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _values(series: object) -> list[Any] | None:
    raw = series.get("values") if isinstance(series, dict) else None
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
    return raw if isinstance(raw, list) else None


def _ms(value: object) -> float | None:
    """A series start/end time: ISO string (current Chrome) or epoch ms."""
    if isinstance(value, str):
        return _iso_ms(value) if len(value) <= 64 else None
    return num(value)


@functools.lru_cache(maxsize=4096)
def _iso_ms(value: str) -> float | None:
    """The series of a dump share a few start/end strings: each is read once."""
    dt = iso_time(value)
    return dt.timestamp() * 1000.0 if dt else None


# Stats ids of Chrome before M117 name their type (rtc_stats_collector.cc, legacy stats_types.cc);
# dumps of Chrome around M86-M90 and earlier have no statsType and often no type series.
# Lower-case prefixes, longest first where one is the start of another.
_ID_PREFIX_TYPES: tuple[tuple[str, str], ...] = (
    ("rtcicecandidatepair_", "candidate-pair"),
    ("rtcicecandidate_", _CANDIDATE),
    ("rtctransport_", "transport"),
    ("rtcinboundrtp", "inbound-rtp"),
    ("rtcoutboundrtp", "outbound-rtp"),
    ("rtcremoteinboundrtp", "remote-inbound-rtp"),
    ("rtcremoteoutboundrtp", "remote-outbound-rtp"),
    ("rtccodec_", "codec"),
    ("rtccertificate_", "certificate"),
    ("rtcpeerconnection", "peer-connection"),
    ("rtcmediastreamtrack_", "track"),
    ("rtcmediastream_", "stream"),
    ("rtcaudiosource_", "media-source"),
    ("rtcvideosource_", "media-source"),
    ("rtcdatachannel_", "data-channel"),
    ("conn-", "googCandidatePair"),
    ("channel-", "googComponent"),
    ("cand-", _LEGACY_CANDIDATE),
    ("ssrc_", "ssrc"),
    ("bweforvideo", "VideoBwe"),
    ("googtrack_", "googTrack"),
    ("googcertificate_", "googCertificate"),
    ("googlibjinglesession_", "googLibjingleSession"),
)
# Epoch ms below which sample times are keyed with floor() (year ~33,000; beyond, round()).
_FAST_KEYS_BELOW = 1e15
# Sample times of untimed series by (endTime, startTime, count), shared by one object's properties.
_TimesCache = dict[tuple[float | None, float | None, int], list[float]]
# Polls of a dump without per-sample times: series ends closer than this are one poll.
_SAME_POLL_MS = 500.0
# The poll spacing a series without timestamps may show (webrtc-internals polls every second).
_MIN_STEP_MS, _MAX_STEP_MS = 900.0, 120_000.0


def type_from_id(sid: str) -> str | None:
    """The stats type an id of Chrome before M117 implies (candidates: see ``_candidate_types``)."""
    low = sid[:32].lower()
    return next((typ for prefix, typ in _ID_PREFIX_TYPES if low.startswith(prefix)), None)


class _Object:
    """One stats object's samples: sorted times and, per time index, its property values."""

    __slots__ = ("rows", "times", "type")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rows: list[dict[str, Any]] = []
        self.type: str | None = None


def _series_times(series: dict[str, Any], n: int, grid0: float, cache: _TimesCache) -> list[float]:
    """Sample times of a series without a timestamp series: the last one at the series' ``endTime``
    (Chrome appends each poll's value and moves endTime), the others evenly before it. The spacing
    is the series' own, (endTime - startTime) / (n - 1), when that lies between 0.9 s and 120 s:
    1 s for a page polling every second, longer when Chrome throttled the webrtc-internals tab in
    the background; else 1 s. Without endTime, counted from ``startTime``, else from the dump's
    earliest time. Times are rounded to the microsecond (the poll keys) and computed once per
    (end, start, count): the properties of one object share them."""
    end, start = _ms(series.get("endTime")), _ms(series.get("startTime"))
    key = (end, start, n)
    known = cache.get(key)
    if known is not None:
        return known
    step = 1000.0
    if end is not None and start is not None and n > 1 and _MIN_STEP_MS <= (end - start) / (n - 1) <= _MAX_STEP_MS:
        step = (end - start) / (n - 1)
    first = end - step * (n - 1) if end is not None else (grid0 if start is None else start)
    last = first + step * (n - 1)
    if abs(first) < _FAST_KEYS_BELOW and abs(last) < _FAST_KEYS_BELOW:
        # floor(x + 0.5) rather than round(x, 3): the same microsecond keys at a tenth of the cost
        times = [math.floor((first + step * j) * 1000.0 + 0.5) / 1000.0 for j in range(n)]
    else:  # far outside any real time (dropped later): round() copes with every finite value
        times = [round(first + step * j, 3) for j in range(n)]
    cache[key] = times
    return times


def _timestamps(values: list[Any] | None) -> list[float]:
    """A ``-timestamp`` series as epoch ms, or [] unless every value is a finite number in order.
    (Checked with C-level passes: a crafted series may hold a million values.)"""
    if not values or not set(map(type, values)) <= {int, float}:  # bool is not a number
        return []
    try:
        ts = list(map(float, values))
    except OverflowError:
        return []
    if not all(map(math.isfinite, ts)) or ts != sorted(ts):
        return []
    return ts


def _timed_object(props: dict[str, dict[str, Any]], ts: list[float]) -> _Object:
    """An object with a ``-timestamp`` series: each property's values placed on those times."""
    o = _Object()
    o.times = ts
    o.rows = [{} for _ in ts]
    for prop, series in props.items():
        vals = _values(series) if prop != "timestamp" else None
        if not vals:
            continue
        start = _ms(series.get("startTime"))
        first = 0 if start is None else bisect.bisect_left(ts, start - 1.0)
        for j, v in enumerate(vals[: max(0, len(ts) - first)]):
            o.rows[first + j][prop] = v
    return o


def _too_many_rows() -> PayloadTooLarge:
    return PayloadTooLarge(f"more than {MAX_STATS_OBJECTS} stats object samples in one peer connection")


def _untimed_object(
    props: dict[str, dict[str, Any]], grid0: float, limit: int, budget: Budget, cache: _TimesCache
) -> _Object:
    """An object without a ``-timestamp`` series; at most ``limit`` distinct sample times, each
    charged to the upload's budget as soon as a series adds it."""
    o = _Object()
    rows: dict[float, dict[str, Any]] = {}
    row_lists: dict[int, list[dict[str, Any]]] = {}  # id of a cached times list -> its rows
    charged = 0
    for prop, series in props.items():
        vals = _values(series)
        if not vals:
            continue
        vals = vals[-MAX_SAMPLES:]  # Chrome keeps the last 1000 of each property
        times = _series_times(series, len(vals), grid0, cache)
        row_list = row_lists.get(id(times))
        if row_list is None:
            row_list = row_lists[id(times)] = [rows.get(t) or rows.setdefault(t, {}) for t in times]
        for row, v in zip(row_list, vals, strict=True):
            row[prop] = v
        if len(rows) > limit:
            raise _too_many_rows()
        budget.charge_objects(len(rows) - charged)
        charged = len(rows)
    o.times = sorted(rows)
    o.rows = [rows[t] for t in o.times]
    return o


def _candidate_types(objects: dict[str, _Object]) -> None:
    """Candidates whose id does not say local or remote: ``isRemote`` (standard), else which side
    of a pair names them (standard and legacy); a candidate nothing names is dropped."""
    local: set[str] = set()
    remote: set[str] = set()
    for o in objects.values():
        if o.type in ("candidate-pair", "googCandidatePair"):
            for row in o.rows:
                if isinstance(lid := row.get("localCandidateId"), str):
                    local.add(lid)
                if isinstance(rid := row.get("remoteCandidateId"), str):
                    remote.add(rid)
    for sid, o in list(objects.items()):
        if o.type not in (_CANDIDATE, _LEGACY_CANDIDATE):
            continue
        legacy = o.type == _LEGACY_CANDIDATE
        flags = (r.get("isRemote") for r in reversed(o.rows))
        flag = next((f for f in flags if f in (True, False, "true", "false")), None)
        is_remote: bool | None = flag in (True, "true") if flag is not None else None
        if is_remote is None and (sid in local or sid in remote):
            is_remote = sid in remote
        if is_remote is None:
            del objects[sid]
        elif legacy:
            o.type = "remotecandidate" if is_remote else "localcandidate"
        else:
            o.type = "remote-candidate" if is_remote else "local-candidate"


def _polls(objects: dict[str, _Object], timed: bool) -> list[float]:
    polls = sorted({t for o in objects.values() if o.type not in _REMOTE_TYPES for t in o.times}) or sorted(
        {t for o in objects.values() for t in o.times}
    )
    if timed or not polls:
        return polls
    merged = [polls[0]]
    first = polls[0]
    for t in polls[1:]:
        if t - first < _SAME_POLL_MS:
            merged[-1] = t
        else:
            merged.append(t)
            first = t
    return merged


def _fold(stats: dict[str, Any], budget: Budget) -> list[tuple[datetime, dict[str, dict[str, Any]]]]:
    """The per-property series of one peer connection back into getStats snapshots."""
    by_id: dict[str, dict[str, Any]] = {}
    for key, series in stats.items():
        if "[" in key or not isinstance(series, dict):
            continue  # "<id>-[a-b]" series are values computed by the internals page
        sid, sep, prop = key.rpartition("-")
        if not sep or not sid or not prop:
            continue
        props = by_id.setdefault(sid, {})
        props[prop] = series
        if len(props) > MAX_PROPERTIES:
            check_properties(len(props), f"stats.{sid[:80]}")
    if len(by_id) > MAX_OBJECTS:
        raise PayloadTooLarge(f"{len(by_id)} stats objects in one peer connection; at most {MAX_OBJECTS}")

    times = [
        t for props in by_id.values() for p in props.values() for k in ("startTime", "endTime") if (t := _ms(p.get(k)))
    ]
    grid0 = min(times) if times else 0.0
    objects: dict[str, _Object] = {}
    times_cache: _TimesCache = {}
    timed = False
    rows = 0  # sample rows of all objects: bounds memory whatever the series' times say
    for sid, props in by_id.items():
        ts = _timestamps(_values(props.get("timestamp")))
        if ts:
            if rows + len(ts) > MAX_STATS_OBJECTS:
                raise _too_many_rows()
            budget.charge_objects(len(ts))  # each sample time of the object is a poll it is in
            o = _timed_object(props, ts)
            timed = True
        else:
            o = _untimed_object(props, grid0, MAX_STATS_OBJECTS - rows, budget, times_cache)
        rows += len(o.times)
        o.type = next((t for p in props.values() if isinstance(t := p.get("statsType"), str)), None)
        if o.type is None:
            o.type = next((r["type"] for r in reversed(o.rows) if isinstance(r.get("type"), str)), None)
        if o.type is None:
            o.type = type_from_id(sid)
        if o.type is not None and o.times:
            objects[sid] = o
    _candidate_types(objects)

    polls = _polls(objects, timed)
    if len(polls) > MAX_REPORT_SAMPLES:
        raise PayloadTooLarge(f"{len(polls)} sample times in one peer connection; at most {MAX_REPORT_SAMPLES}")
    if len(polls) * len(objects) > MAX_STATS_OBJECTS:
        raise PayloadTooLarge(f"{len(polls)} sample times x {len(objects)} stats objects is too large a dump")
    budget.charge_samples(len(polls))
    present = 1.0 if timed else _SAME_POLL_MS * 2 - 1.0
    snapshots: list[tuple[datetime, dict[str, dict[str, Any]]]] = []
    entries, prepaid = 0, rows  # snapshot entries; the objects' rows were charged as they were read
    # per object: id, times, rows, type, first time, last time it is still present at
    spans = [
        (sid, o.times, o.rows, o.type, o.times[0], o.times[-1] + (5000.0 if o.type in _REMOTE_TYPES else present))
        for sid, o in objects.items()
    ]
    bisect_right = bisect.bisect_right
    for p in polls:
        at = epoch_ms(p)
        if at is None:
            continue
        snap: dict[str, dict[str, Any]] = {}
        q = p + 1.0
        for sid, times, obj_rows, typ, first, last in spans:
            if q < first or p > last:
                continue
            i = bisect_right(times, q) - 1
            if i < 0:
                continue
            snap[sid] = {**obj_rows[i], "id": sid, "type": typ}
        entries += len(snap)
        if entries > prepaid:
            budget.charge_objects(entries - prepaid)
            prepaid = entries
        snapshots.append((at, snap))
    return snapshots


def _event_time(entry: dict[str, Any]) -> datetime | None:
    ts = num(entry.get("timestamp"))
    if ts is not None:
        return epoch_ms(ts)
    return _old_time(entry.get("time"))


def _old_value(method: str, value: object) -> object:
    """Old Chrome writes plain text values: candidates and errors as "key: value, ..." text. Only
    their first ``_OLD_TEXT_CHARS`` are searched (a crafted "candidate:candidate:..." would make
    the candidate pattern retry at every repetition over the rest of the text)."""
    if not isinstance(value, str):
        return value
    if method in ("onicecandidate", "addIceCandidate"):
        m = _SDP_CANDIDATE.search(value[:_OLD_TEXT_CHARS])
        return m.group(0) if m else value
    if method == "onicecandidateerror" and not value.startswith("{"):
        fields: dict[str, object] = {k: v.strip() for k, v in _OLD_KV.findall(value[:_OLD_TEXT_CHARS])}
        code = str(fields.get("error_code", ""))
        fields["error_code"] = int(code) if code.isascii() and code.isdigit() and len(code) < 6 else None
        return fields
    return value


def _configure(pc: PeerConnectionLog, config: object) -> None:
    if isinstance(config, dict):
        pc.configure(config)
        return
    if not isinstance(config, str):
        return
    try:
        parsed = orjson.loads(config)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        pc.ice_servers = ice_server_urls(parsed.get("iceServers"))
        pc.policy = transport_policy(parsed.get("iceTransportPolicy"))
        return
    # Old Chrome: "{ iceServers: [stun:..., turn:...], iceTransportPolicy: all, ... }"
    urls = _URL.findall(config)
    pc.ice_servers = [[u] for u in urls]
    m = _POLICY.search(config)
    pc.policy = transport_policy(m.group(1)) if m else None


def parse(document: object, ctx: UploadContext, base: str, budget: Budget | None = None) -> list[CallReport]:
    budget = budget or Budget.for_body(0)
    d = require_obj(document, "$")
    pcs_raw = d.get("PeerConnections")
    if not isinstance(pcs_raw, dict) or not pcs_raw:
        raise UnsupportedFormat("no peer connections in this dump")
    user_agent = text(d.get("UserAgent")) or ctx.user_agent
    out: list[CallReport] = []
    if len(pcs_raw) > MAX_PEER_CONNECTIONS:
        raise PayloadTooLarge(
            f"{len(pcs_raw)} peer connections; at most {MAX_PEER_CONNECTIONS} per dump", path="PeerConnections"
        )
    for pc_key, raw in pcs_raw.items():
        pc_obj = require_obj(raw, f"PeerConnections.{pc_key}")
        pc = PeerConnectionLog(budget=budget)
        _configure(pc, pc_obj.get("rtcConfiguration"))
        log = pc_obj.get("updateLog")
        for entry in log if isinstance(log, list) else ():
            typ = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(entry, dict) or not isinstance(typ, str):
                continue
            method = _OLD_EVENTS.get(typ, typ)
            at = _event_time(entry)
            value = entry.get("value")
            if "timestamp" not in entry:
                value = _old_value(method, value)
            pc.apply(method, at, value)
        stats = pc_obj.get("stats")
        for at, snap in _fold(stats, budget) if isinstance(stats, dict) else ():
            pc.add_snapshot(at, snap)
        meta = SeriesMeta(
            call_id=f"{base}:{pc_key}",
            source_format="webrtc-internals",
            peer_connection_id=pc_key,
            browser=browser_from_user_agent(user_agent),
            user_agent=user_agent,
            client_address=ctx.client_address,
            ice_servers=pc.ice_servers,
            ice_transport_policy=pc.policy,
        )
        out.append(build_report(meta, pc.stats_series(), pc.events))
    return out
