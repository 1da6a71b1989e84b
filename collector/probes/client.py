"""One probe against one STUN/TURN listener: a STUN Binding, or a TURN Allocate followed by its
release, over UDP (with retransmissions), TCP or TLS, under one deadline.

Over TCP and TLS, STUN messages simply follow each other on the stream (RFC 8489 section 6.2.2:
the length field frames them); there is no extra framing.

The outcome of a probe:

- ``success`` - the server answered with a success response (for Allocate: a relayed address
  was granted; it is released right away with a Refresh of LIFETIME 0);
- ``error_code``/``error`` - the STUN/TURN error the server answered with (401 wrong credentials,
  403 forbidden, 437 allocation mismatch, 486 quota reached, 508 insufficient capacity, ...);
- ``error_code`` None and ``error`` "timeout" / "connection refused" / "dns: ..." / "tls: ..." /
  "network: ..." / "protocol: ..." - the server was not reached or did not speak STUN
  (what browsers report as 701);
- ``latency_ms`` - from the start of the probe (connection and TLS handshake included) to the
  final answer of the Binding or Allocate, retransmissions and the 401 round trip included:
  what an ICE agent waits for that candidate. The release is not counted.

Nothing here logs; credentials never leave this module except inside MESSAGE-INTEGRITY.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from collector.contract import ProbeResult
from collector.probes import stun
from collector.probes.stun import Message, MessageClass, Method, StunError

Transport = Literal["udp", "tcp", "tls"]
Kind = Literal["stun_binding", "turn_allocate"]

_MAX_MESSAGE = 65535 + stun.HEADER_SIZE


@dataclass(frozen=True)
class Credentials:
    """Long-term TURN credentials (static, or minted from a TURN REST API secret)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ProbeOptions:
    timeout_s: float = 3.0  # the whole Binding / Allocate exchange, connection included
    initial_rto_s: float = 0.5  # UDP: first retransmission timeout, doubled each time (RFC 8489 6.2.1)
    release_timeout_s: float = 1.0  # extra time allowed for releasing an allocation
    tls_verify: bool = True
    tls_ca_file: str | None = None
    tls_server_name: str | None = None  # SNI and the name checked; default: the probed host
    software: str | None = "icewatch-probe"


@dataclass(frozen=True)
class Outcome:
    success: bool
    error_code: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    mapped_address: tuple[str, int] | None = None
    relayed_address: tuple[str, int] | None = None
    released: bool | None = None  # Allocate only: the allocation was deleted again


class _Timeout(Exception):
    pass


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Timeout
    return left


class _Channel(Protocol):
    def transact(self, request: bytes, transaction_id: bytes, method: int, deadline: float) -> Message: ...

    def close(self) -> None: ...


class _UdpChannel:
    def __init__(self, host: str, port: int, deadline: float, initial_rto_s: float) -> None:
        family, _, _, _, addr = _resolve(host, port, socket.SOCK_DGRAM)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.initial_rto_s = initial_rto_s
        try:
            # A connected UDP socket: ICMP port unreachable comes back as ConnectionRefusedError,
            # and datagrams from other sources are dropped by the kernel.
            self.sock.connect(addr)
        except BaseException:
            self.sock.close()
            raise

    def transact(self, request: bytes, transaction_id: bytes, method: int, deadline: float) -> Message:
        rto = self.initial_rto_s
        while True:
            self.sock.send(request)
            retransmit_at = min(time.monotonic() + rto, deadline)
            rto *= 2
            while True:
                wait = retransmit_at - time.monotonic()
                if wait <= 0:
                    _remaining(deadline)  # raises when the whole budget is gone
                    break
                self.sock.settimeout(wait)
                try:
                    data = self.sock.recv(_MAX_MESSAGE)
                except TimeoutError:
                    continue
                try:
                    return stun.parse_response(data, transaction_id, method)
                except StunError:
                    continue  # a late answer to an earlier transaction, or noise: keep waiting

    def close(self) -> None:
        self.sock.close()


