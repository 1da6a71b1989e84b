"""`make demo` (deploy/local/demo.sh) as a newcomer runs it, shortened: a normal period, then
turn-eu-1 down, then normal again; the queries show the outage, and the evaluator of `icewatch run`
fires the outage's rule, only that one, and resolves it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.http_server import free_port
from tests.simulated import REPO


def test_make_demo_shows_the_incident(tmp_path: Path) -> None:
    """The README's third command, short. DEMO_KEEP_FIRING_S=10 (one evaluation interval of
    turn-server-down) instead of the rule's 45 s keep_firing_for: the demo then waits about 10 s,
    not about 50 s, after the simulation for the alert to resolve."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
    env.update(DEMO_DIR=str(tmp_path / "demo"), DEMO_PORT=str(free_port()), DEMO_NORMAL_S="6",
               DEMO_INCIDENT_S="25", DEMO_RECOVERY_S="10", DEMO_RATE="600", DEMO_KEEP_FIRING_S="10")
    out = subprocess.run(["bash", str(REPO / "deploy" / "local" / "demo.sh")], env=env, capture_output=True,
                         text=True, timeout=240, cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "$ icewatch query diagnosis" in text and "turn_unreachable" in text
    probes = text.split("$ icewatch query probes", 1)[1]
    eu = [line.split() for line in probes.splitlines() if line.startswith("turn-eu-1")]
    assert eu and any(int(cols[4]) > 0 for cols in eu)  # server, date, time, probes, failures
    apac = [line.split() for line in probes.splitlines() if line.startswith("turn-apac-1")]
    assert apac and all(int(cols[4]) == 0 for cols in apac)
    assert "not accepted 0" in out.stderr
    # the evaluator of `icewatch run` fired the outage's rule, only that one, and it resolved
    alerts = text.split("$ alerts", 1)[1].split("\ndemo:", 1)[0]
    fired = [line.strip() for line in alerts.splitlines() if ": fired at" in line]
    assert fired and all(line.startswith("turn-server-down") and "turn_server=turn-eu-1" in line
                         and "resolved at" in line for line in fired), alerts
    assert {line.split("transport=")[1].split()[0] for line in fired} == {"udp", "tcp", "tls"}
