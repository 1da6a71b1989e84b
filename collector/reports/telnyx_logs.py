"""The ``logs`` block of a Telnyx JS SDK call report: exact state-change times, the SDK's own
call-establishment timings and its warnings.

The SDK (``@telnyx/webrtc`` 2.27.x, ``LogCollector``) copies every line of its logger into the
report as ``{timestamp, level, message, context?}`` (``timestamp`` is ISO-8601 at the time of
the call; a logger call with extra arguments gets ``context = {"args": [...]}``). The lines read
here, as the 2.27.10 bundle writes them:

- ``[<ISO>] ICE Connection State`` with ``context.args[0]`` the new ``iceConnectionState``
  (debug level), ``[<ISO>] ICE Gathering State`` likewise (``iceGatheringState``), and
  ``[<ISO>] Connection State changed: <previous> -> <new>`` (info, ``connectionState``). They
  are logged in the state-change handlers, so they time a change exactly, where a stats
  interval only sees it at its end (up to an interval late).
- ``[CallTimings][<direction>][<mode>] <step label>  <delta>ms  <from start>ms`` (info), one
  line per step once the call is active: milliseconds from the SDK's ``new-call-start`` mark,
  which is taken when the call object (and the report's ``summary.startTimestamp``) is created.
  "ICE connection established" is ``iceConnectionState`` connected; "Secure media channel
  established (DTLS)" is ``connectionState`` connected (ICE and DTLS up); "All ICE candidates
  gathered" is gathering complete.
- ``[<call id>] Warning <code>: <message>`` and ``CallReportCollector: warning <code>:
  <message>`` (warn): the SDK's warnings (``SDK_WARNINGS``, e.g. 33005 "Only local network
  candidates available", 31001 high RTT).

The block is written by the client, so it is read defensively: at most ``MAX_LOG_ENTRIES``
entries and the first ``MAX_MESSAGE_CHARS`` characters of a message; an entry that is not an
object, has no readable time, or says something unknown is skipped (never a rejection of the
report: the stats are what the report is for). Only known state names become state changes.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collector.contract import ERA_END, ERA_START, MAX_STATES, ReportNote, StateChange, StateKind
from collector.reports._values import iso_time

MAX_LOG_ENTRIES = 10_000  # the SDK keeps 1,000 by default (debugLogMaxEntries) and flushes at 800
MAX_MESSAGE_CHARS = 1_000
MAX_WARNING_CODES = 50  # distinct SDK warning codes kept per report (one note each)
MAX_TIMING_STEPS = 40  # the 2.27.10 SDK knows 20 steps
MAX_LOG_STATES = 5_000  # state changes taken from the lines (a report holds at most 10,000 in all)

_STATES: dict[StateKind, frozenset[str]] = {
    "ice": frozenset({"new", "checking", "connected", "completed", "disconnected", "failed", "closed"}),
    "gathering": frozenset({"new", "gathering", "complete"}),
    "connection": frozenset({"new", "connecting", "connected", "disconnected", "failed", "closed"}),
}
_STAMP = r"\[(?P<at>[0-9T:.+\-Z ]{10,40})\]"
_ICE = re.compile(rf"^{_STAMP} ICE Connection State$")
_GATHERING = re.compile(rf"^{_STAMP} ICE Gathering State$")
_CONNECTION = re.compile(rf"^{_STAMP} Connection State changed: (?P<prev>[a-z]{{1,16}}) -> (?P<state>[a-z]{{1,16}})$")
_TIMING = re.compile(
    r"^\[CallTimings\]\[(?P<direction>[a-z]{1,16})\]\[(?P<mode>[a-z\-]{1,16})\] (?P<label>\S.{0,99}?) +"
    r"(?P<delta>-|-?\d{1,9}(?:\.\d{1,6})?ms) +(?P<from>-?\d{1,9}(?:\.\d{1,6})?)ms$"
)
_WARNING = re.compile(
    r"(?:^\[[^\]]{1,256}\] Warning|^CallReportCollector: warning) (?P<code>\d{5}): (?P<text>.{1,500})$"
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # kept texts are printed to terminals by `icewatch explain`

# Timing steps that time a state change, and the changes they time (the DTLS step is the
# SDK's mark on connectionState "connected": DTLS up, and the peer connection with it).
TIMED_STATES: dict[str, tuple[tuple[StateKind, str], ...]] = {
    "ICE connection established": (("ice", "connected"),),
    "Secure media channel established (DTLS)": (("dtls", "connected"), ("connection", "connected")),
    "All ICE candidates gathered": (("gathering", "complete"),),
}


@dataclass(frozen=True)
class TimingStep:
    label: str
    from_start_ms: float


@dataclass
class LogFindings:
    """What the logs say; ``states`` in log order, ``timings`` as the SDK printed them."""

    states: list[StateChange] = field(default_factory=list)
    timings: list[TimingStep] = field(default_factory=list)
    warnings: dict[str, tuple[datetime | None, str, int]] = field(default_factory=dict)  # code -> first at, text, n
    entries: int = 0  # entries in the block
    skipped: int = 0  # entries not read (beyond the limits, not an object, no message)
    last: dict[str, str] = field(default_factory=dict)  # the last state of each kind, in log order


def _time(value: object) -> datetime | None:
    t = iso_time(value) if isinstance(value, str) else None
    return t if t is not None and ERA_START <= t < ERA_END else None


def _first_arg(context: object) -> str | None:
    if not isinstance(context, dict):
        return None
    args = context.get("args")
    if isinstance(args, list) and args and isinstance(args[0], str) and len(args[0]) <= 32:
        return args[0]
    return None


def _state(findings: LogFindings, at: datetime | None, kind: StateKind, value: str | None) -> None:
    if at is None or value not in _STATES[kind] or findings.last.get(kind) == value:
        return
    if len(findings.states) >= MAX_LOG_STATES:
        findings.skipped += 1
        return
    findings.last[kind] = value
    findings.states.append(StateChange(at=at, kind=kind, state=value))


def _milliseconds(value: str) -> float | None:
    try:
        ms = float(value.removesuffix("ms"))
    except ValueError:
        return None
    return ms if 0.0 <= ms <= 86_400_000.0 else None


def _line(message: str) -> tuple[str, re.Match[str]] | None:
    """Which of the SDK's lines this is (a cheap look at its start and end first: most of a
    report's lines are none of them)."""
    if message.startswith("[CallTimings]"):
        m = _TIMING.match(message)
        return ("timing", m) if m else None
    if message.startswith("CallReportCollector: warning "):
        m = _WARNING.match(message)
        return ("warning", m) if m else None
    if not message.startswith("["):
        return None
    if message.endswith("] ICE Connection State"):
        m = _ICE.match(message)
        return ("ice", m) if m else None
    if message.endswith("] ICE Gathering State"):
        m = _GATHERING.match(message)
        return ("gathering", m) if m else None
    if "] Connection State changed: " in message:
        m = _CONNECTION.match(message)
        return ("connection", m) if m else None
    if "] Warning " in message:
        m = _WARNING.match(message)
        return ("warning", m) if m else None
    return None


