"""The simulator's clock and outputs: plans calls at the chosen rate, uploads each report when its
call ends, appends each server's coturn lines to ``<turn_log_dir>/<server id>.log``, and posts the
simulated probe results every ``probe_interval_s``. Prints a progress line every few seconds."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from collector.contract import ProbeResult
from collector.inventory import Inventory
from collector.simulator.coturn_log import call_lines, probe_lines
from collector.simulator.incidents import REGION_KINDS, SERVER_KINDS, Conditions, Incident, conditions_at
from collector.simulator.plan import CallPlan, Fleet
from collector.simulator.probes import probe_results
from collector.simulator.render import telnyx_segment, w3c_report

MAX_ERRORS_KEPT = 100


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class SimulatorConfig:
    url: str
    seed: int = 1
    calls_per_minute: float = 200.0  # 1,000 concurrent calls reporting every 5 minutes
    duration_s: float | None = None  # None: until stopped
    incidents: tuple[Incident, ...] = ()
    turn_log_dir: Path | None = None
    probe_interval_s: float = 30.0
    api_key: str | None = None
    workers: int = 4
    progress_every_s: float = 5.0


@dataclass
class SimulatorStats:
    reports: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    turn_lines: int = 0
    probe_results: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 202)


def upload(plan: CallPlan) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of the call's report, as its SDK sends it from the client's address
    (X-Forwarded-For, as a load balancer in front of the collector would add it)."""
    client = {"x-forwarded-for": plan.client_ip, "user-agent": f"Mozilla/5.0 ({plan.browser}; simulated)"}
    if plan.fmt == "telnyx":
        return ("/call_report", json.dumps(telnyx_segment(plan)).encode(),
                {**client, "x-call-id": plan.call_id, "x-call-report-id": f"{plan.call_id}-0"})
    return "/v1/call-reports", json.dumps(w3c_report(plan)).encode(), client


