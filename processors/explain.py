"""``icewatch explain`` for a person: one call's facts in words, the evidence behind its diagnosis,
the runbook's "what to check", and what the capture itself says (report notes).

``explain_report`` derives everything (facts, evidence, checks); ``render_text`` words it with
rounded numbers and units (processors/facts/units.py); ``explanation_json`` is the ``--json``
object: every ``CallFacts`` field as before, plus ``file``, ``evidence``, ``what_to_check`` and
``notes``. Thresholds are named where they are set (an ``ICEWATCH_*`` setting or a constant).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from collector.contract import CallReport, ReportNote
from collector.settings import Settings
from processors.explain_runbooks import Check, check_for
from processors.facts import units
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.diagnosis import AUTH_REJECTED_CODE, UNREACHABLE_CODE
from processors.facts.evidence import Evidence, Threshold, derive_evidence
from processors.facts.model import CallFacts
from processors.facts.timeline import ms_between, report_origin

LABEL_MEANING: dict[str, str] = {
    "ok": "no problem found",
    "stun_unreachable": f"the STUN server was not reachable ({UNREACHABLE_CODE}) and no srflx candidate was gathered",
    "turn_unreachable": f"the TURN server was not reachable ({UNREACHABLE_CODE}) and no relay candidate was gathered",
    "turn_auth_failed": f"the TURN server rejected the credentials ({AUTH_REJECTED_CODE}), no relay candidate",
    "ice_failed": "ICE failed without ever connecting: no media path at all",
    "dtls_stall": "ICE connected but the DTLS handshake did not finish: no media keys, no or one-way audio",
    "distant_relay": "relayed through a TURN server much farther away than the nearest one",
    "udp_blocked_tcp_relay": "relayed over TCP/TLS: UDP to the TURN server looks blocked",
    "high_rtt": "round-trip time in the poor band",
    "symmetric_nat_relay": "relayed because the NAT maps per destination (informational)",
}
NO_SELECTED_PAIR = "no-selected-pair"  # the readers' note code for a connected call without a selected pair
_CANDIDATE_WORDS = {"host": "host", "srflx": "srflx", "prflx": "prflx", "relay": "relay"}
_INDENT = "  "
_KEY_WIDTH = 10


@dataclass(frozen=True)
class Explanation:
    facts: CallFacts
    evidence: tuple[Evidence, ...]
    checks: tuple[Check, ...]
    notes: tuple[ReportNote, ...]
    notes_at_ms: tuple[float | None, ...]  # each note's time from the report's origin
    turn_region_name: str  # the inventory's name of the TURN server's region ("" when unknown)


def explain_report(report: CallReport, env: FactsEnv) -> Explanation:
    facts = derive_call_facts(report, env)
    checks = tuple(c for c in (check_for(label, facts) for label in facts.labels) if c is not None)
    origin = report_origin(report)
    region = next((r for r in env.inventory.region_centroids() if r.id == facts.turn_region), None)
    return Explanation(
        facts=facts,
        evidence=derive_evidence(report, facts, env),
        checks=checks,
        notes=tuple(report.notes),
        notes_at_ms=tuple(ms_between(origin, n.at) for n in report.notes),
        turn_region_name=region.name if region else facts.turn_region,
    )


def threshold_name(t: Threshold) -> str:
    """Where a threshold is set: ``ICEWATCH_DTLS_STALL_MS``, or the constant's module and name."""
    if t.setting:
        return f"{Settings.model_config.get('env_prefix', '')}{t.setting}".upper()
    return t.constant


def _threshold_value(t: Threshold) -> str:
    if t.unit == "ms":
        return units.duration_ms(t.value)
    if t.unit == "km":
        return units.km(t.value)
    return f"{t.value:g} {t.unit}"


