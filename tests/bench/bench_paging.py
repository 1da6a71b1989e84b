"""Paging latency with every default (issue 12): Debian's coturn stopped -> the turn-server-down page
at a receiver behind Debian's real Alertmanager, and coturn started -> the resolve there.

Defaults only: ``icewatch run`` with the probe interval, probe timeout, evaluator re-send and rule
timings as shipped, and deploy/alertmanager/alertmanager.yml with its route timings (group_wait 10s,
group_interval 1m) and inhibit rules as shipped; only its receivers are swapped for a test webhook
(one path per receiver) and its global secret-file settings dropped. Each run starts ``icewatch run`` afresh at a
random phase of the 30 s probe grid (where the rules' schedule falls against the probe rounds decides
whether ``for`` takes one or two evaluation intervals, see ``for`` below), then stops coturn at a random
phase, and starts it again at a random phase.

Where the time goes, per run, from what the services recorded:
  probe wait     coturn stopped -> the first failed probe started (``probes.at``; the 30 s grid)
  probe+store    that probe started -> its round stored (``probes.stored_at``; probe timeout)
  see (pending)  stored -> the evaluator saw it (``active_since`` in alerts/state.json; the rule's
                 interval and delay)
  for            pending -> firing (``fired_at``; the rule's for, in whole evaluation intervals: for 10s
                 with interval 10s takes 20 s when the pending evaluation read the clock later after
                 its scheduled time than the next one, e.g. when it ran together with the 30 s rules)
  deliver        firing -> the notification at the receiver (Alertmanager group_wait + HTTP)
and for the resolve: probe wait, ok stored -> resolved (the log's transition: interval +
keep_firing_for) and resolved -> at the receiver (Alertmanager group_interval).

``python -m tests.bench.bench_paging [RUNS]`` (default 5); also part of ``make bench``.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.rules import load_rules
from collector.settings import ProbeSettings
from tests.alertmanager import ALERTMANAGER, Received, WebhookReceiver, get_alerts, start_alertmanager
from tests.paging import (
    IcewatchRun,
    alertnames,
    is_alert,
    new_coturn,
    shipped_am_config,
    start_coturn,
    write_inventory,
)

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
GOAL_S = 60.0
DOWN = "turn-server-down"
PAGE_PATH = "/pagerduty"  # the shipped page route's first receiver
STAGES = ("probe wait", "probe+store", "see (pending)", "for", "deliver")
RESOLVE_STAGES = ("probe wait", "probe+store", "ok -> resolved", "deliver")


@dataclass
class Run:
    phase: float  # seconds into the probe grid slot when coturn was stopped
    total: float
    stages: dict[str, float]
    resolve_total: float
    resolve_stages: dict[str, float]


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.node()}, {platform.platform()}, {os.cpu_count()} CPUs {model}, "
            f"Python {platform.python_version()}")


def version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"({exc})"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"


def iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def log_time(ts: str) -> float:
    """The JSON log's ``ts`` (logging's default asctime, local time, milliseconds)."""
    return datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def wait_page(rx: WebhookReceiver, status: str, after: float, offset: float, timeout: float) -> Received:
    """The first notification at PAGE_PATH of ``status`` carrying turn-server-down, arrived after ``after``."""
    deadline = time.monotonic() + timeout
    match = is_alert(DOWN, status)
    while True:
        for r in rx.received:
            if r.path == PAGE_PATH and r.at + offset > after and match(r.json()):
                return r
        if time.monotonic() > deadline:
            got = [(r.path, r.json().get("status"), sorted(alertnames(r.json()))) for r in rx.received]
            raise RuntimeError(f"no {status} {DOWN} at {PAGE_PATH} within {timeout}s; received: {got}")
        time.sleep(0.05)


def probe_row(run: IcewatchRun, success: bool, after: float) -> tuple[float, float]:
    """(at, stored_at) of the first probe of ``success`` that started after ``after`` (epoch s)."""
    cond = "success" if success else "NOT success"
    rows = run.sql(
        "SELECT toUnixTimestamp64Milli(at) AS at_ms, toUnixTimestamp64Milli(stored_at) AS stored_ms FROM probes "
        f"WHERE {cond} AND toUnixTimestamp64Milli(at) >= {int(after * 1000)} ORDER BY at_ms LIMIT 1")
    if not rows:
        raise RuntimeError(f"no {'successful' if success else 'failed'} probe after {after}")
    return int(rows[0]["at_ms"]) / 1000, int(rows[0]["stored_ms"]) / 1000


def transition(run: IcewatchRun, text: str, after: float) -> float:
    for line in run.log_lines():
        if line.get("msg") == text and log_time(str(line["ts"])) >= after:
            return log_time(str(line["ts"]))
    raise RuntimeError(f"no log line {text!r} after {after}")


def quiet(run: IcewatchRun, am: str, timeout: float = 120.0) -> None:
    """Until the evaluator holds no turn-server-down and Alertmanager no longer has it."""
    deadline = time.monotonic() + timeout
    while any(i["rule_id"] == DOWN for i in run.state().values()) or any(
            a["labels"].get("alertname") == DOWN for a in get_alerts(am)):
        if time.monotonic() > deadline:
            raise RuntimeError("turn-server-down still held after the resolve")
        time.sleep(0.5)


def fresh_start(run: IcewatchRun, interval: float) -> float:
    """Stop icewatch and start it again (same data dir) at a random phase of the probe grid: where its
    rule schedule falls against the probe rounds is a property of the process (see for below)."""
    run.stop()
    time.sleep(random.uniform(0, interval))
    took = run.start()
    deadline = time.monotonic() + 90
    while not run.sql("SELECT 1 FROM probes WHERE success AND stored_at > now64(3) - INTERVAL 60 SECOND LIMIT 1"):
        if time.monotonic() > deadline:
            raise RuntimeError("no successful probe within 90 s of the start")
        time.sleep(0.5)
    return took


def one_run(run: IcewatchRun, coturn: Any, rx: WebhookReceiver, am: str, offset: float, interval: float) -> Run:
    fresh_start(run, interval)
    time.sleep(random.uniform(0, interval))  # a random phase of the probe grid
    stopped = time.time()
    coturn.stop()  # SIGTERM by its PID; its ports close at once
    fired = wait_page(rx, "firing", stopped, offset, 300)
    arrived = fired.at + offset
    fail_at, fail_stored = probe_row(run, False, stopped)
    down = [i for i in run.state().values() if i["rule_id"] == DOWN and i["phase"] == "firing"]
    pending = min(iso(i["active_since"]) for i in down)
    firing = min(iso(i["fired_at"]) for i in down)
    stages = dict(zip(STAGES, (fail_at - stopped, fail_stored - fail_at, pending - fail_stored, firing - pending,
                               arrived - firing), strict=True))

    time.sleep(random.uniform(0, interval))  # the resolve, too, from a random phase of the grid
    started = time.time()
    start_coturn(coturn)
    res = wait_page(rx, "resolved", started, offset, 400)
    res_arrived = res.at + offset
    ok_at, ok_stored = probe_row(run, True, started)
    resolved = transition(run, f"alert {DOWN} firing -> resolved", started)
    resolve_stages = dict(zip(RESOLVE_STAGES, (ok_at - started, ok_stored - ok_at, resolved - ok_stored,
                                               res_arrived - resolved), strict=True))
    quiet(run, am)
    return Run(stopped % interval, arrived - stopped, stages, res_arrived - started, resolve_stages)


def summary(name: str, values: Sequence[float]) -> str:
    return f"{name:<15} median {statistics.median(values):6.1f} s   max {max(values):6.1f} s   " \
           f"min {min(values):6.1f} s"


def main() -> int:
    probes = ProbeSettings()
    rules = {r.id: r for r in load_rules()}
    rule = rules[DOWN]
    print(f"# paging benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {RUNS} runs")
    print(f"# machine: {machine()}")
    print(f"# coturn: {version(['/usr/bin/turnserver', '--version'])}; "
          f"Alertmanager: {version([ALERTMANAGER, '--version'])}")
    print(f"# defaults: probe interval {probes.interval_s:.0f} s, probe timeout {probes.timeout_s:.0f} s, "
          f"{DOWN}: interval {rule.interval:.0f} s, delay {rule.delay:.0f} s, for {rule.for_:.0f} s, "
          f"keep_firing_for {rule.keep_firing_for:.0f} s; Alertmanager: shipped route (group_wait 10s, "
          f"group_interval 1m)")
    runs: list[Run] = []
    offset = time.time() - time.monotonic()  # Received.at (monotonic) -> epoch seconds
    with tempfile.TemporaryDirectory(prefix="bench-paging-") as tmp:
        root = Path(tmp)
        coturn = new_coturn(root / "coturn")
        start_coturn(coturn)
        try:
            with WebhookReceiver() as rx, start_alertmanager(root, rx.url, config=shipped_am_config(rx.url)) as am:
                run = IcewatchRun.configure(root, write_inventory(root, coturn.port), am)
                try:
                    print(f"icewatch run healthy after {run.start():.1f} s")
                    for n in range(1, RUNS + 1):
                        r = one_run(run, coturn, rx, am, offset, probes.interval_s)
                        runs.append(r)
                        print(f"run {n}: stopped {r.phase:4.1f} s into the probe slot; page after {r.total:5.1f} s ("
                              + ", ".join(f"{k} {v:.1f}" for k, v in r.stages.items())
                              + f"); resolve after {r.resolve_total:5.1f} s ("
                              + ", ".join(f"{k} {v:.1f}" for k, v in r.resolve_stages.items()) + ")",
                              flush=True)
                    others = {n for x in rx.received if x.path in (PAGE_PATH, "/slack-page")
                              for n in alertnames(x.json())} - {DOWN}
                    if others:
                        print(f"NOTE: other alerts paged during the bench: {sorted(others)}")
                finally:
                    run.stop()
        finally:
            coturn.stop()
    print()
    print(summary("stop -> page", [r.total for r in runs]))
    for stage in STAGES:
        print("  " + summary(stage, [r.stages[stage] for r in runs]))
    print(summary("start -> resolve", [r.resolve_total for r in runs]))
    for stage in RESOLVE_STAGES:
        print("  " + summary(stage, [r.resolve_stages[stage] for r in runs]))
    median = statistics.median(r.total for r in runs)
    dominant = max(STAGES, key=lambda s: statistics.median(r.stages[s] for r in runs))
    print(f"largest median share of stop -> page: {dominant}")
    verdict = "PASS" if median < GOAL_S else "FAIL"
    print(f"{verdict}: median stop -> page {median:.1f} s (goal < {GOAL_S:.0f} s)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
