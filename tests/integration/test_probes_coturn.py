"""Active probes against Debian's real coturn on 127.0.0.1.

Each coturn is started by its PID here and stopped by the same PID; nothing else is touched.
A missing ``/usr/bin/turnserver`` fails these tests with the reason (it is never a skip).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.contract import Model, ProbeResult
from collector.inventory import Inventory
from collector.probes import client
from collector.probes.client import Credentials, ProbeOptions
from collector.probes.credentials import probe_credentials
from collector.probes.scheduler import ProbeScheduler
from collector.settings import ProbeSettings

pytestmark = pytest.mark.coturn

TURNSERVER = Path("/usr/bin/turnserver")
HOST = "127.0.0.1"
USER, PASSWORD, REALM = "probe-user", "probe-pass", "icewatch.test"
SECRET = "rest-shared-secret"
OPTIONS = ProbeOptions(timeout_s=3.0, initial_rto_s=0.2)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((HOST, 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


@dataclass
class Coturn:
    """One coturn process in its own directory (own log, PID file and user database)."""

    workdir: Path
    auth: list[str]
    port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)
    tls_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "turnserver.log"

    @property
    def output(self) -> Path:
        return self.workdir / "turnserver.out"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> None:
        if not TURNSERVER.exists():
            pytest.fail(f"{TURNSERVER} is missing: install Debian's coturn package to run the probe tests",
                        pytrace=False)  # fmt: skip
        argv = [
            str(TURNSERVER), "-n",
            f"--listening-ip={HOST}", f"--listening-port={self.port}", f"--relay-ip={HOST}",
            *self.auth, f"--realm={REALM}",
            "--no-dtls", "--no-cli", "--fingerprint", "--verbose",
            f"--log-file={self.log}", "--simple-log",
            f"--pidfile={self.workdir / 'turnserver.pid'}", f"--userdb={self.workdir / 'turndb'}",
            *self.extra,
        ]  # fmt: skip
        if not any(a.startswith("--cert") for a in self.extra):
            argv.append("--no-tls")
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"turnserver exited with {self.proc.returncode}:\n{self._tail()}", pytrace=False)
            text = self.log_text()
            # Readiness from the log, not from a probe (which would be a session of its own).
            if "Total General servers" in text and f"UDP listener opened on: {HOST}:{self.port}" in text:
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"turnserver not ready after 15 s:\n{self._tail()}", pytrace=False)

    def _tail(self) -> str:
        out = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join((out + self.log_text()).splitlines()[-30:])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # our own child, by its PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@contextlib.contextmanager
def running(coturn: Coturn) -> Iterator[Coturn]:
    coturn.start()
    try:
        yield coturn
    finally:
        coturn.stop()


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """coturn with long-term credentials USER:PASSWORD in REALM."""
    with running(Coturn(tmp_path_factory.mktemp("coturn"), ["--lt-cred-mech", f"--user={USER}:{PASSWORD}"])) as c:
        yield c


@pytest.fixture(scope="module")
def coturn_rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """coturn with the TURN REST API shared secret."""
    auth = ["--use-auth-secret", f"--static-auth-secret={SECRET}"]
    with running(Coturn(tmp_path_factory.mktemp("coturn-rest"), auth)) as c:
        yield c


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


@pytest.fixture(scope="module")
def coturn_tls(tmp_path_factory: pytest.TempPathFactory, cert: tuple[Path, Path]) -> Iterator[Coturn]:
    """coturn with long-term credentials and a TLS listener (``tls_port``)."""
    tls_port = free_port()
    c = Coturn(
        tmp_path_factory.mktemp("coturn-tls"),
        ["--lt-cred-mech", f"--user={USER}:{PASSWORD}"],
        extra=[f"--tls-listening-port={tls_port}", f"--cert={cert[0]}", f"--pkey={cert[1]}"],
        tls_port=tls_port,
    )
    with running(c):
        yield c


# ---- single probes --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_binding_succeeds_with_a_latency(coturn: Coturn, transport: client.Transport) -> None:
    out = client.stun_binding(HOST, coturn.port, transport, OPTIONS)
    assert out.success, out
    assert out.error_code is None and out.error is None
    assert out.latency_ms is not None and 0 < out.latency_ms < 1000
    assert out.mapped_address is not None and out.mapped_address[0] == HOST
    print(f"coturn Binding {transport}: {out.latency_ms:.2f} ms")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_allocate_succeeds_and_is_released(coturn: Coturn, transport: client.Transport) -> None:
    released = f"refreshed, realm=<{REALM}>, username=<{USER}>, lifetime=0"
    before = coturn.log_text().count(released)
    out = client.turn_allocate(HOST, coturn.port, transport, Credentials(USER, PASSWORD), OPTIONS)
    assert out.success, out
    assert out.latency_ms is not None and 0 < out.latency_ms < 1000
    assert out.relayed_address is not None and out.relayed_address[0] == HOST
    assert out.released is True
    print(f"coturn Allocate {transport}: {out.latency_ms:.2f} ms, relayed {out.relayed_address}")
    # coturn's own account: the allocation was made and deleted again (Refresh, lifetime 0).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and coturn.log_text().count(released) == before:
        time.sleep(0.05)
    log = coturn.log_text()
    assert log.count(released) == before + 1
    assert f"user <{USER}>: incoming packet ALLOCATE processed, success" in log


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_wrong_password_is_401(coturn: Coturn, transport: client.Transport) -> None:
    out = client.turn_allocate(HOST, coturn.port, transport, Credentials(USER, "wrong"), OPTIONS)
    assert (out.success, out.error_code) == (False, 401), out
    assert out.error and out.latency_ms is not None


def test_unknown_user_is_401(coturn: Coturn) -> None:
    out = client.turn_allocate(HOST, coturn.port, "udp", Credentials("nobody", PASSWORD), OPTIONS)
    assert (out.success, out.error_code) == (False, 401), out


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_stopped_coturn_is_unreachable(tmp_path: Path, transport: client.Transport) -> None:
    c = Coturn(tmp_path, ["--lt-cred-mech", f"--user={USER}:{PASSWORD}"])
    with running(c):
        assert client.stun_binding(HOST, c.port, transport, OPTIONS).success
    options = ProbeOptions(timeout_s=1.0, initial_rto_s=0.2)
    for out in (
        client.stun_binding(HOST, c.port, transport, options),
        client.turn_allocate(HOST, c.port, transport, Credentials(USER, PASSWORD), options),
    ):
        assert not out.success and out.error_code is None and out.latency_ms is None
        assert out.error in ("timeout", "connection refused"), out


# ---- TURN REST API --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_turn_rest_credentials(coturn_rest: Coturn, transport: client.Transport) -> None:
    settings = ProbeSettings(turn_secret=SecretStr(SECRET), turn_rest_user="icewatch")
    out = client.turn_allocate(HOST, coturn_rest.port, transport, probe_credentials(settings), OPTIONS)
    assert out.success and out.released, out
    wrong = probe_credentials(ProbeSettings(turn_secret=SecretStr("not-the-secret")))
    out = client.turn_allocate(HOST, coturn_rest.port, transport, wrong, OPTIONS)
    assert (out.success, out.error_code) == (False, 401), out
    short_lived = ProbeSettings(turn_secret=SecretStr(SECRET), turn_rest_ttl_s=60)
    expired = probe_credentials(short_lived, now=time.time() - 3600)
    out = client.turn_allocate(HOST, coturn_rest.port, transport, expired, OPTIONS)
    assert (out.success, out.error_code) == (False, 401), out


# ---- TLS ------------------------------------------------------------------------------------


def test_tls_binding_and_allocate(coturn_tls: Coturn, cert: tuple[Path, Path]) -> None:
    assert coturn_tls.tls_port is not None
    port = coturn_tls.tls_port
    verified = ProbeOptions(timeout_s=3.0, tls_ca_file=str(cert[0]), tls_server_name="localhost")
    binding = client.stun_binding(HOST, port, "tls", verified)
    assert binding.success, binding
    allocate = client.turn_allocate(HOST, port, "tls", Credentials(USER, PASSWORD), verified)
    assert allocate.success and allocate.released, allocate
    print(f"coturn TLS: Binding {binding.latency_ms:.2f} ms, Allocate {allocate.latency_ms:.2f} ms")
    untrusted = client.stun_binding(HOST, port, "tls", ProbeOptions(timeout_s=3.0))
    assert not untrusted.success and untrusted.error is not None and untrusted.error.startswith("tls: certificate")
    unverified = client.stun_binding(HOST, port, "tls", ProbeOptions(timeout_s=3.0, tls_verify=False))
    assert unverified.success, unverified


# ---- the scheduler --------------------------------------------------------------------------


class RecordingPublisher:
    """Publisher test double: records what it acknowledged."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Model], str]] = []
        self.lock = threading.Lock()

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        with self.lock:
            self.batches.append((list(payloads), tenant))

    def close(self) -> None:
        pass


