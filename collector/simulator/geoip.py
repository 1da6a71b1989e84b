"""The demo GeoIP database: a MaxMind-format file that places each region's simulated client block
(collector/simulator/plan.py) a few hundred kilometres from its region's TURN site. Demo data,
labelled so in the file; never a substitute for a real GeoLite2 / DB-IP database.

Needs ``mmdb-writer`` (installed with the dev extra: ``make demo`` installs it)."""

from __future__ import annotations

from pathlib import Path

from collector.inventory import Inventory
from collector.simulator.plan import client_block, inventory_regions

# Where the simulated clients of a region are, by region id (a metro near, not at, the TURN site).
CLIENT_METROS: dict[str, tuple[str, float, float]] = {
    "us-east": ("US", 40.71, -74.01),  # New York
    "us-west": ("US", 47.61, -122.33),  # Seattle
    "eu": ("DE", 52.52, 13.40),  # Berlin
    "apac": ("JP", 35.68, 139.69),  # Tokyo
}


def write_demo_geoip(inventory: Inventory, path: Path) -> Path:
    try:
        from mmdb_writer import MMDBWriter
        from netaddr import IPSet
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("the demo GeoIP database needs mmdb-writer: pip install 'icewatch[dev]'") from exc
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="icewatch-demo-City",
                        description={"en": "icewatch demo data: simulated client ranges, not real geolocation"})
    for region in inventory_regions(inventory):
        country, lat, lon = CLIENT_METROS.get(region, ("ZZ", 0.0, 0.0))
        if region not in CLIENT_METROS:  # an inventory region the table does not know: at its servers
            servers = [s for s in inventory.servers if s.region == region and s.lat is not None]
            if servers:
                lat, lon = servers[0].lat or 0.0, servers[0].lon or 0.0
        writer.insert_network(IPSet([str(client_block(inventory, region))]),
                              {"country": {"iso_code": country}, "location": {"latitude": lat, "longitude": lon}})
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path
