"""The simulator's own cost: CPU per simulated call (plan, render the report, its coturn lines, JSON
encoding), and what holding 1,000 concurrent calls costs (one report per call every 5 minutes, i.e.
200 calls a minute, plus a probe round every 30 s). HTTP sending is left out: the collector
benchmark measures the receiving side, and the sender is a thread pool waiting on sockets."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

from collector.inventory import load_inventory
from collector.simulator.coturn_log import call_lines, probe_lines
from collector.simulator.incidents import Conditions
from collector.simulator.plan import Fleet
from collector.simulator.probes import probe_results
from collector.simulator.run import upload

CALLS = 3000
INVENTORY = Path(__file__).resolve().parents[2] / "deploy" / "inventory.example.yaml"


def main() -> None:
    print(f"# simulator benchmark, {date.today()}")
    fleet = Fleet(load_inventory(INVENTORY), seed=1)
    ended = datetime.now(UTC)
    t = time.process_time()
    size = lines = 0
    for i in range(CALLS):
        plan = fleet.plan(i, ended, Conditions())
        size += len(upload(plan)[1])
        lines += len(call_lines(plan))
    per_call = (time.process_time() - t) / CALLS
    t = time.process_time()
    for r in range(100):
        probe_results(fleet.inventory, ended, Conditions(), r, 1)
        for server in fleet.turn_servers:
            probe_lines(server, ended, r, False)
    per_round = (time.process_time() - t) / 100
    share = (200 / 60) * per_call + per_round / 30
    print(f"per simulated call (20-60 s, 1 snapshot/s): {per_call * 1000:.2f} ms CPU, "
          f"{size / CALLS / 1000:.1f} kB report, {lines / CALLS:.1f} coturn lines")
    print(f"probe round (the inventory's targets): {per_round * 1000:.2f} ms CPU")
    print(f"1,000 concurrent calls (200 calls/min): {share * 100:.1f} % of one core "
          f"(the goal: less than 100 %, i.e. it does not fall behind)")


if __name__ == "__main__":
    main()
