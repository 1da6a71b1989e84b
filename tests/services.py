"""Real services for integration tests, started through the scripts in deploy/local/.

Each service lives in its own directory (under the pytest tmp root), listens on free ports on
127.0.0.1, and is stopped by the PID its script recorded. Nothing here kills a process it did not
start. Failures raise ``ServiceError`` with the script output and the tail of the service log.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_LOCAL = REPO_ROOT / "deploy" / "local"
HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A service script failed; the message carries its output and the service log tail."""


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now, chosen below the ephemeral range
    so that outgoing connections cannot take them while a service restarts."""
    high = min(_ephemeral_low(), 65536)
    low = max(1024, high - 12000)
    sockets: list[socket.socket] = []
    try:
        for port in random.sample(range(low, high), min(high - low, 400)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((HOST, port))
            except OSError:
                s.close()
                continue
            sockets.append(s)
            if len(sockets) == count:
                return [sock.getsockname()[1] for sock in sockets]
        raise ServiceError(f"no {count} free TCP ports found in {low}-{high - 1} on {HOST}")
    finally:
        for s in sockets:
            s.close()


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return f"---- last {min(lines, len(text))} lines of {path} ----\n" + "\n".join(text[-lines:])


@dataclass
class ScriptService:
    """A service driven by ``deploy/local/<script> {start|stop|status}`` with env settings."""

    script: Path
    directory: Path
    env: dict[str, str]
    logs: list[Path] = field(default_factory=list)
    start_timeout: float = 180.0

    def _run(self, action: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.script), action],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _fail(self, action: str, result: subprocess.CompletedProcess[str] | None, why: str) -> ServiceError:
        parts = [f"{self.script.name} {action} failed: {why}"]
        if result is not None:
            parts.append(f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        parts.extend(log_tail(p) for p in self.logs)
        return ServiceError("\n".join(parts))

    def start(self) -> None:
        try:
            result = self._run("start", self.start_timeout)
        except subprocess.TimeoutExpired as exc:
            raise self._fail("start", None, f"no answer after {exc.timeout}s") from exc
        if result.returncode != 0:
            raise self._fail("start", result, "the script reported an error")

    def stop(self) -> None:
        try:
            result = self._run("stop", 120)
        except subprocess.TimeoutExpired as exc:
            raise self._fail("stop", None, f"no answer after {exc.timeout}s") from exc
        if result.returncode != 0:
            raise self._fail("stop", result, "the script reported an error")

    def restart(self) -> None:
        """Stop and start again on the same directory and ports (data survives)."""
        self.stop()
        self.start()

    def running(self) -> bool:
        return self._run("status", 30).returncode == 0

    @property
    def pid_file(self) -> Path:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


class KafkaService(ScriptService):
    """A single-node KRaft broker from deploy/local/kafka.sh."""

    def __init__(self, directory: Path, port: int | None = None, controller_port: int | None = None) -> None:
        if port is None or controller_port is None:
            port, controller_port = free_ports(2)
        self.port = port
        self.controller_port = controller_port
        super().__init__(
            script=DEPLOY_LOCAL / "kafka.sh",
            directory=directory,
            env={
                "KAFKA_DIR": str(directory),
                "KAFKA_PORT": str(port),
                "KAFKA_CONTROLLER_PORT": str(controller_port),
            },
            logs=[directory / "logs" / "stdout.log", directory / "logs" / "server.log"],
        )

    @property
    def host(self) -> str:
        return HOST

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:<port>"`` for kafka-python's ``bootstrap_servers``."""
        return f"{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kafka.pid"

    def start(self) -> None:
        super().start()
        self.wait_metadata()

    def admin(self, **config: Any) -> Any:
        """A kafka-python ``KafkaAdminClient`` for this broker; the caller closes it."""
        from kafka import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000, **config)

    def wait_metadata(self, timeout: float = 60.0) -> None:
        """Wait until a metadata request through kafka-python succeeds."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                client = self.admin()
                try:
                    client.list_topics()
                    return
                finally:
                    client.close()
            except Exception as exc:  # any client error means "not yet"
                last = exc
                time.sleep(0.3)
        raise self._fail("start", None, f"metadata request did not succeed within {timeout}s: {last!r}")

    def create_topic(self, name: str, partitions: int = 1, timeout: float = 30.0, **configs: str) -> None:
        """Create ``name`` (replication factor 1) and wait until every partition has a leader."""
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        client = self.admin()
        try:
            with contextlib.suppress(TopicAlreadyExistsError):
                client.create_topics(
                    [NewTopic(name, partitions, 1, topic_configs=dict(configs))], timeout_ms=int(timeout * 1000)
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                described = client.describe_topics([name])
                parts = described[0].get("partitions", []) if described else []
                if len(parts) == partitions and all(
                    p.get("error_code", 0) == 0 and p.get("leader_id", p.get("leader", -1)) >= 0 for p in parts
                ):
                    return
                time.sleep(0.2)
        finally:
            client.close()
        raise ServiceError(f"topic {name!r} has no leader for all {partitions} partitions after {timeout}s")


class ClickHouseServerService(ScriptService):
    """Debian's clickhouse-server 18.16 from deploy/local/clickhouse_server.sh."""

    def __init__(self, directory: Path, port: int | None = None, http_port: int | None = None) -> None:
        if port is None or http_port is None:
            port, http_port = free_ports(2)
        self.port = port
        self.http_port = http_port
        super().__init__(
            script=DEPLOY_LOCAL / "clickhouse_server.sh",
            directory=directory,
            env={"CH_DIR": str(directory), "CH_TCP_PORT": str(port), "CH_HTTP_PORT": str(http_port)},
            logs=[directory / "logs" / "stdout.log", directory / "logs" / "clickhouse-server.err.log"],
            start_timeout=120.0,
        )

    host = HOST
    user = "default"
    password = ""

    @property
    def pid_file(self) -> Path:
        return self.directory / "clickhouse-server.pid"

    def client(self, **kwargs: Any) -> Any:
        """A clickhouse-driver ``Client`` for this server; the caller disconnects it."""
        from clickhouse_driver import Client

        return Client(host=HOST, port=self.port, user=self.user, password=self.password, **kwargs)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a server process a test started: SIGTERM, then SIGKILL after ``grace`` seconds.
    Does nothing once it has exited (its id may belong to someone else by then)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