class _StreamChannel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self.buffer) < n:
            self.sock.settimeout(_remaining(deadline))
            try:
                chunk = self.sock.recv(max(4096, n - len(self.buffer)))
            except TimeoutError as exc:
                raise _Timeout from exc
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def transact(self, request: bytes, transaction_id: bytes, method: int, deadline: float) -> Message:
        self.sock.settimeout(_remaining(deadline))
        try:
            self.sock.sendall(request)
        except TimeoutError as exc:
            raise _Timeout from exc
        while True:
            header = self._read(stun.HEADER_SIZE, deadline)
            body = self._read(stun.message_length(header) - stun.HEADER_SIZE, deadline)
            data = header + body
            msg = stun.decode(data)
            if msg.transaction_id == transaction_id:
                return stun.parse_response(data, transaction_id, method)
            # an indication or a stray answer: skip it

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _resolve(host: str, port: int, socktype: int) -> tuple[int, int, int, str, tuple[str, int]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socktype)
    except socket.gaierror as exc:
        raise _DnsError(str(exc)) from exc
    if not infos:
        raise _DnsError(f"no address for {host}")
    family, kind, proto, canon, addr = infos[0]
    return int(family), int(kind), proto, canon, (str(addr[0]), int(addr[1]))


class _DnsError(Exception):
    pass


def tls_context(options: ProbeOptions) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=options.tls_ca_file)
    if not options.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _open(
    host: str, port: int, transport: Transport, options: ProbeOptions, deadline: float, ctx: ssl.SSLContext | None
) -> _Channel:
    if transport == "udp":
        return _UdpChannel(host, port, deadline, options.initial_rto_s)
    family, _, _, _, addr = _resolve(host, port, socket.SOCK_STREAM)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(_remaining(deadline))
        try:
            sock.connect(addr)
        except TimeoutError as exc:
            raise _Timeout from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if transport == "tls":
            sock.settimeout(_remaining(deadline))
            try:
                sock = (ctx or tls_context(options)).wrap_socket(sock, server_hostname=options.tls_server_name or host)
            except TimeoutError as exc:
                raise _Timeout from exc
        return _StreamChannel(sock)
    except BaseException:
        sock.close()
        raise


