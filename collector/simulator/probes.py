"""Probe results of a simulated vantage point (``vantage`` starts with "simulated-"): the targets a
real prober would derive from the inventory (collector/probes/targets.py), succeeding unless an
incident says otherwise: a server that is down times out, one whose credentials are broken answers
TURN Allocate with 401, one that is full (turn-quota) answers it with 486 or 508 (its STUN Binding
still succeeds)."""

from __future__ import annotations

import random
from datetime import datetime

from collector.contract import ProbeResult, stable_id
from collector.inventory import Inventory
from collector.probes.targets import targets_for
from collector.simulator.incidents import Conditions
from collector.simulator.plan import QUOTA_REASONS, quota_code

VANTAGE = "simulated-demo"


def probe_results(inventory: Inventory, at: datetime, conditions: Conditions, round_no: int,
                  seed: int) -> list[ProbeResult]:
    out = []
    rng = random.Random(f"{seed}/probes/{round_no}")
    for target in targets_for(inventory):
        down = target.server_id in conditions.servers_down
        allocate = target.kind == "turn_allocate"
        rejected = allocate and target.server_id in conditions.servers_auth_broken
        refused = quota_code(round_no) if allocate and target.server_id in conditions.servers_quota_full \
            and not down and not rejected else None
        drawn = round(rng.uniform(0.4, 2.5) * (3 if target.transport == "tls" else 1), 2)  # drawn for every target
        code = 401 if rejected else refused
        out.append(ProbeResult(
            probe_id=stable_id(VANTAGE, target.server_id, target.kind, target.transport, round_no, seed),
            server_id=target.server_id, region=target.region, vantage=VANTAGE, kind=target.kind,
            transport=target.transport, target=target.target, at=at,
            success=not down and code is None,
            error_code=code,
            error="timeout" if down else ("401 Unauthorized" if rejected else (
                f"{refused} {QUOTA_REASONS[refused]}" if refused is not None else None)),
            latency_ms=None if down else drawn,
        ))
    return out
