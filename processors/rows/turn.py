"""Rows for TURN events: one ``turn_events`` row per event (a ``turn_event`` message has one, a
``turn_event_batch`` many). ClickHouse assembles ``turn_sessions`` and
``turn_server_minute`` from it with materialized views (processors/store/migrations/0002_turn.sql).

Pure. The flags that decide what the rollups count are computed here, where they are tested:

- ``is_auth_challenge``: a 401 on a line with ``user <>`` (the normal nonce challenge);
- ``is_auth_rejected``: a 401 with a user name (rejected credentials), not the challenge and
  not the ``check_stun_auth`` ERROR line that precedes it (that would count it twice);
- ``is_alloc_ok`` / ``is_alloc_failed``: ``ALLOCATE processed, success | error N`` (not the challenge);
- ``is_peer_denied``: 403 to CREATE_PERMISSION / CHANNEL_BIND / CONNECT;
- ``relayed_bytes``: ``peer usage`` rb + sb (a delta, so sums are totals).

The duplicate ``message`` line after a failed request (kind ``request_message``) sets no flag.

Client addresses are personal data: the row keeps the client's network (/24, /48, as for calls),
also inside the raw line. Listener, peer and relayed addresses are the TURN server's and stay whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.contract import TurnEvent, TurnEventBatch
from collector.netaddr import truncate_ip
from processors.rows.batch import Rows

_PEER_METHODS = frozenset({"CREATE_PERMISSION", "CHANNEL_BIND", "CONNECT"})


def client_host(address: str) -> str:
    """The IP of "ip:port", "[v6]:port" or a bare address."""
    if address.startswith("["):
        return address[1 : address.find("]")]
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def turn_flags(ev: TurnEvent) -> dict[str, int]:
    req = ev.kind == "request"
    failed = req and ev.success is False
    code = ev.error_code if failed else None
    return {
        "is_auth_challenge": int(code == 401 and ev.user_present is False),
        "is_auth_rejected": int(code == 401 and ev.user_present is True),
        "is_alloc_ok": int(req and ev.success is True and ev.method == "ALLOCATE"),
        # the first 401 with `user <>` is the normal nonce challenge, not a failure
        "is_alloc_failed": int(failed and ev.method == "ALLOCATE" and not (code == 401 and ev.user_present is False)),
        "is_peer_denied": int(code == 403 and ev.method in _PEER_METHODS),
        "is_refresh": int(req and ev.success is True and ev.method == "REFRESH"),
        "relayed_bytes": (ev.rx_bytes or 0) + (ev.tx_bytes or 0) if ev.kind == "peer_usage" else 0,
    }


def rows_for_turn_event(event: TurnEvent, tenant: str = "default", ingested_at: datetime | None = None) -> Rows:
    """One event in, rows per table out."""
    return {"turn_events": [turn_event_row(event, tenant, ingested_at)]}


def turn_event_row(event: TurnEvent, tenant: str = "default", ingested_at: datetime | None = None) -> dict[str, Any]:
    """The ``turn_events`` row of one event. ``at``/``ingested_at`` left out fall back to the
    table defaults (``ingested_at`` = insert time, ``event_time`` = ``at`` else ``ingested_at``)."""
    client_network, raw = "", event.raw
    if event.client_address:
        host = client_host(event.client_address)
        client_network = truncate_ip(host)
        if host:
            raw = raw.replace(host, client_network or "x")
    row: dict[str, Any] = {
        "tenant": tenant,
        "event_id": event.event_id,
        "server_id": event.server_id,
        "region": event.region or "",
        "process_key": event.process_key,
        "session_id": event.session_id or "",
        "kind": event.kind,
        "level": event.level or "",
        "method": event.method or "",
        "success": event.success,
        "error_code": event.error_code,
        "reason": event.reason or "",
        "realm": event.realm or "",
        "user_hash": event.user_hash or "",
        "user_present": event.user_present,
        "client_address": client_network,
        "listener_address": event.listener_address or "",
        "peer_address": event.peer_address or "",
        "relay_address": event.relay_address or "",
        "transport": event.transport or "",
        "lifetime_s": event.lifetime_s,
        "channel": event.channel,
        "rx_packets": event.rx_packets or 0,
        "rx_bytes": event.rx_bytes or 0,
        "tx_packets": event.tx_packets or 0,
        "tx_bytes": event.tx_bytes or 0,
        "uptime_s": event.uptime_s,
        "raw": raw,
        **turn_flags(event),
    }
    if event.at is not None:
        row["at"] = event.at
    if ingested_at is not None:
        row["ingested_at"] = ingested_at
    return row


def rows_for_turn_batch(batch: TurnEventBatch, tenant: str = "default", ingested_at: datetime | None = None) -> Rows:
    """One ``turn_event_batch`` message: a ``turn_events`` row per event, in the batch's order."""
    return {"turn_events": [turn_event_row(ev, tenant, ingested_at) for ev in batch.events]}
