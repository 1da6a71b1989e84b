"""What to probe: the (server, kind, transport) -> host:port list derived from the fleet inventory.

For every server, on every transport it offers (``transports``; all when empty) and the probes
are configured for:

- each ``stun:``/``turn:`` URL gives its host and port; an explicit ``?transport=udp|tcp`` names the
  transport, without one the URL is probed on UDP and TCP; ``stuns:``/``turns:`` are TLS.
  ``stun*`` URLs give Binding probes, ``turn*`` URLs Allocate probes.
- a TURN server answers Binding too: where it has a TURN URL but no STUN URL on a transport,
  the Binding probe goes to the TURN URL's host and port.
- a server without URLs is probed at its first hostname (else its single address) on port 3478
  (UDP/TCP) and 5349 or 443 (TLS), as listed in ``ports``.

Exactly one target per (server, kind, transport): the first URL in inventory order wins. That is
what makes ``probe_id`` (vantage, server, kind, transport, scheduled time) unique.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from collector.ice_url import parse_ice_url
from collector.inventory import Inventory, Server
from collector.probes.client import Kind, Transport, format_target

ALL_TRANSPORTS: tuple[Transport, ...] = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class ProbeTarget:
    server_id: str
    region: str | None
    kind: Kind
    transport: Transport
    host: str
    port: int

    @property
    def target(self) -> str:
        return format_target(self.host, self.port)


def _url_targets(server: Server, allowed: set[Transport]) -> Iterable[tuple[Kind, Transport, str, int]]:
    for url in server.urls:
        parsed = parse_ice_url(url)
        if parsed is None:
            continue
        kind: Kind = "turn_allocate" if parsed.is_turn else "stun_binding"
        transports: list[Transport]
        if parsed.scheme in ("stuns", "turns"):
            transports = ["tls"]
            port = parsed.port or 5349
        else:
            port = parsed.port or 3478
            if parsed.transport == "udp":
                transports = ["udp"]
            elif parsed.transport == "tcp":
                transports = ["tcp"]
            elif parsed.transport is None:
                transports = ["udp", "tcp"]
            else:
                continue
        for t in transports:
            if t in allowed:
                yield kind, t, parsed.host, port


def _bare_host(server: Server) -> str | None:
    if server.hostnames:
        return server.hostnames[0]
    for a in server.addresses:
        net = ipaddress.ip_network(a, strict=False)
        if net.num_addresses == 1:
            return str(net.network_address)
    return None


def _bare_targets(server: Server, allowed: set[Transport]) -> Iterable[tuple[Kind, Transport, str, int]]:
    host = _bare_host(server)
    if host is None:
        return
    ports = server.ports
    plain = 3478 if not ports or 3478 in ports else next((p for p in ports if p not in (443, 5349)), None)
    secure = next((p for p in (5349, 443) if not ports or p in ports), None)
    for t in ALL_TRANSPORTS:
        port = secure if t == "tls" else plain
        if t in allowed and port is not None:
            yield "stun_binding", t, host, port
            yield "turn_allocate", t, host, port


def targets_for(
    inventory: Inventory,
    transports: Sequence[Transport] = ALL_TRANSPORTS,
    kinds: Sequence[Kind] = ("stun_binding", "turn_allocate"),
) -> list[ProbeTarget]:
    """Every probe target of the fleet, in inventory order."""
    out: list[ProbeTarget] = []
    for server in inventory.servers:
        allowed = set(server.transports or ALL_TRANSPORTS) & set(transports)
        found = list(_url_targets(server, allowed)) if server.urls else list(_bare_targets(server, allowed))
        # Binding on the TURN listener where no STUN URL covers that transport.
        found += [("stun_binding", t, host, port) for kind, t, host, port in found if kind == "turn_allocate"]
        seen: set[tuple[str, str]] = set()
        for kind, t, host, port in found:
            if kind not in kinds or (kind, t) in seen:
                continue
            seen.add((kind, t))
            out.append(ProbeTarget(server.id, server.region or None, kind, t, host, port))
    return out
