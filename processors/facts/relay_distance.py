"""Relay distance: where the client is, how far its TURN server is, and whether a closer one existed.

Client address (the first public one wins):
1. the selected local candidate: a relay's ``related_address`` (the client's mapped address),
   else the candidate's own address (srflx/prflx, or a host with a public address);
2. any gathered local srflx/prflx candidate's address, or a local relay's related address;
3. the upload's source address (``CallReport.client_address``).
mDNS names, obfuscated and private addresses are skipped.

Distances are great-circle km. The used TURN server's position is its inventory position; a
relayed address unknown to the inventory is located with GeoIP instead. ``excess_km`` is the
relay distance minus the distance to the nearest TURN-capable inventory server;
``distant_relay`` is ``excess_km > threshold`` (default 1500 km, ``FactsEnv.distant_relay_km``:
roughly 15 ms of extra one-way fibre delay, or a different continent-scale region).
The client region is the inventory region with the nearest centroid.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.contract import CallReport
from collector.distance import great_circle_km
from collector.inventory import Inventory
from collector.netaddr import is_public, truncate_ip
from processors.facts.candidate_mix import CandidateMix, local_candidates
from processors.facts.geo import GeoLocator, GeoPoint

DEFAULT_DISTANT_RELAY_KM = 1500.0


@dataclass(frozen=True)
class RelayDistance:
    client_address: str  # truncated (/24, /48) after the lookup; "" when none was known
    client_country: str
    client_lat: float | None
    client_lon: float | None
    client_region: str
    geo_source: str  # mmdb | fallback | none
    relay_distance_km: float | None
    nearest_server_id: str
    nearest_distance_km: float | None
    excess_km: float | None
    distant_relay: bool


def client_public_address(report: CallReport, mix: CandidateMix) -> str | None:
    """The client's public address by the rule in the module docstring, or None."""
    options: list[str | None] = []
    if mix.local is not None:
        if mix.local.candidate_type == "relay":
            options.append(mix.local.related_address)
        else:
            options.append(mix.local.address)
    for c in local_candidates(report):
        if c.candidate_type in ("srflx", "prflx"):
            options.append(c.address)
        elif c.candidate_type == "relay":
            options.append(c.related_address)
    options.append(report.client_address)
    return next((a for a in options if a and is_public(a)), None)


def derive_relay_distance(
    report: CallReport,
    mix: CandidateMix,
    inventory: Inventory,
    geo: GeoLocator,
    threshold_km: float = DEFAULT_DISTANT_RELAY_KM,
) -> RelayDistance:
    address = client_public_address(report, mix)
    point: GeoPoint | None = geo.locate(address) if address else None
    shown = truncate_ip(address or report.client_address)
    if point is None or point.lat is None or point.lon is None:
        return RelayDistance(
            client_address=shown,
            client_country=point.country if point else "",
            client_lat=None,
            client_lon=None,
            client_region="",
            geo_source=point.source if point else "none",
            relay_distance_km=None,
            nearest_server_id="",
            nearest_distance_km=None,
            excess_km=None,
            distant_relay=False,
        )
    lat, lon = point.lat, point.lon
    region = inventory.nearest_region(lat, lon)
    nearest = inventory.nearest_server(lat, lon)

    relay_km: float | None = None
    if mix.is_relay:
        server = inventory.server(mix.turn_server_id) if mix.turn_server_id else None
        if server is not None:
            relay_km = great_circle_km(lat, lon, server.lat, server.lon)
        elif mix.local is not None and mix.local.address:
            relay_point = geo.locate(mix.local.address)
            if relay_point is not None and relay_point.lat is not None and relay_point.lon is not None:
                relay_km = great_circle_km(lat, lon, relay_point.lat, relay_point.lon)

    nearest_km = nearest[1] if nearest else None
    excess = max(0.0, relay_km - nearest_km) if relay_km is not None and nearest_km is not None else None
    return RelayDistance(
        client_address=shown,
        client_country=point.country,
        client_lat=lat,
        client_lon=lon,
        client_region=region[0].id if region else "",
        geo_source=point.source,
        relay_distance_km=relay_km,
        nearest_server_id=nearest[0].id if nearest else "",
        nearest_distance_km=nearest_km,
        excess_km=excess,
        distant_relay=excess is not None and excess > threshold_km,
    )
