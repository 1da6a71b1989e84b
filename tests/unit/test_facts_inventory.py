"""Fleet inventory: YAML loading, validation, lookups by URL/hostname/address, nearest server/region."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.ice_url import parse_ice_url
from collector.inventory import Inventory, load_inventory
from tests.unit.test_facts_fixtures import build_inventory

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "inventory.example.yaml"


def test_example_inventory_has_the_four_reference_regions() -> None:
    inv = load_inventory(EXAMPLE)
    assert [r.id for r in inv.region_centroids()] == ["us-east", "us-west", "eu", "apac"]
    assert {s.region for s in inv.servers} == {"us-east", "us-west", "eu", "apac"}
    for s in inv.servers:
        assert s.is_turn and s.urls and s.addresses


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("turns:turn-eu.example.net:443?transport=tcp", ("turns", "turn-eu.example.net", 443, "tcp")),
        ("TURN:Turn-EU.example.net", ("turn", "turn-eu.example.net", None, None)),
        ("stun:198.51.100.1:19302", ("stun", "198.51.100.1", 19302, None)),
        ("turn:[2001:db8::1]:3478?transport=udp", ("turn", "2001:db8::1", 3478, "udp")),
        ("stun://stun.example.net", ("stun", "stun.example.net", None, None)),
    ],
)
def test_parse_ice_url(url: str, expected: tuple[str, str, int | None, str | None]) -> None:
    parsed = parse_ice_url(url)
    assert parsed is not None
    assert (parsed.scheme, parsed.host, parsed.port, parsed.transport) == expected


@pytest.mark.parametrize("url", [None, "", "https://example.net", "turn:", "turn:host:notaport"])
def test_parse_ice_url_rejects_non_ice_urls(url: str | None) -> None:
    assert parse_ice_url(url) is None


def test_server_by_url_exact_then_by_host() -> None:
    inv = build_inventory()
    assert (s := inv.server_by_url("turns:turn-eu.example.net:443?transport=tcp")) and s.id == "turn-eu-1"
    # Not listed verbatim, but the host is unambiguous.
    assert (s := inv.server_by_url("turn:turn-use.example.net:80?transport=tcp")) and s.id == "turn-use-1"
    assert inv.server_by_url("turn:unknown.example.org") is None


def test_shared_hostname_identifies_no_server() -> None:
    inv = Inventory.from_yaml_text(
        """
servers:
  - {id: a, region: x, urls: ["turn:turn.example.net"], addresses: [198.51.100.1], lat: 0, lon: 0}
  - {id: b, region: y, urls: ["turn:turn.example.net?transport=tcp"], addresses: [198.51.100.2], lat: 0, lon: 50}
"""
    )
    assert inv.server_by_hostname("turn.example.net") is None
    # the exact URL still decides
    assert (s := inv.server_by_url("turn:turn.example.net:3478?transport=tcp")) and s.id == "b"
    assert (s := inv.server_by_address("198.51.100.2")) and s.id == "b"


def test_server_by_address_cidr_ipv4_and_ipv6() -> None:
    inv = build_inventory()
    assert (s := inv.server_by_address("198.51.100.140")) and s.id == "turn-eu-1"
    assert (s := inv.server_by_address("2001:db8:1::77")) and s.id == "turn-use-1"
    assert (s := inv.server_by_address("[2001:db8:3::1]")) and s.id == "turn-eu-1"
    assert inv.server_by_address("198.51.100.100") is None
    assert inv.server_by_address("abc.local") is None


def test_server_by_hostname_falls_back_to_literal_address() -> None:
    inv = build_inventory()
    assert (s := inv.server_by_url("turn:198.51.100.5:3478")) and s.id == "turn-use-1"


def test_region_centroid_defaults_to_mean_of_servers() -> None:
    inv = Inventory.from_yaml_text(
        """
servers:
  - {id: a, region: eu, lat: 50, lon: 8}
  - {id: b, region: eu, lat: 52, lon: 4}
"""
    )
    (c,) = inv.region_centroids()
    assert (c.id, c.lat, c.lon) == ("eu", 51.0, 6.0)


def test_nearest_server_and_region() -> None:
    inv = build_inventory()
    server, km = inv.nearest_server(52.52, 13.40) or (None, 0.0)  # Berlin
    assert server is not None and server.id == "turn-eu-1"
    assert 400 < km < 500
    region, _ = inv.nearest_region(-33.87, 151.21) or (None, 0.0)  # Sydney
    assert region is not None and region.id == "apac"


def test_empty_inventory_answers_none() -> None:
    inv = Inventory()
    assert inv.nearest_server(0, 0) is None and inv.nearest_region(0, 0) is None
    assert inv.server_by_url("turn:x.example.net") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servers: [{id: a, region: r, lat: 0, lon: 0}, {id: a, region: r, lat: 0, lon: 0}]", "appears twice"),
        ("servers: [{id: a, region: r, lat: 91, lon: 0}]", "servers.0.lat"),
        ("servers: [{id: a, region: r, lat: 0, lon: 0, addresses: [not-an-ip]}]", "neither an IP"),
        ("servers: [{id: a, region: r, lat: 0, lon: 0, urls: ['http://x']}]", "not a stun:"),
        ("regions: [{id: eu}]\nservers: [{id: a, region: us, lat: 0, lon: 0}]", "not listed"),
        ("- just a list", "must be a mapping"),
        ("servers: [", "not valid YAML"),
    ],
)
def test_invalid_inventory_is_a_config_error_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Inventory.from_yaml_text(text)


def test_missing_inventory_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_inventory(tmp_path / "nope.yaml")