class Simulator:
    def __init__(self, inventory: Inventory, config: SimulatorConfig, out: TextIO = sys.stderr,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        # The run tag (the start time, base 36) keeps a second run's call ids apart from the first's.
        self.fleet = Fleet(inventory, config.seed, run=_base36(int(now().timestamp())))
        self.fleet.check({i.target for i in config.incidents if i.kind in SERVER_KINDS}
                         | {i.args[1] for i in config.incidents if i.kind == "misroute"},
                         {i.target for i in config.incidents if i.kind in REGION_KINDS})
        self.config = config
        self.out = out
        self.now = now
        self.stats = SimulatorStats()
        self._lock = threading.Lock()
        self._logs: dict[str, TextIO] = {}
        # Uploads waiting for the collector, at most: a slow or down collector slows the simulator
        # down instead of queueing without end.
        self._in_flight = threading.BoundedSemaphore(config.workers * 4)

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        req = urllib.request.Request(self.config.url.rstrip("/") + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
        if self.config.api_key:
            req.add_header("Authorization", f"Bearer {self.config.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            self._error(f"{path} {exc.code}: {exc.read()[:300].decode(errors='replace')}")
            return int(exc.code)
        except (urllib.error.URLError, OSError) as exc:
            self._error(f"{path}: {exc}")
            return 0

    def _error(self, text: str) -> None:
        with self._lock:
            if len(self.stats.errors) < MAX_ERRORS_KEPT:
                self.stats.errors.append(text)

    def _count(self, future: Future[int], what: str) -> None:
        self._in_flight.release()
        if future.cancelled():
            return
        status = future.result()
        with self._lock:
            self.stats.statuses[status] += 1
            if what == "report":
                self.stats.reports += 1

    def _append(self, server_id: str, lines: list[str]) -> None:
        if self.config.turn_log_dir is None or not lines:
            return
        fh = self._logs.get(server_id)
        if fh is None:
            self.config.turn_log_dir.mkdir(parents=True, exist_ok=True)
            fh = self._logs[server_id] = (self.config.turn_log_dir / f"{server_id}.log").open("a", encoding="utf-8")
        fh.write("\n".join(lines) + "\n")
        fh.flush()
        self.stats.turn_lines += len(lines)

    def log_paths(self) -> dict[str, Path]:
        """The coturn log file of each TURN server (for ICEWATCH_TURN_LOGS)."""
        assert self.config.turn_log_dir is not None
        return {s.id: self.config.turn_log_dir / f"{s.id}.log" for s in self.fleet.turn_servers}

    def _submit(self, pool: ThreadPoolExecutor, stop: threading.Event, what: str, path: str, body: bytes,
                headers: dict[str, str]) -> None:
        while not self._in_flight.acquire(timeout=0.2):
            if stop.is_set():
                return
        fut = pool.submit(self._post, path, body, headers)
        fut.add_done_callback(lambda f: self._count(f, what))

    def run(self, stop: threading.Event | None = None) -> SimulatorStats:
        stop = stop or threading.Event()
        pool = ThreadPoolExecutor(self.config.workers)
        t0 = time.monotonic()
        calls = 0
        try:
            calls = self._loop(pool, stop, t0)
        finally:
            # Stopped: drop what has not started; a normal end: let the last uploads finish.
            pool.shutdown(wait=True, cancel_futures=stop.is_set())
            for fh in self._logs.values():
                fh.close()
            self._logs.clear()
        self.progress(time.monotonic() - t0, calls)
        return self.stats

    def _loop(self, pool: ThreadPoolExecutor, stop: threading.Event, t0: float) -> int:
        cfg = self.config
        interval = 60.0 / cfg.calls_per_minute
        index = probe_round = 0
        next_probe = 0.0
        next_progress = cfg.progress_every_s
        while not stop.is_set():
            elapsed = time.monotonic() - t0
            if cfg.duration_s is not None and elapsed >= cfg.duration_s:
                break
            conditions = conditions_at(cfg.incidents, elapsed)
            while index * interval <= elapsed:
                plan = self.fleet.plan(index, self.now(), conditions)
                if plan.configured.id not in conditions.servers_down:
                    self._append(plan.configured.id, call_lines(plan))
                self._submit(pool, stop, "report", *upload(plan))
                index += 1
            if elapsed >= next_probe:
                self._probe_round(pool, stop, probe_round, conditions)
                probe_round += 1
                next_probe += cfg.probe_interval_s
            if elapsed >= next_progress:
                self.progress(elapsed, index)
                next_progress += cfg.progress_every_s
            stop.wait(min(0.05, interval))
        return index

    def _probe_round(self, pool: ThreadPoolExecutor, stop: threading.Event, round_no: int,
                     conditions: Conditions) -> None:
        at = self.now()
        results: list[ProbeResult] = probe_results(self.fleet.inventory, at, conditions, round_no, self.config.seed)
        for server in self.fleet.turn_servers:
            if server.id not in conditions.servers_down:
                self._append(server.id, probe_lines(server, at, round_no, server.id in conditions.servers_auth_broken,
                                                    server.id in conditions.servers_quota_full))
        body = ("\n".join(r.model_dump_json() for r in results) + "\n").encode()
        self._submit(pool, stop, "probes", "/v1/probe-results", body, {})
        self.stats.probe_results += len(results)

    def progress(self, elapsed: float, calls: int) -> None:
        with self._lock:
            reports, failed = self.stats.reports, self.stats.failed
        s = self.stats
        active = [str(i) for i in self.config.incidents if i.active(elapsed)]
        rate = reports / elapsed if elapsed > 0 else 0.0
        print(f"simulate: {elapsed:6.1f}s  calls {calls}  reports sent {reports} ({rate:.1f}/s)  "
              f"not accepted {failed}  TURN lines {s.turn_lines}  probe results {s.probe_results}  "
              f"incidents: {', '.join(active) or 'none'}", file=self.out, flush=True)
