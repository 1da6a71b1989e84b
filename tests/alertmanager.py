"""The real Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) and a webhook receiver
for tests that check what a receiver actually gets.

``start_alertmanager(tmp_path, receiver_url)`` runs Alertmanager on a free loopback port without
clustering, its one receiver a webhook to ``receiver_url``, and stops it by its PID. A missing
binary or an Alertmanager that does not become ready raises ``ServiceError`` (the test fails; it
is never skipped). ``WebhookReceiver`` is a stdlib HTTP server on a free port that records every
POST (thread-safe) and answers with a status the test chooses.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.services import HOST, ServiceError, free_ports, log_tail, stop_process

ALERTMANAGER = "prometheus-alertmanager"  # Debian's name of the alertmanager binary
AMTOOL = "amtool"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"{name} not found on PATH (Debian package 'prometheus-alertmanager')")
    return path


def webhook_config(
    receiver_url: str, group_wait: str = "1s", group_interval: str = "1s", repeat_interval: str = "1h"
) -> str:
    """An Alertmanager config whose only receiver posts to ``receiver_url`` (resolved too),
    grouping by alertname."""
    return (
        "route:\n"
        "  receiver: test-webhook\n"
        "  group_by: [alertname]\n"
        f"  group_wait: {group_wait}\n"
        f"  group_interval: {group_interval}\n"
        f"  repeat_interval: {repeat_interval}\n"
        "receivers:\n"
        "  - name: test-webhook\n"
        "    webhook_configs:\n"
        f"      - url: {json.dumps(receiver_url)}\n"
        "        send_resolved: true\n"
    )


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def start_alertmanager(
    tmp_path: Path,
    receiver_url: str,
    group_wait: str = "1s",
    *,
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    config: str | None = None,
    timeout: float = 30.0,
) -> Iterator[str]:
    """Run Alertmanager on 127.0.0.1 (its own directory under ``tmp_path``) and yield its base URL
    ``http://127.0.0.1:<port>``. ``config`` replaces the generated one-webhook config."""
    exe = binary(ALERTMANAGER)
    directory = tmp_path / f"alertmanager-{time.monotonic_ns()}"
    (directory / "data").mkdir(parents=True)
    config_file = directory / "alertmanager.yml"
    config_file.write_text(config or webhook_config(receiver_url, group_wait, group_interval, repeat_interval))
    (port,) = free_ports(1)
    base = f"http://{HOST}:{port}"
    log = directory / "alertmanager.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                exe,
                f"--config.file={config_file}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address={HOST}:{port}",
                "--cluster.listen-address=",  # no gossip: a single instance
                "--log.level=debug",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _ready(base):
            if proc.poll() is not None:
                raise ServiceError(f"Alertmanager exited with {proc.returncode}\n{log_tail(log)}")
            if time.monotonic() > deadline:
                raise ServiceError(f"Alertmanager not ready on {base} after {timeout}s\n{log_tail(log)}")
            time.sleep(0.1)
        yield base
    finally:
        stop_process(proc)


def get_alerts(base: str) -> list[dict[str, Any]]:
    """``GET /api/v2/alerts``: the alerts not yet resolved (gettableAlerts: labels, annotations,
    status.state active|suppressed|unprocessed, status.inhibitedBy, startsAt, endsAt, ...)."""
    with urllib.request.urlopen(f"{base}/api/v2/alerts", timeout=5) as response:
        data: list[dict[str, Any]] = json.loads(response.read())
    return data


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """``with WebhookReceiver() as rx:`` -> ``rx.url`` takes POSTs; ``rx.received`` lists them."""

    def __init__(self, status: int = 200, answer: bytes = b"") -> None:
        self.status = status  # what requests get (a test may change it) ...
        self.statuses: list[int] = []  # ... after these, one per request, first first
        self.answer = answer
        self._lock = threading.RLock()  # a wait_for predicate may read .received
        self._arrived = threading.Condition(self._lock)
        self._received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                item = Received(time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._arrived:
                    receiver._received.append(item)
                    receiver._arrived.notify_all()
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                    answer = receiver.answer
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def payloads(self) -> list[Any]:
        return [r.json() for r in self.received]

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 30.0) -> Received:
        """The first request whose JSON body satisfies ``predicate``; AssertionError (listing what
        did arrive) when none did within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for item in self._received:
                    with contextlib.suppress(ValueError):
                        if predicate(item.json()):
                            return item
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [r.body.decode(errors="replace")[:2000] for r in self._received]
                    raise AssertionError(f"no matching request within {timeout}s; received: {got}")
                self._arrived.wait(left)
