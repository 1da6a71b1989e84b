"""Debian's real coturn: drive UDP and TCP allocations with relayed data, a wrong password, a
denied peer and deallocation with turnutils_uclient/turnutils_peer, tail the real log file with
the FileTailer, and check that the reconstructed sessions are what the clients did.

Runs with ``--simple-log`` (seconds-counter prefix), with ``--new-log-timestamp`` (wall-clock
prefix) and with coturn's default dated file name ``turn_<pid>_<date>.log`` (tailed by a glob).
Every process is started here and stopped by PID. A missing binary or a server that does not
come up fails the test with the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.contract import Model, TurnEvent
from collector.turn.coturn import CoturnParser
from collector.turn.sessions import SessionSummary, reconstruct_sessions
from collector.turn.tailer import FileTailer
from tests.services import free_ports, stop_process

pytestmark = pytest.mark.coturn

HOST = "127.0.0.1"
USER, PASSWORD, REALM = "alice", "s3cret-pw", "icewatch.test"
DENIED_PEER = "127.0.0.5"
BINARIES = ("turnserver", "turnutils_uclient", "turnutils_peer")


class Recorder:
    """Publisher test double: records acknowledged payloads."""

    def __init__(self) -> None:
        self.items: list[Model] = []

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        self.items.extend(payloads)

    def close(self) -> None:
        pass

    @property
    def events(self) -> list[TurnEvent]:
        return [i for i in self.items if isinstance(i, TurnEvent)]


@dataclass
class Coturn:
    port: int
    peer_port: int
    log: Path
    directory: Path
    tailer: FileTailer
    recorder: Recorder

    def client(self, *args: str, peer: str = HOST, password: str = PASSWORD, timeout: float = 30) -> int:
        cmd = [
            "turnutils_uclient", "-c", "-u", USER, "-w", password, "-p", str(self.port),
            "-e", peer, "-r", str(self.peer_port), "-n", "5", "-m", "1", "-l", "100", *args, HOST,
        ]  # fmt: skip
        out = self.directory / "uclient.out"
        with open(out, "a") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return -1

    def sessions(self) -> dict[str, SessionSummary]:
        self.tailer.poll()
        return {s.session_id: s for s in reconstruct_sessions(self.recorder.events)}

    def new_sessions(self, before: set[str], wait: float = 10.0) -> dict[str, SessionSummary]:
        deadline = time.monotonic() + wait
        while True:
            now = self.sessions()
            fresh = {k: v for k, v in now.items() if k not in before}
            if fresh or time.monotonic() > deadline:
                return fresh
            time.sleep(0.2)

    def wait_closed(self, ids: set[str], wait: float = 20.0) -> dict[str, SessionSummary]:
        deadline = time.monotonic() + wait
        while True:
            now = self.sessions()
            if all(now[i].close_reason for i in ids) or time.monotonic() > deadline:
                return now
            time.sleep(0.3)


def _wait_tcp(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"turnserver exited with {proc.returncode}:\n{_tail(log)}", pytrace=False)
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"turnserver did not listen on {HOST}:{port} within {timeout}s:\n{_tail(log)}", pytrace=False)


def _tail(path: Path) -> str:
    found = sorted(path.parent.glob(path.name))
    if not found:
        return f"(no {path})"
    return "\n".join(found[-1].read_text(errors="replace").splitlines()[-30:])


@pytest.fixture(params=["simple-log", "new-log-timestamp", "dated-file-name"])
def coturn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Coturn]:
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.fail(f"coturn binaries not found: {missing} (Debian package 'coturn')", pytrace=False)
    port, peer_port = free_ports(2)
    relay_min = 49152 + (port % 150) * 100
    conf = tmp_path / "turnserver.conf"
    conf.write_text("")  # not /etc/turnserver.conf (Debian's sends the log to syslog)
    log = tmp_path / "turn.log"
    args = [
        "turnserver", "-c", str(conf), "--verbose", "--lt-cred-mech", f"--user={USER}:{PASSWORD}",
        f"--realm={REALM}", "-L", HOST, "-E", HOST, "--listening-port", str(port),
        "--min-port", str(relay_min), "--max-port", str(relay_min + 99), "--allow-loopback-peers",
        f"--denied-peer-ip={DENIED_PEER}", "--no-tls", "--no-dtls", "--no-cli",
        f"--log-file={log}", "--no-stdout-log", "--pidfile", str(tmp_path / "turn.pid"),
        f"--userdb={tmp_path / 'turndb'}",
    ]  # fmt: skip
    if request.param == "new-log-timestamp":
        args += ["--simple-log", "--new-log-timestamp"]
    elif request.param == "simple-log":
        args.append("--simple-log")
    else:  # coturn's default: turn_<pid>_<date>.log beside the given name, followed by a glob
        log = tmp_path / "turn_*.log"
    out = open(tmp_path / "turnserver.out", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    peer = subprocess.Popen(
        ["turnutils_peer", "-L", HOST, "-p", str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_tcp(port, server, log)
        rec = Recorder()
        tailer = FileTailer(log, rec, CoturnParser("coturn-it", b"it-key"), tmp_path / "turn.ckpt")
        yield Coturn(port, peer_port, log, tmp_path, tailer, rec)
        tailer.close()
    finally:
        stop_process(peer)
        stop_process(server)
        out.close()


def test_sessions_match_what_the_clients_did(coturn: Coturn) -> None:
    seen: set[str] = set(coturn.sessions())

    # 1. UDP allocation, a channel to the peer, 5 x 100 bytes relayed and echoed, deallocation
    assert coturn.client() == 0
    udp = coturn.new_sessions(seen)
    seen |= set(udp)
    # 2. the same over TCP
    assert coturn.client("-t") == 0
    tcp = coturn.new_sessions(seen)
    seen |= set(tcp)
    # 3. a wrong password
    assert coturn.client(password="wrong-password", timeout=20) != 0
    wrong = coturn.new_sessions(seen)
    seen |= set(wrong)
    # 4. a peer the server denies (--denied-peer-ip)
    assert coturn.client(peer=DENIED_PEER, timeout=20) != 0
    denied = coturn.new_sessions(seen)

    relayed = [s for s in udp.values() if s.channels]  # byte counts come with the close
    relayed_tcp = [s for s in tcp.values() if s.channels]
    assert len(relayed) == 1 and len(relayed_tcp) == 1, (udp, tcp)
    ids = {relayed[0].session_id, relayed_tcp[0].session_id}
    final = coturn.wait_closed(ids)
    u, t = final[relayed[0].session_id], final[relayed_tcp[0].session_id]

    for s, transport in ((u, "udp"), (t, "tcp")):
        assert s.transport == transport, s
        assert s.allocated and s.realm == REALM and s.user_hash
        assert s.auth_challenges == 1 and s.auth_rejected == 0 and s.error_codes == []
        assert s.peer_bytes == 2 * 5 * 100  # 500 bytes to the peer, 500 echoed back
        assert s.channels and all(c.startswith(f"{HOST}:") for c in s.channels)
        assert s.permissions == s.channels
        assert s.deallocated  # REFRESH lifetime=0
        assert s.client_bytes > s.peer_bytes
        assert s.started_at is not None and s.ended_at is not None
        assert s.duration_s is not None and s.duration_s >= 0
        assert s.listener_address == f"{HOST}:{coturn.port}"
    assert u.close_reason == "allocation timeout"
    assert t.close_reason is not None and t.close_reason.startswith("TCP ")

    assert wrong, "the wrong password left no session"
    w = next(iter(wrong.values()))
    assert w.auth_challenges == 1 and w.auth_rejected >= 1 and w.error_codes == [401]
    assert not w.allocated

    d = [s for s in denied.values() if 403 in s.error_codes]
    assert len(d) == 1, denied
    assert d[0].allocated and d[0].denied_peers >= 1 and d[0].channels == []
    events = coturn.recorder.events
    assert any(e.kind == "denied_peer" and e.peer_address == DENIED_PEER for e in events)
    assert any(e.kind == "auth_error" and e.reason == "credentials are incorrect" for e in events)
    assert any(e.kind == "request_message" and e.error_code == 403 for e in events)

    # all from one process; nothing unparsed; user names never in clear
    assert len({e.process_key for e in events}) == 1
    assert any(e.kind == "process_start" for e in events)
    assert coturn.tailer.dead_letters == 0
    assert all(USER not in e.raw for e in events if e.user_hash)
    assert len({e.event_id for e in events}) == len(events)
