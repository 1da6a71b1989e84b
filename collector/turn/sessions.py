"""Per-session summaries rebuilt from ``TurnEvent``s (for the CLI and tests; ClickHouse does the
same with a materialized view). Pure.

Sessions are keyed by (server_id, process_key, session_id): coturn's ids repeat across restarts.
Usage lines are deltas and are summed; the duplicate ``message`` line after a failed request
(kind ``request_message``) is ignored; a 401 on a line with ``user <>`` is the normal nonce
challenge, a 401 with a user name is rejected credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from collector.contract import TurnEvent

SessionKey = tuple[str, str, str]


@dataclass
class SessionSummary:
    server_id: str
    process_key: str
    session_id: str
    realm: str | None = None
    user_hash: str | None = None
    transport: str | None = None
    client_address: str | None = None
    listener_address: str | None = None
    relay_address: str | None = None
    allocated: bool = False
    error_codes: list[int] = field(default_factory=list)  # distinct, first-seen order; not the challenge
    auth_challenges: int = 0
    auth_rejected: int = 0
    denied_peers: int = 0  # 403 answers to CREATE_PERMISSION / CHANNEL_BIND / CONNECT
    permissions: list[str] = field(default_factory=list)  # distinct peer addresses
    channels: list[str] = field(default_factory=list)  # distinct peer addresses with channel binds
    refreshes: int = 0
    deallocated: bool = False  # the client sent REFRESH lifetime=0
    client_packets: int = 0
    client_bytes: int = 0  # client leg, both directions (usage rb + sb)
    peer_packets: int = 0
    peer_bytes: int = 0  # relayed leg, both directions (peer usage rb + sb)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    started_uptime_s: int | None = None
    ended_uptime_s: int | None = None
    close_reason: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is not None and self.ended_at is not None:
            return (self.ended_at - self.started_at).total_seconds()
        if self.started_uptime_s is not None and self.ended_uptime_s is not None:
            return float(self.ended_uptime_s - self.started_uptime_s)
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_s"] = self.duration_s
        for k in ("started_at", "ended_at"):
            if d[k] is not None:
                d[k] = d[k].isoformat()
        return d


_PEER_POLICY_METHODS = frozenset({"CREATE_PERMISSION", "CHANNEL_BIND", "CONNECT"})


def apply_event(s: SessionSummary, ev: TurnEvent) -> None:
    """Fold one event of the session into its summary."""
    kind = ev.kind
    if ev.at is not None:
        if s.started_at is None or ev.at < s.started_at:
            s.started_at = ev.at
        if s.ended_at is None or ev.at > s.ended_at:
            s.ended_at = ev.at
    if ev.uptime_s is not None:
        if s.started_uptime_s is None:
            s.started_uptime_s = ev.uptime_s
        s.ended_uptime_s = ev.uptime_s
    if ev.realm is not None and not s.realm:
        s.realm = ev.realm
    if ev.user_hash and not s.user_hash:
        s.user_hash = ev.user_hash
    if ev.transport is not None and (s.transport is None or (s.transport == "tcp" and ev.transport == "tls")):
        s.transport = ev.transport
    if kind == "request":
        if ev.success:
            if ev.method == "ALLOCATE":
                s.allocated = True
            elif ev.method == "REFRESH":
                s.refreshes += 1
            return
        code = ev.error_code
        if code == 401 and ev.user_present is False:
            s.auth_challenges += 1
            return
        if code == 401:
            s.auth_rejected += 1
        if code is not None and code not in s.error_codes:
            s.error_codes.append(code)
        if code == 403 and ev.method in _PEER_POLICY_METHODS:
            s.denied_peers += 1
    elif kind == "allocation":
        if ev.reason == "new":
            s.allocated = True
            if ev.relay_address:
                s.relay_address = ev.relay_address
        elif ev.reason == "refreshed" and ev.lifetime_s == 0:
            s.deallocated = True
    elif kind == "permission":
        if ev.peer_address and ev.lifetime_s and ev.peer_address not in s.permissions:
            s.permissions.append(ev.peer_address)
    elif kind == "channel_bind":
        if ev.peer_address and ev.peer_address not in s.channels:
            s.channels.append(ev.peer_address)
    elif kind == "usage":
        s.client_packets += (ev.rx_packets or 0) + (ev.tx_packets or 0)
        s.client_bytes += (ev.rx_bytes or 0) + (ev.tx_bytes or 0)
    elif kind == "peer_usage":
        s.peer_packets += (ev.rx_packets or 0) + (ev.tx_packets or 0)
        s.peer_bytes += (ev.rx_bytes or 0) + (ev.tx_bytes or 0)
    elif kind == "closed":
        s.close_reason = ev.reason
        s.client_address = ev.client_address or s.client_address
        s.listener_address = ev.listener_address or s.listener_address
    elif kind == "connection" and ev.client_address and not s.client_address:
        s.client_address = ev.client_address


def reconstruct_sessions(events: Iterable[TurnEvent]) -> list[SessionSummary]:
    """One summary per (server_id, process_key, session_id), in order of first appearance."""
    out: dict[SessionKey, SessionSummary] = {}
    for ev in events:
        if ev.session_id is None or ev.kind == "request_message":
            continue
        key = (ev.server_id, ev.process_key, ev.session_id)
        s = out.get(key)
        if s is None:
            s = out[key] = SessionSummary(ev.server_id, ev.process_key, ev.session_id)
        apply_event(s, ev)
    return list(out.values())