def explanation_json(e: Explanation, file: str) -> dict[str, Any]:
    out = e.facts.model_dump(mode="json")
    out["file"] = file
    out["evidence"] = [
        {"label": ev.label, "text": ev.text, "at_ms": ev.at_ms,
         "threshold": None if ev.threshold is None else
         {"value": ev.threshold.value, "unit": ev.threshold.unit, "name": threshold_name(ev.threshold)}}
        for ev in e.evidence
    ]
    out["what_to_check"] = [{"label": c.label, "runbook": c.runbook, "text": c.text} for c in e.checks]
    out["notes"] = [{**n.model_dump(mode="json"), "at_ms": at} for n, at in zip(e.notes, e.notes_at_ms, strict=True)]
    return out


# ---- words -------------------------------------------------------------------------------------


def path_words(f: CallFacts, turn_region_name: str = "") -> str:
    """The selected path in words: 'relayed over TURN/TLS via turn-eu-1 (Europe), remote peer direct (srflx)'."""
    if not f.path_class:
        return "no candidate pair was selected"
    if f.path_class.startswith("relay-"):
        via = f.turn_server_id or f.turn_url
        where = f" ({turn_region_name})" if f.turn_server_id and turn_region_name else ""
        local = f"relayed over TURN/{f.path_class.removeprefix('relay-').upper()}"
        local += f" via {via}{where}" if via else ""
    else:
        over = f" over {f.local_protocol.upper()}" if f.local_protocol else ""
        local = f"direct{over} (local {_CANDIDATE_WORDS.get(f.local_candidate_type, f.local_candidate_type)})"
    if f.remote_candidate_type == "relay":
        remote = "remote peer relayed (relay)"
    elif f.remote_candidate_type:
        remote = f"remote peer direct ({f.remote_candidate_type})"
    else:
        remote = "remote candidate unknown"
    return f"{local}, {remote}"


def _times(n: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n} times")


def _ice_words(f: CallFacts) -> str:
    if f.ice_connected:
        text = f"connected after {units.duration_ms(f.ice_connect_ms)}" if f.ice_connect_ms is not None else "connected"
        return f"{text}; {units.count(f.reconnects, 'reconnect')}" if f.reconnects else f"{text}; no reconnects"
    if f.ice_failed:
        return "failed, never connected"
    if f.never_connected:
        return "never connected (and no ICE failure reported)"
    return "-"


def _dtls_words(f: CallFacts) -> str:
    if f.dtls_failed:
        return "failed before connecting"
    if f.dtls_stall and f.dtls_connected:
        return f"connected only {units.duration_ms(f.dtls_connect_ms)} after ICE (a stall)"
    if f.dtls_stall:
        return f"not connected {units.duration_ms(f.dtls_stall_ms)} after ICE connected (stalled)"
    if f.dtls_connected:
        after = f" {units.duration_ms(f.dtls_connect_ms)} after ICE" if f.dtls_connect_ms is not None else ""
        return f"connected{after}"
    return "not reached (ICE did not connect)" if not f.ice_connected else "not connected"


def _rtt_words(f: CallFacts) -> str:
    if f.rtt_median_ms is None:
        return "-"
    return (f"median {units.latency_ms(f.rtt_median_ms)} ({f.rtt_band}), p95 {units.latency_ms(f.rtt_p95_ms)}, "
            f"max {units.latency_ms(f.rtt_max_ms)}; {units.count(f.rtt_samples, 'sample')} ({f.rtt_source})")


def _media_words(f: CallFacts) -> str:
    parts = [f"jitter {units.latency_ms(f.jitter_ms)}", f"loss {units.percent(f.loss_pct)}", f"MOS {units.mos(f.mos)}"]
    # the bitrate fields by their model names (they say what they measure), whatever those are
    for name in CallFacts.model_fields:
        if name.endswith("_kbps"):
            parts.append(f"{name.removesuffix('_kbps').replace('_', ' ')} {units.kbps(getattr(f, name))}")
    return ", ".join(parts)


