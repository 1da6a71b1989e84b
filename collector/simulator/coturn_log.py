"""What coturn 4.6 (``--verbose --new-log-timestamp``) writes for the simulated traffic: one session per
relayed call (challenge, allocation on the call's relayed address, permission, usage, close) and the
simulated probe's allocations, which keep every live server's log beating. A server that is down
writes nothing; one whose credentials are broken rejects the ALLOCATEs of users it should know; one
that is full answers the ALLOCATE after the challenge with 486 or 508 (and coturn's duplicate
``message`` line of a failed request)."""

from __future__ import annotations

from datetime import datetime, timedelta

from collector.ice_url import protocol_from_turn_url
from collector.inventory import Server
from collector.simulator.plan import PROBE_USER, QUOTA_REASONS, CallPlan, quota_code, relay_addresses

REALM = "sim.icewatch"


def _line(at: datetime, message: str, level: str = "") -> str:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S+0000")
    return f"{stamp}: {level + ': ' if level else ''}{message}"


def _session_lines(at: datetime, end: datetime, sid: str, user: str, relay: str, listener: str, remote: str,
                   transport: str, peer: str, bytes_each_way: int, rejected: bool,
                   refused: int | None = None) -> list[str]:
    s = f"session {sid}: "
    lines = [_line(at, s + f"realm <{REALM}> user <>: incoming packet message processed, error 401: Unauthorized")]
    if refused is not None and not rejected:
        error = f"error {refused}: {QUOTA_REASONS[refused]}"
        lines.append(_line(at, s + f"realm <{REALM}> user <{user}>: incoming packet ALLOCATE processed, {error}"))
        lines.append(_line(at, s + f"realm <{REALM}> user <{user}>: incoming packet message processed, {error}"))
        return lines
    if rejected:
        lines.append(_line(at, f"check_stun_auth: Cannot find credentials of user <{user}>", "ERROR"))
        lines.append(_line(at, s + f"realm <{REALM}> user <{user}>: incoming packet ALLOCATE processed, "
                               "error 401: Unauthorized"))
        return lines
    packets = max(1, bytes_each_way // 160)
    port = "443" if transport in ("tcp", "tls") else "3478"
    reason = "TCP connection closed by client (callback)" if transport in ("tcp", "tls") else "allocation timeout"
    lines += [
        _line(at, f"IPv4. Local relay addr: {relay}"),
        _line(at, s + f"new, realm=<{REALM}>, username=<{user}>, lifetime=600"),
        _line(at, s + f"realm <{REALM}> user <{user}>: incoming packet ALLOCATE processed, success"),
        _line(at, s + f"peer {peer} lifetime updated: 300"),
        _line(at, s + f"realm <{REALM}> user <{user}>: incoming packet CREATE_PERMISSION processed, success"),
        _line(end, s + f"usage: realm=<{REALM}>, username=<{user}>, rp={packets}, rb={bytes_each_way}, "
                       f"sp={packets}, sb={bytes_each_way}"),
        _line(end, s + f"peer usage: realm=<{REALM}>, username=<{user}>, rp={packets}, rb={bytes_each_way}, "
                       f"sp={packets}, sb={bytes_each_way}"),
        _line(end, s + f"closed (2nd stage), user <{user}> realm <{REALM}> origin <>, local {listener}:{port}, "
                       f"remote {remote}, reason: {reason}"),
    ]
    return lines


def call_lines(plan: CallPlan) -> list[str]:
    """The configured server's lines about this call: its relay session, or its rejected or refused ALLOCATE."""
    if not (plan.relayed or plan.auth_rejected or plan.alloc_refused):
        return []
    net = relay_addresses(plan.configured)
    relay = f"{plan.relay_address}:{plan.relay_port}" if plan.relay_address else f"{net[1]}:49152"
    transport = {"relay-tcp": "tcp", "relay-tls": "tls"}.get(plan.path, "udp")
    media_seconds = plan.seconds if plan.relayed and not plan.dtls_stall else 0
    return _session_lines(
        plan.start + timedelta(milliseconds=90), plan.start + timedelta(seconds=plan.seconds), plan.session_id,
        f"sim-user-{plan.index % 997}", relay, str(net[1]), f"{plan.client_ip}:{plan.client_port}", transport,
        "192.0.2.44", media_seconds * 50 * 160, plan.auth_rejected, plan.alloc_refused,
    )


def probe_lines(server: Server, at: datetime, round_no: int, rejected: bool, full: bool = False) -> list[str]:
    """The simulated probe's short allocations on ``server``, one per TURN transport it offers (the
    prober allocates over each), as the server logs them: rejected (credentials broken) or refused
    with 486/508 (``full``, turn-quota) after the challenge."""
    net = relay_addresses(server)
    transports: list[str] = []
    for url in server.urls:
        protocol = protocol_from_turn_url(url)
        if protocol is not None and protocol not in transports:
            transports.append(protocol)
    lines: list[str] = []
    for k, transport in enumerate(transports):
        n = round_no * 4 + k
        lines += _session_lines(at, at + timedelta(milliseconds=5), f"{900_000_000_000_000_000 + n:018d}", PROBE_USER,
                                f"{net[2]}:{60000 + n % 5000}", str(net[1]), "203.0.113.250:40000", transport,
                                str(net[1]), 0, rejected, quota_code(round_no) if full else None)
    return lines
