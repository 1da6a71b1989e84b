"""Diagnosis: every matching label of the reference troubleshooting guide, plus one primary label.

Labels (error codes are browser ``icecandidateerror`` codes; 701 = server not reachable):
- ``stun_unreachable``: a 701 on a ``stun:``/``stuns:`` URL and no srflx candidate gathered.
- ``turn_unreachable``: a 701 on a ``turn:``/``turns:`` URL and no relay candidate gathered.
- ``turn_auth_failed``: a 401 on a TURN URL (the browser reports it only once the credentials
  were rejected, not for the normal nonce challenge) and no relay candidate gathered.
- ``ice_failed``: ICE failed without ever connecting (see processors/facts/ice.py).
- ``dtls_stall``: ICE connected but DTLS did not follow in time (see processors/facts/dtls.py).
- ``distant_relay``: the TURN server used is much farther than the nearest one (relay_distance.py).
- ``udp_blocked_tcp_relay``: media is relayed over TCP/TLS, no UDP relay was gathered, and UDP
  TURN was configured (or the configuration is unknown): UDP to the TURN server is blocked.
- ``high_rtt``: call median RTT >= 300 ms (the ``poor`` band).
- ``symmetric_nat_relay``: informational; relayed although a srflx candidate was gathered
  (the NAT mapping is per destination, so the direct path did not work; relay is correct).
- ``ok``: none of the problem labels above matched (it may appear with the informational one).

Primary label: the first matching label in ``PRIORITY``. Causes that stop a call from
connecting come first, most specific cause before its symptom (a rejected credential or an
unreachable server explains an ICE failure); then the failure after ICE (DTLS stall); then
causes of latency before the latency itself (distant relay, TCP/TLS relay, then high RTT);
the informational label only when nothing else matched.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.ice_url import parse_ice_url
from processors.facts.candidate_mix import CandidateMix
from processors.facts.dtls import DtlsFacts
from processors.facts.ice import IceFacts
from processors.facts.relay_distance import RelayDistance
from processors.facts.rtt import RttStats

PRIORITY: tuple[str, ...] = (
    "turn_auth_failed",
    "turn_unreachable",
    "stun_unreachable",
    "ice_failed",
    "dtls_stall",
    "distant_relay",
    "udp_blocked_tcp_relay",
    "high_rtt",
    "ok",
    "symmetric_nat_relay",
)
INFORMATIONAL = frozenset({"symmetric_nat_relay"})
HIGH_RTT_MS = 300.0
UNREACHABLE_CODE = 701  # icecandidateerror: the STUN/TURN server was not reachable
AUTH_REJECTED_CODE = 401  # the TURN server rejected the credentials


@dataclass(frozen=True)
class Diagnosis:
    primary: str
    labels: tuple[str, ...]  # in PRIORITY order


def _error_on(ice: IceFacts, code: int, turn: bool) -> bool:
    for e in ice.candidate_errors:
        url = parse_ice_url(e.url)
        if e.error_code == code and url is not None and url.is_turn == turn:
            return True
    return False


def diagnose(mix: CandidateMix, ice: IceFacts, dtls: DtlsFacts, distance: RelayDistance, rtt: RttStats) -> Diagnosis:
    has_srflx = "srflx" in mix.gathered_types
    has_relay = "relay" in mix.gathered_types
    matched = {
        # Chromium also probes a stun: URL it derives from each turn: URL; its 701 says nothing
        # about STUN when the known configuration has no stun: URL (configured_stun falls back
        # to the URLs seen on errors when the report carries no configuration).
        "stun_unreachable": _error_on(ice, UNREACHABLE_CODE, turn=False) and not has_srflx and mix.configured_stun,
        "turn_unreachable": _error_on(ice, UNREACHABLE_CODE, turn=True) and not has_relay,
        "turn_auth_failed": _error_on(ice, AUTH_REJECTED_CODE, turn=True) and not has_relay,
        "ice_failed": ice.ice_failed,
        "dtls_stall": dtls.dtls_stall,
        "distant_relay": distance.distant_relay,
        "udp_blocked_tcp_relay": mix.path_class in ("relay-tcp", "relay-tls")
        and "udp" not in mix.gathered_relay_protocols
        and (mix.configured_turn_udp or not mix.configured_turn),
        "high_rtt": rtt.median_ms is not None and rtt.median_ms >= HIGH_RTT_MS,
        "symmetric_nat_relay": mix.is_relay and has_srflx,
    }
    matched["ok"] = not any(v for k, v in matched.items() if k not in INFORMATIONAL)
    labels = tuple(label for label in PRIORITY if matched[label])
    return Diagnosis(primary=labels[0], labels=labels)
