"""Probe results of a simulated vantage point (``vantage`` starts with "simulated-"): STUN Binding and
TURN Allocate per server and transport, succeeding unless an incident says otherwise."""

from __future__ import annotations

import random
from datetime import datetime

from collector.contract import ProbeResult, stable_id
from collector.inventory import Server
from collector.simulator.incidents import Conditions

VANTAGE = "simulated-demo"


def probe_results(servers: list[Server], at: datetime, conditions: Conditions, round_no: int,
                  seed: int) -> list[ProbeResult]:
    out = []
    rng = random.Random(f"{seed}/probes/{round_no}")
    for server in servers:
        host = server.hostnames[0] if server.hostnames else server.id
        for kind, transport, port in (("stun_binding", "udp", 3478), ("turn_allocate", "udp", 3478),
                                      ("turn_allocate", "tcp", 443), ("turn_allocate", "tls", 443)):
            down = server.id in conditions.servers_down
            rejected = kind == "turn_allocate" and server.id in conditions.servers_auth_broken
            drawn = round(rng.uniform(0.4, 2.5) * (3 if transport == "tls" else 1), 2)  # drawn for every server
            latency = None if down else drawn
            out.append(ProbeResult(
                probe_id=stable_id(VANTAGE, server.id, kind, transport, round_no, seed),
                server_id=server.id, region=server.region, vantage=VANTAGE, kind=kind,
                transport=transport, target=f"{host}:{port}", at=at,
                success=not down and not rejected,
                error_code=401 if rejected else None,
                error="timeout" if down else ("401 Unauthorized" if rejected else None),
                latency_ms=latency,
            ))
    return out
