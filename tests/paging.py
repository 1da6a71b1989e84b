"""Paging end to end with real services (issue 12): Debian's coturn on loopback, ``icewatch run`` as a
subprocess probing it (embedded store, the evaluator on it) and delivering to Debian's real
Alertmanager, whose receiver is a ``WebhookReceiver``. Shared by
tests/integration/test_paging_real.py and tests/bench/bench_paging.py.

Every process here is started by us and stopped by its PID (coturn via ``Coturn`` of
tests/integration/test_probes_coturn.py, Alertmanager via ``start_alertmanager``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.integration.test_probes_coturn import PASSWORD, USER, Coturn
from tests.services import HOST, REPO_ROOT, ServiceError, free_ports, log_tail

ICEWATCH = [sys.executable, "-m", "collector"]
SERVER_ID, REGION, TENANT = "turn-eu-1", "eu", "default"
PAGE_PATH, WATCHDOG_PATH = "/page", "/watchdog"
SHIPPED_AM_CONFIG = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def new_coturn(workdir: Path) -> Coturn:
    """coturn with long-term credentials USER:PASSWORD (not started)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return Coturn(workdir, ["--lt-cred-mech", f"--user={USER}:{PASSWORD}"])


def start_coturn(coturn: Coturn) -> None:
    """Start (or start again, same port): the old log is moved aside first, because ``Coturn.start``
    waits for its listener line in the log and an old line would pass before the new listener is up."""
    if coturn.log.exists():
        coturn.log.rename(coturn.log.with_name(f"turnserver-{time.time_ns()}.log"))
    coturn.start()


def inventory_yaml(port: int) -> str:
    """One server, region ``eu``, its stun:/turn: URLs on the coturn port, udp + tcp."""
    return (
        "regions:\n"
        f"  - {{id: {REGION}, name: Europe, lat: 50.11, lon: 8.68}}\n"
        "servers:\n"
        f"  - id: {SERVER_ID}\n"
        f"    region: {REGION}\n"
        "    urls:\n"
        f"      - stun:{HOST}:{port}\n"
        f"      - turn:{HOST}:{port}?transport=udp\n"
        f"      - turn:{HOST}:{port}?transport=tcp\n"
        f"    hostnames: [{HOST}]\n"
        f"    addresses: [{HOST}]\n"
        "    lat: 50.11\n"
        "    lon: 8.68\n"
        f"    ports: [{port}]\n"
        "    transports: [udp, tcp]\n"
    )


def paging_am_config(receiver_url: str, group_wait: str = "1s", group_interval: str = "1s",
                   repeat_interval: str = "1h") -> str:
    """The test Alertmanager: pages and tickets to ``<receiver>/page``, grouped like the shipped
    config; the watchdog routed to ``<receiver>/watchdog`` (so it never shows up among the pages)."""
    config = {
        "route": {
            "receiver": "page",
            "group_by": ["alertname", "tenant", "turn_server", "region"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
            "routes": [{"matchers": ['alertname="watchdog"'], "receiver": "watchdog", "continue": False}],
        },
        "receivers": [
            {"name": "page", "webhook_configs": [{"url": receiver_url + PAGE_PATH, "send_resolved": True}]},
            {"name": "watchdog", "webhook_configs": [{"url": receiver_url + WATCHDOG_PATH, "send_resolved": False}]},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)



def shipped_am_config(receiver_url: str) -> str:
    """deploy/alertmanager/alertmanager.yml with its route, timings and inhibit rules as shipped;
    only the receivers are swapped for webhooks to ``<receiver>/<receiver name>`` and the global
    secret files and SMTP/Slack settings (used only by the swapped receivers) dropped."""
    shipped = yaml.safe_load(SHIPPED_AM_CONFIG.read_text())
    names = [r["name"] for r in shipped["receivers"]]
    shipped.pop("global", None)
    shipped["receivers"] = [
        {"name": n, "webhook_configs": [{"url": f"{receiver_url}/{n}", "send_resolved": n != "deadmansswitch"}]}
        for n in names
    ]
    return yaml.safe_dump(shipped, sort_keys=False)


def alertnames(payload: Any) -> set[str]:
    return {a["labels"].get("alertname", "") for a in payload.get("alerts", [])}


def is_alert(alertname: str, status: str) -> Callable[[Any], bool]:
    """A webhook payload of ``status`` carrying an alert named ``alertname``."""

    def match(payload: Any) -> bool:
        return bool(payload.get("status") == status and alertname in alertnames(payload))

    return match


@dataclass
class IcewatchRun:
    """``icewatch run`` (embedded store) as a subprocess, started and stopped by its PID."""

    directory: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @classmethod
    def configure(cls, directory: Path, inventory: Path, alertmanager: str, *, password: str = PASSWORD,
                  extra: Mapping[str, str] | None = None) -> IcewatchRun:
        (port,) = free_ports(1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
        env.update({
            "ICEWATCH_HOST": HOST,
            "ICEWATCH_PORT": str(port),
            "ICEWATCH_DATA_DIR": str(directory / "data"),
            "ICEWATCH_HASH_KEY": "paging-test-key",
            "ICEWATCH_INVENTORY": str(inventory),
            "ICEWATCH_PROBES_ENABLED": "true",
            "ICEWATCH_PROBES_VANTAGE": "paging-vantage",
            "ICEWATCH_PROBES_TURN_USERNAME": USER,
            "ICEWATCH_PROBES_TURN_PASSWORD": password,
            "ICEWATCH_ALERTS__ALERTMANAGER_URLS": alertmanager,
            "ICEWATCH_ALERTS__EXTERNAL_URL": f"http://{HOST}:{port}",
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        })
        return cls(directory, env, port)

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def state_path(self) -> Path:
        return Path(self.env["ICEWATCH_DATA_DIR"]) / "alerts" / "state.json"

    @property
    def log(self) -> Path:
        return self.logs[-1]

    def start(self, timeout: float = 90.0) -> float:
        """Start and wait for /healthz; returns the seconds it took."""
        if self.proc is not None and self.proc.poll() is None:
            raise ServiceError("icewatch run is already running")
        self.starts += 1
        log = self.directory / f"run-{self.starts}.log"
        self.logs.append(log)
        began = time.monotonic()
        with log.open("wb") as out:
            self.proc = subprocess.Popen([*ICEWATCH, "run"], env=self.env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = began + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2):
                    return time.monotonic() - began
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise ServiceError(f"icewatch run exited with {self.proc.returncode}\n{log_tail(log, 60)}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"icewatch run not healthy after {timeout}s\n{log_tail(log, 60)}")
            time.sleep(0.2)

    def kill9(self) -> None:
        """SIGKILL by PID (no shutdown code runs), reaped."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 30 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.proc = None

    def sql(self, statement: str) -> list[dict[str, Any]]:
        """``POST /v1/sql`` on the running process (it holds the store)."""
        req = urllib.request.Request(f"{self.base}/v1/sql", data=json.dumps({"sql": statement}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                rows: list[dict[str, Any]] = json.loads(resp.read())["rows"]
                return rows
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"/v1/sql {exc.code}: {exc.read()[:500]!r}") from None

    def state(self) -> dict[str, Any]:
        """The evaluator's persisted book (instances by fingerprint), {} before the first write."""
        try:
            doc: dict[str, Any] = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        instances: dict[str, Any] = doc["instances"]
        return instances

    def log_lines(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path in self.logs:
            for line in path.read_text(errors="replace").splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict):
                    out.append(item)
        return out


def write_inventory(directory: Path, port: int) -> Path:
    path = directory / "inventory.yaml"
    path.write_text(inventory_yaml(port))
    return path
