"""The simulator through the real embedded pipeline (HTTP app -> parsers -> facts -> chDB); `make demo`
itself is tests/integration/test_make_demo.py.

Each scripted incident is replayed next to a baseline: the same seed and the same calls, once
under normal conditions (tenant "base") and once under the incident (tenant "inc"). Every call
the incident does not touch must come out identical; the ones it touches must change the way
it says; the TURN logs and probes of other servers must not move.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.simulator.incidents import Conditions, conditions_at, parse_incident
from collector.simulator.plan import CallPlan
from collector.simulator.run import Simulator, SimulatorConfig
from tests.simulated import INVENTORY, Pipeline, simulated_pipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with simulated_pipeline(tmp_path_factory.mktemp("simulated")) as pipe:
        pipe.feed("base", Conditions(), datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3))
        yield pipe


Touched = Callable[[CallPlan], bool]
CASES: dict[str, tuple[str, Touched]] = {
    "turn-down": ("turn-down:turn-eu-1@0+600", lambda p: p.configured.id == "turn-eu-1"),
    "turn-auth": ("turn-auth:turn-us-east-1@0+600", lambda p: p.configured.id == "turn-us-east-1"),
    "stun-blocked": ("stun-blocked:apac@0+600", lambda p: p.region == "apac"),
    "misroute": ("misroute:eu:turn-apac-1@0+600", lambda p: p.region == "eu"),
    "udp-block": ("udp-block:us-west@0+600", lambda p: p.region == "us-west"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_incident_moves_exactly_what_it_should(pipeline: Pipeline, name: str) -> None:
    spec, touched_by = CASES[name]
    incident = parse_incident(spec)
    tenant = f"inc-{name}"
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    plans = pipeline.feed(tenant, conditions_at((incident,), 1.0), ended)
    base, inc = pipeline.calls("base"), pipeline.calls(tenant)
    assert set(base) == set(inc) == {p.call_id for p in plans}
    touched = [p for p in plans if touched_by(p)]
    assert touched
    for p in plans:
        if not touched_by(p):
            assert inc[p.call_id] == base[p.call_id], p.call_id  # nothing else moves
    hit = [inc[p.call_id] for p in touched]
    before = [base[p.call_id] for p in touched]
    turn_base, turn_inc = pipeline.turn("base"), pipeline.turn(tenant)
    probes_inc = pipeline.probe_failures(tenant)

    def others(by_server: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int, int]]:
        return {k: v for k, v in by_server.items() if k != incident.target}

    if name == "turn-down":
        assert not any(c["path_class"].startswith("relay") for c in hit)
        assert sum("turn_unreachable" in c["labels"] for c in hit) > 0
        assert sum("turn_unreachable" in c["labels"] for c in before) == 0
        assert "turn-eu-1" not in turn_inc and turn_base["turn-eu-1"][0] > 0  # the log went silent
        assert others(turn_inc) == others(turn_base)
        assert {s for s, n in probes_inc.items() if n} == {"turn-eu-1"}
    elif name == "turn-auth":
        assert not any(c["path_class"].startswith("relay") for c in hit)
        assert sum("turn_auth_failed" in c["labels"] for c in hit) > 0
        assert turn_inc["turn-us-east-1"][2] > 0 and turn_base["turn-us-east-1"][2] == 0
        assert others(turn_inc) == others(turn_base)
        assert {s for s, n in probes_inc.items() if n} == {"turn-us-east-1"}
    elif name == "stun-blocked":
        assert not any(c["path_class"] == "srflx" for c in hit) and any(c["path_class"] == "srflx" for c in before)
        assert sum("stun_unreachable" in c["labels"] for c in hit) > 0
        assert not any(probes_inc.values())
    elif name == "misroute":
        relayed = [c for c in hit if c["path_class"].startswith("relay")]
        assert relayed and all(c["turn_server_id"] == "turn-apac-1" and c["distant_relay"] for c in relayed)
        assert not any(c["distant_relay"] for c in before if c["turn_server_id"] == "turn-eu-1")
    else:
        def tcp_tls(calls: list[dict[str, Any]]) -> int:
            return sum(c["path_class"] in ("relay-tcp", "relay-tls") for c in calls)

        assert tcp_tls(hit) > 2 * max(1, tcp_tls(before))


def test_the_simulator_drives_a_live_collector_without_a_rejection(tmp_path: Path, pipeline: Pipeline) -> None:
    """Its own clock, rate and files: every upload is accepted and the coturn logs are written."""
    app_url = str(pipeline.client.base_url)
    config = SimulatorConfig(url=app_url, seed=4, calls_per_minute=1200, duration_s=4, turn_log_dir=tmp_path / "turn",
                             probe_interval_s=2, incidents=(parse_incident("turn-down:turn-apac-1@2+5"),))
    sim = Simulator(INVENTORY, config, out=open(os.devnull, "w"))  # noqa: SIM115
    stats = sim.run(threading.Event())
    # 80 calls are due in the 4 s; a loaded 2-core machine sent 53 (2026-11-26): the count is not a
    # speed claim (that lives in make bench), only that the simulator really drove the collector.
    assert stats.reports >= 20 and stats.failed == 0, stats.errors[:3]
    assert stats.probe_results > 0 and stats.turn_lines > 0
    logs = sim.log_paths()
    assert logs["turn-eu-1"].stat().st_size > 0

