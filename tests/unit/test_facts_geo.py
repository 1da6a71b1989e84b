"""GeoIP: MaxMindLocator over a real (tiny) .mmdb, the centroid fallback, address helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.distance import great_circle_km
from collector.errors import ConfigError
from collector.netaddr import is_public, truncate_ip
from processors.facts.geo import MaxMindLocator, NoGeoLocator
from tests.unit.test_facts_fixtures import BERLIN_IP, PARIS_V6, US_COUNTRY_ONLY_IP, write_test_mmdb


def test_city_database_gives_coordinates(tmp_path: Path) -> None:
    with MaxMindLocator(str(write_test_mmdb(tmp_path / "c.mmdb"))) as geo:
        point = geo.locate(BERLIN_IP)
        assert point is not None
        assert (point.country, point.lat, point.lon, point.source) == ("DE", 52.52, 13.40, "mmdb")
        v6 = geo.locate(PARIS_V6)
        assert v6 is not None and v6.country == "FR" and v6.source == "mmdb"


def test_country_only_record_uses_the_embedded_centroid(tmp_path: Path) -> None:
    geo = MaxMindLocator(str(write_test_mmdb(tmp_path / "c.mmdb")))
    point = geo.locate(US_COUNTRY_ONLY_IP)
    assert point is not None and point.country == "US" and point.source == "fallback"
    assert point.lat is not None and 25 < point.lat < 50


def test_unknown_private_and_unparseable_addresses_are_not_located(tmp_path: Path) -> None:
    geo = MaxMindLocator(str(write_test_mmdb(tmp_path / "c.mmdb")))
    for addr in ("198.51.100.99", "192.168.1.10", "10.0.0.1", "abcd-1234.local", "", "x.x.x.x"):
        assert geo.locate(addr) is None


def test_no_locator_answers_nothing() -> None:
    assert NoGeoLocator().locate(BERLIN_IP) is None


def test_unusable_database_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(ConfigError, match="cannot be opened"):
        MaxMindLocator(str(bad))
    with pytest.raises(ConfigError):
        MaxMindLocator(str(tmp_path / "missing.mmdb"))


@pytest.mark.parametrize(
    ("addr", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:1234::1", "2001:db8:abcd::"),
        ("[2001:db8:abcd:1234::1]", "2001:db8:abcd::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
        ("3f2b1c9e-0000-4d2a-9f00-aa.local", ""),
        ("", ""),
        (None, ""),
        ("x.x.x.x", ""),
    ],
)
def test_truncate_ip(addr: str | None, truncated: str) -> None:
    assert truncate_ip(addr) == truncated


@pytest.mark.parametrize(
    ("addr", "public"),
    [
        ("8.8.8.8", True),
        ("203.0.113.5", True),  # documentation ranges count as public (examples, tests)
        ("2001:db8::5", True),
        ("192.168.0.1", False),
        ("10.1.2.3", False),
        ("172.20.0.1", False),
        ("100.64.1.1", False),
        ("127.0.0.1", False),
        ("169.254.1.1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("abc.local", False),
        (None, False),
    ],
)
def test_is_public(addr: str | None, public: bool) -> None:
    assert is_public(addr) is public


def test_great_circle_km() -> None:
    assert great_circle_km(0, 0, 0, 0) == 0
    # Frankfurt - Singapore is about 10,250 km
    assert 10_100 < great_circle_km(50.11, 8.68, 1.35, 103.82) < 10_400