def inventory(*servers: tuple[str, int]) -> Inventory:
    lines = ["servers:"]
    for server_id, port in servers:
        lines += [
            f"  - id: {server_id}",
            "    region: local",
            "    lat: 50.1",
            "    lon: 8.7",
            f"    urls: ['stun:{HOST}:{port}', 'turn:{HOST}:{port}?transport=udp', 'turn:{HOST}:{port}?transport=tcp']",
            "    transports: [udp, tcp]",
        ]
    return Inventory.from_yaml_text("\n".join(lines) + "\n")


def test_scheduler_round_publishes_one_result_per_server_transport_kind(coturn: Coturn, tmp_path: Path) -> None:
    stopped = Coturn(tmp_path, ["--lt-cred-mech", f"--user={USER}:{PASSWORD}"])  # never started: port closed
    inv = inventory(("coturn-up", coturn.port), ("coturn-down", stopped.port))
    settings = ProbeSettings(
        vantage="it-vantage", timeout_s=1.0, initial_rto_s=0.2, turn_username=USER,
        turn_password=SecretStr(PASSWORD), tenant="acme",
    )  # fmt: skip
    pub = RecordingPublisher()
    sched = ProbeScheduler(inv, settings, pub)
    scheduled = sched.slot()
    results = sched.run_once(scheduled)

    assert len(pub.batches) == 1 and pub.batches[0][1] == "acme"
    published = [p for p in pub.batches[0][0] if isinstance(p, ProbeResult)]
    assert published == results
    keys = {(r.server_id, r.transport, r.kind) for r in published}
    assert keys == {(s, t, k) for s in ("coturn-up", "coturn-down") for t in ("udp", "tcp")
                    for k in ("stun_binding", "turn_allocate")}  # fmt: skip
    assert len(published) == len(keys) == 8
    assert len({r.probe_id for r in published}) == 8
    for r in published:
        assert r.vantage == "it-vantage" and r.region == "local"
        assert r.at.tzinfo is not None and abs((r.at - datetime.now(UTC)).total_seconds()) < 60
        if r.server_id == "coturn-up":
            assert r.success and r.latency_ms is not None and r.error is None, r
            assert r.target == f"{HOST}:{coturn.port}"
        else:
            assert not r.success and r.error_code is None and r.error in ("timeout", "connection refused"), r
    assert sched.pending == 0


def test_scheduler_with_turn_rest_secret(coturn_rest: Coturn) -> None:
    settings = ProbeSettings(vantage="it", timeout_s=2.0, turn_secret=SecretStr(SECRET))
    pub = RecordingPublisher()
    results = ProbeScheduler(inventory(("rest", coturn_rest.port)), settings, pub).run_once()
    assert len(results) == 4 and all(r.success for r in results), results
    assert SECRET not in coturn_rest.log_text()


def test_background_scheduler_against_coturn(coturn: Coturn) -> None:
    settings = ProbeSettings(vantage="bg", interval_s=1, turn_username=USER, turn_password=SecretStr(PASSWORD))
    pub = RecordingPublisher()
    sched = ProbeScheduler(inventory(("coturn-up", coturn.port)), settings, pub)
    sched.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(pub.batches) < 2:
            time.sleep(0.05)
    finally:
        sched.shutdown()
    assert len(pub.batches) >= 2
    for batch, _ in pub.batches:
        assert len(batch) == 4
        assert all(isinstance(r, ProbeResult) and r.success for r in batch), batch
