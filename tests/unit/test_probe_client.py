"""The probe client against an in-process STUN/TURN responder on 127.0.0.1 (UDP, TCP, TLS)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.probes import client, stun
from collector.probes.client import Credentials, ProbeOptions
from collector.probes.stun import Attr, Message, MessageClass, Method

HOST = "127.0.0.1"
FAST = ProbeOptions(timeout_s=1.0, initial_rto_s=0.05, release_timeout_s=0.5)


@dataclass
class Behaviour:
    """How the fake server answers."""

    realm: str = "example.org"
    users: dict[str, str] = field(default_factory=lambda: {"alice": "secret"})
    drop: int = 0  # ignore this many requests first (UDP retransmission tests)
    silent: bool = False  # never answer
    stale_once: bool = False  # answer the first authenticated Allocate with 438
    allocate_error: tuple[int, str] | None = None  # answer authenticated Allocates with this error
    stray_first: bool = False  # send a response with a foreign transaction id before each answer
    split_writes: bool = False  # stream: send answers in 3-byte pieces
    garbage: bool = False  # stream: answer with bytes that are not STUN
    hang_up: bool = False  # stream: close the connection instead of answering
    no_auth: bool = False  # grant Allocates without a challenge


class FakeTurnServer:
    """A small STUN/TURN responder: Binding, Allocate with the long-term 401 dance, Refresh."""

    def __init__(self, behaviour: Behaviour | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.b = behaviour or Behaviour()
        self.requests: list[Message] = []
        self.nonce_count = 0
        self.stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((HOST, 0))
        self.udp.settimeout(0.05)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((HOST, 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.05)
        self.tls_ctx: ssl.SSLContext | None = None
        if tls is not None:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        self.threads = [
            threading.Thread(target=self._udp_loop, daemon=True),
            threading.Thread(target=self._tcp_loop, daemon=True),
        ]
        for t in self.threads:
            t.start()

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getsockname()[1])

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        self.udp.close()
        self.tcp.close()

    # ---- protocol ---------------------------------------------------------------------------

    def _nonce(self) -> bytes:
        self.nonce_count += 1
        return f"nonce-{self.nonce_count}".encode()

    def _challenge(self, req: Message, code: int = 401, reason: str = "Unauthorized") -> bytes:
        extra = [(int(Attr.REALM), self.b.realm.encode()), (int(Attr.NONCE), self._nonce())]
        return stun.error_response(req, code, reason, extra)

    def answer(self, data: bytes, peer: tuple[str, int]) -> list[bytes]:
        req = stun.decode(data)
        self.requests.append(req)
        if self.b.silent:
            return []
        if self.b.drop > 0:
            self.b.drop -= 1
            return []
        out: list[bytes] = []
        if self.b.stray_first:
            out.append(stun.success_response(Message(req.method, req.cls, b"\x99" * 12, (), b"")))
        mapped = (int(Attr.XOR_MAPPED_ADDRESS), stun.encode_xor_address(peer[0], peer[1], req.transaction_id))
        if req.method == Method.BINDING:
            out.append(stun.success_response(req, [mapped]))
            return out
        if req.method == Method.ALLOCATE and self.b.no_auth:
            relayed = (int(Attr.XOR_RELAYED_ADDRESS), stun.encode_xor_address(HOST, 50000, req.transaction_id))
            out.append(stun.success_response(req, [relayed, mapped]))
            return out
        if req.get(Attr.MESSAGE_INTEGRITY) is None:
            out.append(self._challenge(req))
            return out
        password = self.b.users.get(req.username or "")
        key = stun.long_term_key(req.username or "", self.b.realm, password or "")
        if password is None or req.realm != self.b.realm or not req.check_integrity(key):
            out.append(self._challenge(req))
            return out
        if req.method == Method.ALLOCATE:
            if self.b.stale_once:
                self.b.stale_once = False
                out.append(self._challenge(req, 438, "Stale Nonce"))
                return out
            if self.b.allocate_error is not None:
                out.append(stun.error_response(req, *self.b.allocate_error, integrity_key=key))
                return out
            relayed = (int(Attr.XOR_RELAYED_ADDRESS), stun.encode_xor_address(HOST, 50000, req.transaction_id))
            lifetime = (int(Attr.LIFETIME), struct.pack("!I", 600))
            out.append(stun.success_response(req, [relayed, lifetime, mapped], integrity_key=key))
            return out
        if req.method == Method.REFRESH:
            out.append(stun.success_response(req, [(int(Attr.LIFETIME), struct.pack("!I", 0))], integrity_key=key))
        return out

    # ---- sockets ----------------------------------------------------------------------------

    def _udp_loop(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            for reply in self.answer(data, peer):
                self.udp.sendto(reply, peer)

    def _tcp_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        try:
            if self.tls_ctx is not None:
                conn.settimeout(2)
                conn = self.tls_ctx.wrap_socket(conn, server_side=True)
            conn.settimeout(0.05)
            buf = b""
            while not self.stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 20 and len(buf) >= stun.message_length(buf[:20]):
                    n = stun.message_length(buf[:20])
                    data, buf = buf[:n], buf[n:]
                    if self.b.hang_up:
                        return
                    if self.b.garbage:
                        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                        continue
                    for reply in self.answer(data, peer):
                        if self.b.split_writes:
                            for i in range(0, len(reply), 3):
                                conn.sendall(reply[i : i + 3])
                        else:
                            conn.sendall(reply)
        except (OSError, ssl.SSLError, stun.StunError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()


@contextlib.contextmanager
def fake_server(behaviour: Behaviour | None = None, tls: tuple[Path, Path] | None = None) -> Iterator[FakeTurnServer]:
    server = FakeTurnServer(behaviour, tls)
    try:
        yield server
    finally:
        server.close()


def closed_port(kind: int) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind((HOST, 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


ALICE = Credentials("alice", "secret")


# ---- Binding --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_binding_success(transport: client.Transport) -> None:
    with fake_server() as srv:
        port = srv.udp_port if transport == "udp" else srv.tcp_port
        out = client.stun_binding(HOST, port, transport, FAST)
    assert out.success, out
    assert out.error_code is None and out.error is None
    assert out.latency_ms is not None and 0 < out.latency_ms < 1000
    assert out.mapped_address is not None and out.mapped_address[0] == HOST
    req = srv.requests[0]
    assert (req.method, req.cls) == (Method.BINDING, MessageClass.REQUEST)
    assert req.has_fingerprint and req.software == "icewatch-probe"


def test_udp_retransmits_with_the_same_transaction_id() -> None:
    with fake_server(Behaviour(drop=2)) as srv:
        out = client.stun_binding(HOST, srv.udp_port, "udp", FAST)
    assert out.success, out
    assert len(srv.requests) == 3
    assert len({r.transaction_id for r in srv.requests}) == 1
    # answered after two retransmission timeouts: 50 ms + 100 ms
    assert out.latency_ms is not None and out.latency_ms >= 140


def test_udp_timeout_doubles_the_rto() -> None:
    with fake_server(Behaviour(silent=True)) as srv:
        started = time.monotonic()
        out = client.stun_binding(HOST, srv.udp_port, "udp", ProbeOptions(timeout_s=0.5, initial_rto_s=0.05))
        elapsed = time.monotonic() - started
    assert out == client.Outcome(False, error="timeout")
    assert elapsed >= 0.45  # waited for the whole timeout (the count of sends below shows the doubling)
    assert len(srv.requests) == 4  # sent at 0, 50, 150, 350 ms


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_connection_refused(transport: client.Transport) -> None:
    port = closed_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    out = client.stun_binding(HOST, port, transport, FAST)
    assert out == client.Outcome(False, error="connection refused")
    out = client.turn_allocate(HOST, port, transport, ALICE, FAST)
    assert out == client.Outcome(False, error="connection refused")


def test_tcp_silent_server_times_out() -> None:
    with fake_server(Behaviour(silent=True)) as srv:
        out = client.stun_binding(HOST, srv.tcp_port, "tcp", ProbeOptions(timeout_s=0.3))
    assert out == client.Outcome(False, error="timeout")


def test_tcp_stray_messages_and_fragmented_stream() -> None:
    with fake_server(Behaviour(stray_first=True, split_writes=True)) as srv:
        assert client.stun_binding(HOST, srv.tcp_port, "tcp", FAST).success
        out = client.turn_allocate(HOST, srv.tcp_port, "tcp", ALICE, FAST)
    assert out.success and out.released, out


def test_udp_ignores_answers_to_other_transactions() -> None:
    with fake_server(Behaviour(stray_first=True)) as srv:
        out = client.turn_allocate(HOST, srv.udp_port, "udp", ALICE, FAST)
    assert out.success and out.released, out


def test_tcp_hang_up_and_garbage() -> None:
    with fake_server(Behaviour(hang_up=True)) as srv:
        assert client.stun_binding(HOST, srv.tcp_port, "tcp", FAST) == client.Outcome(False, error="connection reset")
    with fake_server(Behaviour(garbage=True)) as srv:
        out = client.stun_binding(HOST, srv.tcp_port, "tcp", FAST)
    assert not out.success and out.error_code is None
    assert out.error is not None and out.error.startswith("protocol: ")


# ---- Allocate -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_allocate_success_and_release(transport: client.Transport) -> None:
    with fake_server() as srv:
        port = srv.udp_port if transport == "udp" else srv.tcp_port
        out = client.turn_allocate(HOST, port, transport, ALICE, FAST)
    assert out.success, out
    assert out.relayed_address == (HOST, 50000)
    assert out.released is True
    assert out.latency_ms is not None and out.latency_ms > 0
    first, second, release = srv.requests
    assert (first.method, first.get(Attr.MESSAGE_INTEGRITY), first.username) == (Method.ALLOCATE, None, None)
    assert first.get(Attr.REQUESTED_TRANSPORT) == b"\x11\x00\x00\x00"
    assert (second.method, second.username, second.realm, second.nonce) == (
        Method.ALLOCATE, "alice", "example.org", "nonce-1",
    )  # fmt: skip
    assert second.check_integrity(stun.long_term_key("alice", "example.org", "secret"))
    assert second.has_fingerprint
    assert (release.method, release.lifetime) == (Method.REFRESH, 0)
    assert first.transaction_id != second.transaction_id != release.transaction_id


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_allocate_wrong_password_is_401(transport: client.Transport) -> None:
    with fake_server() as srv:
        port = srv.udp_port if transport == "udp" else srv.tcp_port
        out = client.turn_allocate(HOST, port, transport, Credentials("alice", "nope"), FAST)
    assert (out.success, out.error_code, out.error) == (False, 401, "Unauthorized")
    assert out.latency_ms is not None
    assert [r.method for r in srv.requests] == [Method.ALLOCATE, Method.ALLOCATE]  # no release


def test_allocate_without_credentials() -> None:
    with fake_server() as srv:
        out = client.turn_allocate(HOST, srv.udp_port, "udp", None, FAST)
    assert (out.success, out.error_code, out.error) == (False, 401, "no credentials configured")


def test_allocate_stale_nonce_is_retried_once() -> None:
    with fake_server(Behaviour(stale_once=True)) as srv:
        out = client.turn_allocate(HOST, srv.udp_port, "udp", ALICE, FAST)
    assert out.success, out
    nonces = [r.nonce for r in srv.requests if r.method == Method.ALLOCATE]
    assert nonces == [None, "nonce-1", "nonce-2"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(403, "Forbidden"), (437, "Allocation Mismatch"), (486, "Allocation Quota Reached"),
     (508, "Insufficient Capacity")],
)  # fmt: skip
def test_allocate_errors(code: int, reason: str) -> None:
    with fake_server(Behaviour(allocate_error=(code, reason))) as srv:
        out = client.turn_allocate(HOST, srv.tcp_port, "tcp", ALICE, FAST)
    assert (out.success, out.error_code, out.error) == (False, code, reason)


def test_allocate_granted_without_auth_is_a_success_not_released() -> None:
    with fake_server(Behaviour(no_auth=True)) as srv:
        out = client.turn_allocate(HOST, srv.udp_port, "udp", None, FAST)
    assert out.success and out.released is False


def test_probe_dispatch_and_result() -> None:
    with fake_server() as srv:
        port = srv.udp_port
        out = client.probe("turn_allocate", HOST, port, "udp", ALICE, FAST)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    result = client.to_result(
        out, probe_id="p", server_id="s", region="eu", vantage="v", kind="turn_allocate", transport="udp",
        target=client.format_target(HOST, port), at=at,
    )  # fmt: skip
    assert result.success and result.latency_ms == out.latency_ms
    assert result.target == f"{HOST}:{port}"
    assert client.format_target("2001:db8::1", 3478) == "[2001:db8::1]:3478"


def test_credentials_repr_hides_the_password() -> None:
    assert "secret" not in repr(ALICE)


# ---- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


def test_tls_without_verification(cert: tuple[Path, Path]) -> None:
    with fake_server(tls=cert) as srv:
        opts = ProbeOptions(timeout_s=2, tls_verify=False)
        assert client.stun_binding(HOST, srv.tcp_port, "tls", opts).success
        out = client.turn_allocate(HOST, srv.tcp_port, "tls", ALICE, opts)
    assert out.success and out.released, out


def test_tls_untrusted_certificate_fails(cert: tuple[Path, Path]) -> None:
    with fake_server(tls=cert) as srv:
        out = client.stun_binding(HOST, srv.tcp_port, "tls", ProbeOptions(timeout_s=2))
    assert not out.success and out.error_code is None
    assert out.error is not None and out.error.startswith("tls: certificate:"), out.error


def test_tls_with_ca_file_and_server_name(cert: tuple[Path, Path]) -> None:
    with fake_server(tls=cert) as srv:
        ok = ProbeOptions(timeout_s=2, tls_ca_file=str(cert[0]), tls_server_name="localhost")
        assert client.stun_binding(HOST, srv.tcp_port, "tls", ok).success
        wrong_name = ProbeOptions(timeout_s=2, tls_ca_file=str(cert[0]), tls_server_name="turn.example.net")
        out = client.stun_binding(HOST, srv.tcp_port, "tls", wrong_name)
    assert not out.success and out.error is not None and "certificate" in out.error


def test_tls_to_a_plain_stun_port_times_out() -> None:
    with fake_server() as srv:
        out = client.stun_binding(HOST, srv.tcp_port, "tls", ProbeOptions(timeout_s=0.3, tls_verify=False))
    assert not out.success and out.error_code is None and out.error is not None