def _relay_words(f: CallFacts) -> str | None:
    if f.relay_distance_km is None and f.nearest_distance_km is None:
        if f.path_class.startswith("relay-"):
            if f.client_lat is None:
                return "distance unknown: no client position (no GeoIP database, or no public client address)"
            return "distance unknown: no inventory of TURN servers (ICEWATCH_INVENTORY) to measure against"
        return None
    parts = []
    if f.relay_distance_km is not None:
        parts.append(f"{units.km(f.relay_distance_km)} from the client")
    if f.nearest_server_id:
        parts.append(f"nearest TURN server {f.nearest_server_id} at {units.km(f.nearest_distance_km)}")
    if f.client_region:
        parts.append(f"client region {f.client_region}")
    return "; ".join(parts)


def printable(text: str) -> str:
    """Text from a capture made safe for a terminal: control and format characters (newlines, ANSI
    escapes, bidi overrides) are shown as escapes instead of acting."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


def _line(key: str, value: str = "") -> str:
    return f"{_INDENT}{key:<{_KEY_WIDTH}}  {printable(value)}".rstrip()


def _item(text: str) -> str:
    """A line under a keyed line, indented past the key column."""
    return f"{_INDENT}{'':<{_KEY_WIDTH}}    {printable(text)}"


def _source_words(f: CallFacts, file: str) -> str:
    who = ", ".join(x for x in (f.browser, " ".join(y for y in (f.sdk_name, f.sdk_version) if y)) if x)
    return f"{file} ({f.source_format}{'; ' + who if who else ''})"


def _when_words(f: CallFacts) -> str | None:
    if f.started_at is None:
        return None
    start = f.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    length = ms_between(f.started_at, f.ended_at)
    return f"{start}, {units.duration_ms(length)}" if length is not None else start


def render_text(e: Explanation, file: str) -> str:
    f = e.facts
    lines = [printable(f"call {f.call_id}" + (f"  segment {f.segment}" if f.segment else "")),
             _line("source", _source_words(f, file))]
    when = _when_words(f)
    if when:
        lines.append(_line("when", when))
    others = [label for label in f.labels if label != f.diagnosis]
    diagnosis = f"{f.diagnosis}: {LABEL_MEANING.get(f.diagnosis, f.diagnosis)}"
    lines.append(_line("diagnosis", diagnosis + (f" (also {', '.join(others)})" if others else "")))
    gathered = ", ".join(f.gathered_types) or "nothing"
    changes = f"; the selected pair changed {_times(f.pair_changes)}" if f.pair_changes else ""
    why = " (the reader says why: see notes)" if not f.path_class and any(
        n.source == "reader" and n.code == NO_SELECTED_PAIR for n in e.notes) else ""
    lines.append(_line("path", f"{path_words(f, e.turn_region_name)}{why}; gathered {gathered}{changes}"))
    lines += [_line("ICE", _ice_words(f)), _line("DTLS", _dtls_words(f)), _line("RTT", _rtt_words(f)),
              _line("media", _media_words(f))]
    relay = _relay_words(f)
    if relay:
        lines.append(_line("relay", relay))
    if f.candidate_errors:
        errors = (f"{c.error_code} on {c.url or '-'} x{c.count}" for c in f.candidate_errors)
        lines.append(_line("errors", "; ".join(errors)))
    key = "evidence"
    for label in dict.fromkeys(ev.label for ev in e.evidence):
        lines.append(_line(key, label))
        key = ""
        for ev in (x for x in e.evidence if x.label == label):
            limit = ""
            if ev.threshold is not None:
                limit = f" (threshold {_threshold_value(ev.threshold)}: {threshold_name(ev.threshold)})"
            lines.append(_item(f"{ev.text}{limit}"))
    for i, c in enumerate(e.checks):
        lines.append(_line("check" if i == 0 else "", f"{c.label} [{c.runbook}]"))
        lines.append(_item(c.text))
    for i, (n, at) in enumerate(zip(e.notes, e.notes_at_ms, strict=True)):
        when_note = f" at {units.offset_ms(at)}" if at is not None else ""
        lines.append(_line("notes" if i == 0 else "", f"{n.source} {n.code}{when_note}: {n.text}"))
    return "\n".join(lines)
