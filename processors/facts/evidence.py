"""The evidence behind a call's diagnosis: per label, the events, samples and thresholds it rests on.

Pure: a ``CallReport``, the ``CallFacts`` derived from it and the ``FactsEnv`` in, ``Evidence``
out. It decides nothing again: for each label the diagnosis set, it lists what the fact modules
(ice, dtls, rtt, relay_distance, candidate_mix, diagnosis) read to set it, and the thresholds
they compared with, taken from where those modules take them (``FactsEnv`` fields, which are the
``ICEWATCH_*`` settings, and the constants of processors/facts/diagnosis.py).

Times (``at_ms``) are milliseconds from the report's origin, as in processors/facts/ice.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.contract import CallReport, Candidate, CandidateError, Sample, StateChange
from collector.ice_url import parse_ice_url
from processors.facts import units
from processors.facts.call_facts import FactsEnv
from processors.facts.candidate_mix import configured_urls, local_candidates, resolve_relay_protocol
from processors.facts.diagnosis import AUTH_REJECTED_CODE, HIGH_RTT_MS, UNREACHABLE_CODE
from processors.facts.ice import ice_connected_evidence
from processors.facts.model import CallFacts
from processors.facts.timeline import ms_between, ordered_samples, report_origin, sample_time, state_timeline

_ICE_EVIDENCE_WORDS = {
    "ice-state": 'ICE state "{state}"',
    "sample-ice-state": 'a stats sample with ICE state "{state}"',
    "connection-state": 'connection state "connected" (it implies ICE)',
    "selected-pair": "the first selected candidate pair",
    "media": "the first stats sample with an RTT or received packets",
}


@dataclass(frozen=True)
class Threshold:
    """A limit a fact was compared with. ``setting``: the ``FactsEnv`` field that holds it (also
    the setting ``ICEWATCH_<FIELD>``), else "" and ``constant`` names the module constant."""

    value: float
    unit: str
    setting: str = ""
    constant: str = ""


@dataclass(frozen=True)
class Evidence:
    label: str
    text: str
    at_ms: float | None = None
    threshold: Threshold | None = None


@dataclass(frozen=True)
class _Call:
    report: CallReport
    facts: CallFacts
    env: FactsEnv
    origin: datetime | None
    states: list[StateChange]
    samples: list[Sample]

    def at(self, t: datetime | None) -> float | None:
        return ms_between(self.origin, t)


def _quote(state: str) -> str:
    return f'"{state}"'


def _gathered(facts: CallFacts) -> str:
    return ", ".join(facts.gathered_types) or "no local candidate"


def _unique_errors(report: CallReport) -> list[CandidateError]:
    seen: dict[tuple[object, ...], CandidateError] = {}
    for e in report.candidate_errors:
        seen.setdefault((e.at, e.url or "", e.error_code, e.address, e.port), e)
    return list(seen.values())


def _error_evidence(call: _Call, label: str, code: int, turn: bool) -> list[Evidence]:
    by_url: dict[str, list[CandidateError]] = {}
    for e in _unique_errors(call.report):
        parsed = parse_ice_url(e.url)
        if e.error_code == code and parsed is not None and parsed.is_turn == turn:
            by_url.setdefault(e.url or "", []).append(e)
    out: list[Evidence] = []
    for url, errors in by_url.items():
        times = [e.at for e in errors if e.at is not None]
        first = min(times) if times else None
        reason = next((e.error_text for e in errors if e.error_text), None)
        said = f' "{reason}"' if reason else ""
        when = f", first at {units.offset_ms(call.at(first))}" if first is not None else ""
        out.append(Evidence(label, f"candidate error {code}{said} on {url}, {units.count(len(errors), 'time')}{when}",
                            call.at(first)))
    return out


def _stun_unreachable(call: _Call) -> list[Evidence]:
    out = _error_evidence(call, "stun_unreachable", UNREACHABLE_CODE, turn=False)
    out.append(Evidence("stun_unreachable", f"no srflx candidate gathered (gathered: {_gathered(call.facts)})"))
    if not call.report.ice_servers:
        out.append(Evidence("stun_unreachable", "the report carries no ICE server configuration: "
                                                "the URLs on candidates and errors stand in for it"))
    return out


def _turn_unreachable(call: _Call) -> list[Evidence]:
    out = _error_evidence(call, "turn_unreachable", UNREACHABLE_CODE, turn=True)
    out.append(Evidence("turn_unreachable", f"no relay candidate gathered (gathered: {_gathered(call.facts)})"))
    return out


def _turn_auth_failed(call: _Call) -> list[Evidence]:
    out = _error_evidence(call, "turn_auth_failed", AUTH_REJECTED_CODE, turn=True)
    out.append(Evidence("turn_auth_failed", f"no relay candidate gathered (gathered: {_gathered(call.facts)})"))
    return out


def _first_state(states: Sequence[StateChange], kinds: tuple[str, ...], state: str) -> StateChange | None:
    return next((s for s in states if s.kind in kinds and s.state == state), None)


def _ice_failed(call: _Call) -> list[Evidence]:
    label = "ice_failed"
    out: list[Evidence] = []
    failed = _first_state(call.states, ("ice", "connection"), "failed")
    if failed is not None:
        out.append(Evidence(label, f'{"ICE" if failed.kind == "ice" else "connection"} state "failed" at '
                                   f"{units.offset_ms(call.at(failed.at))}", call.at(failed.at)))
    else:
        sample = next((s for s in call.samples if s.ice_state == "failed"), None)
        if sample is not None:
            at = call.at(sample_time(sample))
            out.append(Evidence(label, f'a stats sample with ICE state "failed" at {units.offset_ms(at)}', at))
    out.append(Evidence(label, "ICE never connected and no candidate pair was ever selected"))
    remote = len({c.id for c in call.report.candidates if c.is_remote})
    local = len(local_candidates(call.report))
    out.append(Evidence(label, f"{units.count(local, 'local candidate')} ({_gathered(call.facts)}), "
                               f"{units.count(remote, 'remote candidate')}"))
    return out


def _dtls_stall(call: _Call) -> list[Evidence]:
    label = "dtls_stall"
    facts = call.facts
    out: list[Evidence] = []
    ice_at, how = ice_connected_evidence(call.report, call.states, call.samples)
    ice_state = _first_state(call.states, ("ice",), "connected") or _first_state(call.states, ("ice",), "completed")
    state = ice_state.state if ice_state else "connected"
    out.append(Evidence(label, f"ICE connected at {units.offset_ms(call.at(ice_at))} "
                               f"({_ICE_EVIDENCE_WORDS.get(how, how).format(state=state)})", call.at(ice_at)))
    dtls_states = [s for s in call.states if s.kind == "dtls"]
    sample_dtls = Counter(s.dtls_state for s in call.samples if s.dtls_state)
    threshold = Threshold(call.env.dtls_stall_ms, "ms", setting="dtls_stall_ms")
    if facts.dtls_failed:
        failed = _first_state(dtls_states, ("dtls",), "failed")
        sample = next((s for s in call.samples if s.dtls_state == "failed"), None)
        at = call.at(failed.at if failed else sample_time(sample) if sample else None)
        where = "DTLS state" if failed else "a stats sample with DTLS state"
        out.append(Evidence(label, f'{where} "failed" at {units.offset_ms(at)}, before any "connected"', at))
        return out
    if facts.dtls_connected:
        out.append(Evidence(label, f"DTLS connected only {units.duration_ms(facts.dtls_connect_ms)} after ICE, "
                                   "more than the threshold", threshold=threshold))
        return out
    if dtls_states:
        last = dtls_states[-1]
        out.append(Evidence(label, f"DTLS state {_quote(last.state)} at {units.offset_ms(call.at(last.at))}, "
                                   'never "connected"', call.at(last.at)))
    if sample_dtls:
        seen = ", ".join(f"{_quote(state)} in {n}" for state, n in sample_dtls.most_common())
        out.append(Evidence(label, f"stats samples' DTLS state: {seen} of {units.count(len(call.samples), 'sample')}"))
    connection = [s for s in call.states if s.kind == "connection"]
    if connection:
        last = connection[-1]
        out.append(Evidence(label, f"connection state {_quote(last.state)} at {units.offset_ms(call.at(last.at))}, "
                                   'never "connected"', call.at(last.at)))
    counted = [s for s in call.samples if s.packets_received is not None]
    received = sum(max(0, s.packets_received or 0) for s in counted)
    if counted:
        out.append(Evidence(label, f"{units.count(received, 'media packet')} received in "
                                   f"{units.count(len(counted), 'sample')}"))
    waited = facts.dtls_stall_ms
    if waited is not None and waited > call.env.dtls_stall_ms:
        out.append(Evidence(label, f"DTLS still not connected {units.duration_ms(waited)} after ICE connected, "
                                   "more than the threshold", threshold=threshold))
    elif call.report.final:
        out.append(Evidence(label, f"the report is final: the call ended {units.duration_ms(waited)} after ICE "
                                   "connected without DTLS; shorter than the threshold, but an ended call "
                                   "cannot connect later", threshold=threshold))
    return out


def _distant_relay(call: _Call) -> list[Evidence]:
    label = "distant_relay"
    f = call.facts
    server = f.turn_server_id or f.turn_url or "its TURN server"
    where = ", ".join(x for x in (f.client_address, f.client_country) if x)
    return [
        Evidence(label, f"client located at {where or 'an unknown address'} (position from {f.geo_source})"),
        Evidence(label, f"relayed via {server}, {units.km(f.relay_distance_km)} from the client"),
        Evidence(label, f"nearest TURN server {f.nearest_server_id or '-'}, {units.km(f.nearest_distance_km)} away"),
        Evidence(label, f"{units.km(f.excess_km)} farther than the nearest, more than the threshold",
                 threshold=Threshold(call.env.distant_relay_km, "km", setting="distant_relay_km")),
    ]


def _relay_protocols(candidates: Sequence[Candidate]) -> list[str]:
    found = {resolve_relay_protocol(c)[0] or "unknown" for c in candidates if c.candidate_type == "relay"}
    return sorted(found)


def _udp_blocked(call: _Call) -> list[Evidence]:
    label = "udp_blocked_tcp_relay"
    f = call.facts
    protocols = _relay_protocols(local_candidates(call.report))
    out = [
        Evidence(label, f"media relayed over TURN/{f.relay_protocol.upper() or 'TCP'} ({f.path_class})"),
        Evidence(label, f"relay candidates gathered over {', '.join(p.upper() for p in protocols)}, none over UDP"),
    ]
    udp_urls = [u for u in configured_urls(call.report)
                if (p := parse_ice_url(u)) is not None and p.scheme == "turn" and p.transport in (None, "udp")]
    if udp_urls:
        out.append(Evidence(label, f"TURN over UDP was offered: {', '.join(udp_urls)}"))
    else:
        out.append(Evidence(label, "no TURN configuration known: TURN over UDP counts as offered"))
    return out


def _high_rtt(call: _Call) -> list[Evidence]:
    label = "high_rtt"
    f = call.facts
    source = None if f.rtt_source == "unknown" else f.rtt_source
    chosen = [s for s in call.samples if s.rtt_source == source and s.rtt_ms is not None]
    out = [Evidence(label, f"median RTT {units.latency_ms(f.rtt_median_ms)} over "
                           f"{units.count(f.rtt_samples, 'sample')} ({f.rtt_source}), at or above the threshold",
                    threshold=Threshold(HIGH_RTT_MS, "ms", constant="processors/facts/diagnosis.py HIGH_RTT_MS"))]
    if chosen:
        worst = max(chosen, key=lambda s: s.rtt_ms or 0.0)
        at = call.at(sample_time(worst))
        out.append(Evidence(label, f"worst sample {units.latency_ms(worst.rtt_ms)} at {units.offset_ms(at)}", at))
    total = f.seconds_excellent + f.seconds_good + f.seconds_acceptable + f.seconds_poor
    out.append(Evidence(label, f"{units.duration_ms(f.seconds_poor * 1000)} of "
                               f"{units.duration_ms(total * 1000)} in the poor band"))
    return out


def _symmetric_nat(call: _Call) -> list[Evidence]:
    label = "symmetric_nat_relay"
    srflx = [c for c in local_candidates(call.report) if c.candidate_type == "srflx"]
    addresses = ", ".join(dict.fromkeys(c.address for c in srflx if c.address)) or "address not reported"
    return [Evidence(label, f"relayed ({call.facts.path_class}) although a srflx candidate was gathered "
                            f"({addresses}): the NAT maps per destination, so the relay is the right path")]


_BY_LABEL: dict[str, Callable[[_Call], list[Evidence]]] = {
    "stun_unreachable": _stun_unreachable,
    "turn_unreachable": _turn_unreachable,
    "turn_auth_failed": _turn_auth_failed,
    "ice_failed": _ice_failed,
    "dtls_stall": _dtls_stall,
    "distant_relay": _distant_relay,
    "udp_blocked_tcp_relay": _udp_blocked,
    "high_rtt": _high_rtt,
    "symmetric_nat_relay": _symmetric_nat,
}


def derive_evidence(report: CallReport, facts: CallFacts, env: FactsEnv) -> tuple[Evidence, ...]:
    """Evidence for every label of ``facts`` (derived from ``report`` with ``env``), label order kept."""
    call = _Call(report, facts, env, report_origin(report), state_timeline(report), ordered_samples(report))
    out: list[Evidence] = []
    for label in facts.labels:
        derive = _BY_LABEL.get(label)
        if derive is not None:
            out.extend(derive(call))
    return tuple(out)
