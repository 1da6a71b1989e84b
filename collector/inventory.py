"""The fleet inventory: STUN/TURN servers and regions, loaded from YAML, with the lookups facts need.

YAML shape (see deploy/inventory.example.yaml)::

    regions:            # optional; a region's centroid defaults to the mean of its servers
      - {id: us-east, name: US East, lat: 39.0, lon: -77.5}
    servers:
      - id: turn-use-1
        region: us-east
        urls: ["turn:turn-us-east.example.net:3478?transport=udp", "turns:turn-us-east.example.net:443"]
        hostnames: [turn-us-east.example.net]
        addresses: [198.51.100.0/26, "2001:db8:100::/48"]
        lat: 39.04
        lon: -77.49
        ports: [3478, 443]
        transports: [udp, tcp, tls]

Matching a TURN URL to a server: an exact match of the normalized URL (scheme, host, port,
transport, with the RFC 7064/7065 defaults filled in) wins; otherwise the URL's host is matched
against server hostnames/addresses/URL hosts. A host shared by several servers (GeoDNS, anycast)
identifies none of them; the relayed address then decides.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from collector.distance import great_circle_km
from collector.errors import ConfigError
from collector.ice_url import parse_ice_url
from collector.netaddr import parse_ip


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Server(_Model):
    """One STUN/TURN server (or one anycast/GeoDNS site) of the fleet."""

    id: str
    region: str
    urls: list[str] = Field(default_factory=list)
    hostnames: list[str] = Field(default_factory=list)
    addresses: list[str] = Field(default_factory=list)  # IPs or CIDRs (relayed and listener addresses)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    ports: list[int] = Field(default_factory=list)
    transports: list[Literal["udp", "tcp", "tls"]] = Field(default_factory=list)

    @field_validator("urls")
    @classmethod
    def _urls_are_ice_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if parse_ice_url(url) is None:
                raise ValueError(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
        return urls

    @field_validator("addresses")
    @classmethod
    def _addresses_are_networks(cls, addresses: list[str]) -> list[str]:
        for a in addresses:
            try:
                ipaddress.ip_network(a, strict=False)
            except ValueError as exc:
                raise ValueError(f"{a!r} is neither an IP address nor a CIDR") from exc
        return addresses

    @property
    def is_turn(self) -> bool:
        """Offers relays: a turn:/turns: URL, or no URLs listed at all (unknown, assume yes)."""
        return not self.urls or any(u.is_turn for u in map(parse_ice_url, self.urls) if u)


class Region(_Model):
    id: str
    name: str = ""
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


@dataclass(frozen=True)
class RegionCentroid:
    id: str
    name: str
    lat: float
    lon: float


class Inventory(_Model):
    """The fleet: servers and regions. Build with ``load_inventory``/``from_yaml_text`` or directly."""

    regions: list[Region] = Field(default_factory=list)
    servers: list[Server] = Field(default_factory=list)

    _by_url: dict[tuple[str, str, int, str], Server] = PrivateAttr(default_factory=dict)
    _by_host: dict[str, list[Server]] = PrivateAttr(default_factory=dict)
    _networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Server]] = PrivateAttr(default_factory=list)
    _centroids: list[RegionCentroid] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Inventory:
        seen: set[str] = set()
        for s in self.servers:
            if s.id in seen:
                raise ValueError(f"server id {s.id!r} appears twice")
            seen.add(s.id)
        region_ids = [r.id for r in self.regions]
        if len(set(region_ids)) != len(region_ids):
            raise ValueError("a region id appears twice")
        if self.regions:
            for s in self.servers:
                if s.region not in region_ids:
                    raise ValueError(f"server {s.id!r} names region {s.region!r}, which is not listed")
        return self

    def model_post_init(self, context: object, /) -> None:
        for s in self.servers:
            hosts: set[str] = {h.lower() for h in s.hostnames}
            for url in s.urls:
                parsed = parse_ice_url(url)
                if parsed is not None:
                    self._by_url.setdefault(parsed.key(), s)
                    hosts.add(parsed.host)
            for a in s.addresses:
                net = ipaddress.ip_network(a, strict=False)
                self._networks.append((net, s))
                if net.num_addresses == 1:
                    hosts.add(str(net.network_address))
            for h in hosts:
                self._by_host.setdefault(h, []).append(s)
        self._centroids = self._compute_centroids()

    def _compute_centroids(self) -> list[RegionCentroid]:
        names = {r.id: r for r in self.regions}
        ids = [r.id for r in self.regions] + sorted({s.region for s in self.servers} - set(names))
        out: list[RegionCentroid] = []
        for rid in ids:
            region = names.get(rid)
            if region is not None and region.lat is not None and region.lon is not None:
                out.append(RegionCentroid(rid, region.name or rid, region.lat, region.lon))
                continue
            members = [s for s in self.servers if s.region == rid]
            if members:
                lat = sum(s.lat for s in members) / len(members)
                lon = sum(s.lon for s in members) / len(members)
                out.append(RegionCentroid(rid, region.name if region and region.name else rid, lat, lon))
        return out

    # ---- lookups ---------------------------------------------------------------------------

    def server(self, server_id: str) -> Server | None:
        return next((s for s in self.servers if s.id == server_id), None)

    def server_by_url(self, url: str | None) -> Server | None:
        """The server behind a STUN/TURN URL: exact normalized URL, else an unambiguous host."""
        parsed = parse_ice_url(url)
        if parsed is None:
            return None
        exact = self._by_url.get(parsed.key())
        if exact is not None:
            return exact
        return self.server_by_hostname(parsed.host)

    def server_by_hostname(self, host: str | None) -> Server | None:
        """The one server with this hostname (or literal address); None if unknown or shared."""
        if not host:
            return None
        key = host.strip().strip("[]").lower().rstrip(".")
        matches = self._by_host.get(key, [])
        if len(matches) == 1:
            return matches[0]
        ip = parse_ip(key)
        return self.server_by_address(str(ip)) if not matches and ip is not None else None

    def server_by_address(self, address: str | None) -> Server | None:
        """The server whose addresses/CIDRs contain ``address`` (most specific network wins)."""
        ip = parse_ip(address)
        if ip is None:
            return None
        best: tuple[int, Server] | None = None
        for net, server in self._networks:
            if net.version == ip.version and ip in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, server)
        return best[1] if best else None

    def region_centroids(self) -> list[RegionCentroid]:
        """Every region with a centroid: its own coordinates, else the mean of its servers'."""
        return list(self._centroids)

    def nearest_server(self, lat: float, lon: float, turn_only: bool = True) -> tuple[Server, float] | None:
        """The closest server (TURN-capable ones by default) and its great-circle distance in km."""
        best: tuple[Server, float] | None = None
        for s in self.servers:
            if turn_only and not s.is_turn:
                continue
            d = great_circle_km(lat, lon, s.lat, s.lon)
            if best is None or d < best[1]:
                best = (s, d)
        return best

    def nearest_region(self, lat: float, lon: float) -> tuple[RegionCentroid, float] | None:
        """The region whose centroid is closest, and the distance in km."""
        best: tuple[RegionCentroid, float] | None = None
        for c in self._centroids:
            d = great_circle_km(lat, lon, c.lat, c.lon)
            if best is None or d < best[1]:
                best = (c, d)
        return best

    # ---- loading ---------------------------------------------------------------------------

    @classmethod
    def from_yaml_text(cls, text: str, origin: str = "<inventory>") -> Inventory:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"fleet inventory {origin} is not valid YAML: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"fleet inventory {origin} must be a mapping with 'servers' (and 'regions')")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"fleet inventory {origin}: {where}: {first['msg']}") from exc


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate the fleet inventory YAML; ConfigError says what is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"fleet inventory {p} cannot be read: {exc}") from exc
    return Inventory.from_yaml_text(text, origin=str(p))