def _failure(exc: BaseException) -> Outcome:
    """The outcome of a probe that got no STUN answer."""
    if isinstance(exc, _Timeout | TimeoutError):
        return Outcome(False, error="timeout")
    if isinstance(exc, ConnectionRefusedError):
        return Outcome(False, error="connection refused")
    if isinstance(exc, _DnsError):
        return Outcome(False, error=f"dns: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Outcome(False, error=f"tls: certificate: {exc.verify_message or exc.reason}")
    if isinstance(exc, ssl.SSLError):
        return Outcome(False, error=f"tls: {exc.reason or exc}")
    if isinstance(exc, ConnectionResetError):
        return Outcome(False, error="connection reset")
    if isinstance(exc, StunError):
        return Outcome(False, error=f"protocol: {exc}")
    if isinstance(exc, OSError):
        return Outcome(False, error=f"network: {exc.strerror or exc}")
    raise exc


def _error_outcome(msg: Message, latency_ms: float) -> Outcome:
    err = msg.error
    assert err is not None  # parse_response guarantees ERROR-CODE on error responses
    return Outcome(False, error_code=err.code, error=err.reason or f"error {err.code}", latency_ms=latency_ms)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


ExchangeFn = Callable[[_Channel, ProbeOptions, float, float], Outcome]


def _exchange(host: str, port: int, transport: Transport, options: ProbeOptions | None, run: ExchangeFn) -> Outcome:
    """Open the channel (TLS context creation is not part of the latency), run one exchange with
    its deadline and start time, turn any failure into an Outcome, close the channel."""
    options = options or ProbeOptions()
    try:
        ctx = tls_context(options) if transport == "tls" else None
    except (OSError, ssl.SSLError) as exc:
        return Outcome(False, error=f"tls: {exc}")
    deadline = time.monotonic() + options.timeout_s
    start = time.perf_counter()
    channel: _Channel | None = None
    try:
        channel = _open(host, port, transport, options, deadline, ctx)
        return run(channel, options, deadline, start)
    except Exception as exc:
        return _failure(exc)
    finally:
        if channel is not None:
            channel.close()


def stun_binding(host: str, port: int, transport: Transport, options: ProbeOptions | None = None) -> Outcome:
    """One STUN Binding transaction."""

    def binding(channel: _Channel, options: ProbeOptions, deadline: float, start: float) -> Outcome:
        tid = stun.new_transaction_id()
        resp = channel.transact(stun.binding_request(tid, software=options.software), tid, Method.BINDING, deadline)
        latency = _ms(start)
        if resp.cls is MessageClass.ERROR:
            return _error_outcome(resp, latency)
        return Outcome(True, latency_ms=latency, mapped_address=resp.mapped_address)

    return _exchange(host, port, transport, options, binding)


def turn_allocate(
    host: str,
    port: int,
    transport: Transport,
    credentials: Credentials | None,
    options: ProbeOptions | None = None,
) -> Outcome:
    """A TURN Allocate (UDP relay): unauthenticated first, then with long-term credentials after
    the 401 challenge (one retry on 438 Stale Nonce); a granted allocation is released at once."""

    def allocate(channel: _Channel, options: ProbeOptions, deadline: float, start: float) -> Outcome:
        tid = stun.new_transaction_id()
        request = stun.allocate_request(tid, software=options.software)
        resp = channel.transact(request, tid, Method.ALLOCATE, deadline)
        auth: stun.LongTermAuth | None = None
        if resp.cls is MessageClass.ERROR:
            err = resp.error
            if err is None or err.code != 401 or resp.realm is None or resp.nonce is None:
                return _error_outcome(resp, _ms(start))
            if credentials is None:
                return Outcome(False, error_code=401, error="no credentials configured", latency_ms=_ms(start))
            auth = stun.LongTermAuth.from_challenge(credentials.username, credentials.password, resp)
            for attempt in range(2):
                tid = stun.new_transaction_id()
                request = stun.allocate_request(tid, auth, software=options.software)
                resp = channel.transact(request, tid, Method.ALLOCATE, deadline)
                err = resp.error if resp.cls is MessageClass.ERROR else None
                if err is not None and err.code == 438 and resp.nonce and attempt == 0:
                    auth = auth.with_nonce(resp.nonce)
                    continue
                break
        latency = _ms(start)
        if resp.cls is MessageClass.ERROR:
            return _error_outcome(resp, latency)
        if (
            auth is not None
            and resp.get(stun.Attr.MESSAGE_INTEGRITY) is not None
            and not resp.check_integrity(auth.key)
        ):
            return Outcome(False, error="protocol: MESSAGE-INTEGRITY of the success response does not match")
        released = _release(channel, auth, options)
        return Outcome(
            True,
            latency_ms=latency,
            mapped_address=resp.xor_mapped_address,
            relayed_address=resp.xor_relayed_address,
            released=released,
        )

    return _exchange(host, port, transport, options, allocate)


def _release(channel: _Channel, auth: stun.LongTermAuth | None, options: ProbeOptions) -> bool:
    """Delete the allocation (Refresh, LIFETIME 0); best effort, False when it did not work."""
    if auth is None:
        return False  # an allocation granted without authentication: nothing to sign a Refresh with
    deadline = time.monotonic() + options.release_timeout_s
    try:
        for attempt in range(2):
            tid = stun.new_transaction_id()
            resp = channel.transact(stun.refresh_request(tid, auth, software=options.software), tid, Method.REFRESH,
                                    deadline)  # fmt: skip
            if resp.cls is MessageClass.SUCCESS:
                return True
            err = resp.error
            if err is not None and err.code == 438 and resp.nonce and attempt == 0:
                auth = auth.with_nonce(resp.nonce)
                continue
            return False
    except (_Timeout, OSError, StunError):
        return False
    return False


def probe(
    kind: Kind,
    host: str,
    port: int,
    transport: Transport,
    credentials: Credentials | None = None,
    options: ProbeOptions | None = None,
) -> Outcome:
    if kind == "stun_binding":
        return stun_binding(host, port, transport, options)
    return turn_allocate(host, port, transport, credentials, options)


def format_target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def to_result(
    outcome: Outcome,
    *,
    probe_id: str,
    server_id: str,
    region: str | None,
    vantage: str,
    kind: Kind,
    transport: Transport,
    target: str,
    at: datetime,
) -> ProbeResult:
    return ProbeResult(
        probe_id=probe_id,
        server_id=server_id,
        region=region,
        vantage=vantage,
        kind=kind,
        transport=transport,
        target=target,
        at=at,
        success=outcome.success,
        error_code=outcome.error_code,
        error=outcome.error,
        latency_ms=outcome.latency_ms,
    )