def read_logs(logs: list[object]) -> LogFindings:
    findings = LogFindings(entries=len(logs))
    findings.skipped = max(0, len(logs) - MAX_LOG_ENTRIES)
    for entry in logs[:MAX_LOG_ENTRIES]:
        message = entry.get("message") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(message, str):
            findings.skipped += 1
            continue
        found = _line(message[:MAX_MESSAGE_CHARS])
        if found is None:
            continue
        kind, m = found
        if kind == "timing":
            ms = _milliseconds(m.group("from"))
            label = _CONTROL.sub("", m.group("label")).strip()
            if ms is not None and label != "Call Start" and len(findings.timings) < MAX_TIMING_STEPS:
                findings.timings.append(TimingStep(label=label, from_start_ms=ms))
            continue
        logged_at = _time(entry.get("timestamp"))
        if kind == "ice":
            _state(findings, _time(m.group("at")) or logged_at, "ice", _first_arg(entry.get("context")))
        elif kind == "gathering":
            _state(findings, _time(m.group("at")) or logged_at, "gathering", _first_arg(entry.get("context")))
        elif kind == "connection":
            _state(findings, _time(m.group("at")) or logged_at, "connection", m.group("state"))
        else:
            code, text = m.group("code"), _CONTROL.sub("", m.group("text")).strip()
            seen = findings.warnings.get(code)
            if seen is not None:
                first, first_text, n = seen
                if logged_at is not None and (first is None or logged_at < first):
                    first = logged_at
                findings.warnings[code] = (first, first_text, n + 1)
            elif len(findings.warnings) < MAX_WARNING_CODES:
                findings.warnings[code] = (logged_at, text, 1)
    return findings


def timed_states(findings: LogFindings, started_at: datetime | None) -> list[StateChange]:
    """The state changes the SDK's timing table dates (``started_at`` + from-start milliseconds)."""
    if started_at is None or not ERA_START <= started_at < ERA_END:
        return []  # (a start outside the era is refused with the report; no arithmetic on it here)
    out: list[StateChange] = []
    for step in findings.timings:
        at = started_at + timedelta(milliseconds=step.from_start_ms)
        if at < ERA_END:
            out += [StateChange(at=at, kind=kind, state=state) for kind, state in TIMED_STATES.get(step.label, ())]
    return out


