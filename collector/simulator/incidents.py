"""Scripted incidents: what each one changes, and when. Each changes only what it would in reality.

- ``turn-down:SERVER``       the server is unreachable: its STUN and TURN URLs give 701, its log is
                             silent, its probes time out; clients behind symmetric NAT or UDP-blocking
                             networks fail ICE, others connect peer-reflexively.
- ``turn-auth:SERVER``       TURN credentials are rejected: relay gathering gives 401, the server logs
                             rejected ALLOCATEs, TURN probes fail with 401; STUN still works.
- ``stun-blocked:REGION``    STUN is blocked for the region's clients: 701 on stun: URLs, no srflx;
                             cone-NAT clients fall back to a UDP relay.
- ``misroute:REGION:SERVER`` geo-routing sends the region's clients to SERVER (far away): relayed
                             calls relay far (distant relay).
- ``udp-block:REGION``       a wave of UDP-blocking networks in the region: most clients need TURN
                             over TCP/TLS.
- ``dtls-block:REGION``      a middlebox in the region drops the DTLS handshake's large, fragmented
                             UDP datagrams (the certificate flight): ICE's small STUN checks pass and
                             connect, DTLS never completes for the region's calls whose media goes over
                             UDP (host, srflx, prflx, TURN over UDP); calls relayed over TURN TCP/TLS
                             carry DTLS in a TCP stream and connect. Gathering, candidate errors and
                             probes are untouched; the TURN logs show the UDP-relayed sessions
                             allocated but carrying no media.
- ``turn-quota:SERVER``      the server refuses new allocations after the 401 challenge: ALLOCATE
                             answered 486 Allocation Quota Reached (its total quota) or 508 (no relay
                             port left; coturn's reason "Cannot create socket", RFC 8656's Insufficient
                             Capacity), alternating by call; its log shows those failed ALLOCATEs (and
                             the probe's), its clients get 486/508 on their turn: URLs and no relay
                             candidate (STUN still works, so cone-NAT clients connect directly), its
                             TURN probes fail with the same codes while its STUN probes succeed.

Written ``NAME:ARGS@START+DURATION`` (seconds from the simulation start), e.g. ``turn-down:turn-eu-1@60+90``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = {"turn-down": 1, "turn-auth": 1, "stun-blocked": 1, "misroute": 2, "udp-block": 1, "dtls-block": 1,
         "turn-quota": 1}
SERVER_KINDS = ("turn-down", "turn-auth", "turn-quota")  # incidents whose (first) argument is a TURN server
REGION_KINDS = ("stun-blocked", "misroute", "udp-block", "dtls-block")  # ... a client region
_SPEC = re.compile(r"^(?P<kind>[a-z-]+):(?P<args>[A-Za-z0-9._:-]+)@(?P<start>\d{1,6})\+(?P<duration>\d{1,6})$")


@dataclass(frozen=True)
class Incident:
    kind: str
    args: tuple[str, ...]
    start_s: float
    duration_s: float

    def active(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.start_s + self.duration_s

    @property
    def target(self) -> str:
        return self.args[0]

    def __str__(self) -> str:
        return f"{self.kind}:{':'.join(self.args)}@{self.start_s:g}+{self.duration_s:g}"


def parse_incident(text: str) -> Incident:
    """``NAME:ARGS@START+DURATION``; ValueError says what is expected."""
    m = _SPEC.match(text.strip())
    if not m or m["kind"] not in KINDS:
        raise ValueError(f"expected one of {', '.join(f'{k}:...@START+DURATION' for k in KINDS)}, got {text!r}")
    args = tuple(m["args"].split(":"))
    if len(args) != KINDS[m["kind"]]:
        raise ValueError(f"{m['kind']} takes {KINDS[m['kind']]} argument(s), got {text!r}")
    return Incident(m["kind"], args, float(m["start"]), float(m["duration"]))


@dataclass(frozen=True)
class Conditions:
    """What is broken at one moment, as the planning of a call sees it."""

    servers_down: frozenset[str] = frozenset()
    servers_auth_broken: frozenset[str] = frozenset()
    regions_stun_blocked: frozenset[str] = frozenset()
    misroutes: tuple[tuple[str, str], ...] = ()  # (client region, server)
    regions_udp_blocked: frozenset[str] = frozenset()
    regions_dtls_blocked: frozenset[str] = frozenset()
    servers_quota_full: frozenset[str] = frozenset()

    def misrouted_to(self, region: str) -> str | None:
        return next((server for r, server in self.misroutes if r == region), None)


def conditions_at(incidents: tuple[Incident, ...], elapsed_s: float) -> Conditions:
    active = [i for i in incidents if i.active(elapsed_s)]

    def of(kind: str) -> frozenset[str]:
        return frozenset(i.target for i in active if i.kind == kind)

    return Conditions(
        servers_down=of("turn-down"),
        servers_auth_broken=of("turn-auth"),
        regions_stun_blocked=of("stun-blocked"),
        misroutes=tuple((i.args[0], i.args[1]) for i in active if i.kind == "misroute"),
        regions_udp_blocked=of("udp-block"),
        regions_dtls_blocked=of("dtls-block"),
        servers_quota_full=of("turn-quota"),
    )