# A log line is written in the handler that the timing mark is taken in, so the two times of one
# change are a few milliseconds apart; a stats interval sees a change up to an interval late.
_SAME_CHANGE = timedelta(milliseconds=50)
_TICK = timedelta(microseconds=1)


def merge_states(
    timed: list[StateChange], logged: list[StateChange], sampled: list[StateChange], interval: timedelta
) -> tuple[list[StateChange], int]:
    """One state timeline from three sources, most exact first: the SDK's timing table, the
    state-change log lines (``logged``, in log order), the stats intervals (stamped at the
    interval's end).

    A logged change is replaced by the timing table's when that dates the same change (same kind
    and state within 50 ms): the table is what the SDK reports as its connect times. The two
    clocks (``performance`` marks from the call's start, ``Date`` lines at millisecond precision)
    differ by a few milliseconds, so a logged change of the same kind that the log shows before
    the replaced one but now sorts after it (e.g. ICE "checking" in the same millisecond as
    "connected") is moved to just before it: the log's order is kept and the SDK's time too.
    A sampled change (seen by the stats interval of length ``interval`` ending at its time) is
    the late sighting of an exact one, and dropped, when an exact source changed to the same state
    within that interval, or when the state of its kind at that time (the latest exact or kept
    sampled change before it) is already that state. A change the logs did not see (logs at the
    SDK's warn or info level carry no ICE lines; the SDK drops the oldest lines past its cap) is
    kept, and so is the return to a state after a kept sampled change (a reconnect).

    Returns the timeline, at most ``MAX_STATES`` long (the exact changes first, then the earliest
    sampled ones), and how many changes did not fit.
    """
    exact = list(logged)
    replaced: set[int] = set()
    for t in timed:
        same = [
            i for i, s in enumerate(exact)
            if i not in replaced and s.kind == t.kind and s.state == t.state and abs(s.at - t.at) <= _SAME_CHANGE
        ]
        if not same:
            continue
        match = min(same, key=lambda i: abs(exact[i].at - t.at))
        replaced.add(match)
        bound = t.at
        for i in range(match - 1, -1, -1):  # the same kind's earlier lines keep their order
            s = exact[i]
            if s.kind != t.kind or i in replaced:
                continue
            if s.at < bound:
                break
            bound -= _TICK
            exact[i] = StateChange(at=bound, kind=s.kind, state=s.state)
    kept = sorted(list(timed) + [s for i, s in enumerate(exact) if i not in replaced], key=lambda s: s.at)
    dropped = max(0, len(kept) - MAX_STATES)
    kept = kept[:MAX_STATES]
    by_kind: dict[str, list[StateChange]] = {}
    by_state: dict[tuple[str, str], list[datetime]] = {}
    for s in kept:
        by_kind.setdefault(s.kind, []).append(s)
        by_state.setdefault((s.kind, s.state), []).append(s.at)
    kind_times = {kind: [s.at for s in changes] for kind, changes in by_kind.items()}
    last_sampled: dict[str, StateChange] = {}
    for s in sorted(sampled, key=lambda s: s.at):
        times = by_state.get((s.kind, s.state), [])
        i = bisect_right(times, s.at)
        if i and times[i - 1] >= s.at - interval:
            continue  # the same change, timed exactly within this interval
        j = bisect_right(kind_times.get(s.kind, []), s.at)
        current = by_kind[s.kind][j - 1] if j else None
        previous = last_sampled.get(s.kind)
        if previous is not None and (current is None or previous.at > current.at):
            current = previous
        if current is not None and current.state == s.state:
            continue  # already in that state
        last_sampled[s.kind] = s
        if len(kept) >= MAX_STATES:
            dropped += 1
            continue
        kept.append(s)
    kept.sort(key=lambda s: s.at)
    return kept, dropped


def notes(findings: LogFindings) -> list[ReportNote]:
    """The SDK's warnings (one note per code), its timing table, and what was skipped."""
    out: list[ReportNote] = []
    for code, (at, text, n) in sorted(findings.warnings.items(), key=lambda kv: (kv[1][0] is None, kv[1][0], kv[0])):
        suffix = f" (logged {n} times)" if n > 1 else ""
        out.append(ReportNote(source="sdk", code=code, text=text + suffix, at=at))
    if findings.timings:
        steps = "; ".join(f"{t.label} {t.from_start_ms:.1f} ms" for t in findings.timings)
        out.append(
            ReportNote(
                source="sdk", code="call-timings", text=f"from call start: {steps}"[:2048], at=None
            )
        )
    if findings.skipped:
        out.append(
            ReportNote(
                source="reader",
                code="logs-skipped",
                text=f"{findings.skipped} of {findings.entries} log entries not read (beyond {MAX_LOG_ENTRIES} "
                f"entries or {MAX_LOG_STATES} state changes, or not an object with a message)",
                at=None,
            )
        )
    return out
