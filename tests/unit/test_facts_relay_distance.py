"""Relay distance: client address choice, GeoIP, km to the used TURN server, nearest, excess, region."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.contract import CallReport
from processors.facts.call_facts import FactsEnv
from processors.facts.candidate_mix import derive_candidate_mix
from processors.facts.geo import NoGeoLocator
from processors.facts.relay_distance import RelayDistance, client_public_address, derive_relay_distance
from tests.unit.test_facts_fixtures import (
    BERLIN_IP,
    PARIS_V6,
    SYDNEY_IP,
    TURN_EU_UDP,
    TURN_USE_UDP,
    US_COUNTRY_ONLY_IP,
    build_inventory,
    cand,
    make_env,
    make_report,
    pair,
    relay_call,
    srflx_call,
)


def _distance(report: CallReport, env: FactsEnv) -> RelayDistance:
    mix = derive_candidate_mix(report, env.inventory)
    return derive_relay_distance(report, mix, env.inventory, env.geo, env.distant_relay_km)


def test_client_from_srflx_nearest_server_and_region(tmp_path: Path) -> None:
    d = _distance(srflx_call(client_address="198.51.100.250"), make_env(tmp_path))
    assert (d.client_country, d.client_lat, d.client_lon, d.geo_source) == ("DE", 52.52, 13.40, "mmdb")
    assert d.client_address == "203.0.113.0"  # truncated after the lookup
    assert d.client_region == "eu" and d.nearest_server_id == "turn-eu-1"
    assert d.nearest_distance_km is not None and 400 < d.nearest_distance_km < 500
    assert d.relay_distance_km is None and d.excess_km is None and not d.distant_relay


def test_relay_to_a_distant_server_is_distant_relay(tmp_path: Path) -> None:
    # Berlin client relayed through US East although Europe is near.
    local = cand("r1", "relay", "198.51.100.7", url=TURN_USE_UDP, relay_protocol="udp", related_address=BERLIN_IP)
    d = _distance(relay_call(local), make_env(tmp_path))
    assert d.relay_distance_km is not None and 6_500 < d.relay_distance_km < 7_000
    assert d.excess_km is not None and d.excess_km == pytest.approx(d.relay_distance_km - (d.nearest_distance_km or 0))
    assert d.distant_relay


def test_near_relay_and_threshold_is_configurable(tmp_path: Path) -> None:
    local = cand("r1", "relay", "198.51.100.131", url=TURN_EU_UDP, relay_protocol="udp", related_address=BERLIN_IP)
    d = _distance(relay_call(local), make_env(tmp_path))
    assert d.excess_km == 0.0 and not d.distant_relay
    far = cand("r1", "relay", "198.51.100.7", url=TURN_USE_UDP, relay_protocol="udp", related_address=BERLIN_IP)
    strict = _distance(relay_call(far), make_env(tmp_path, distant_relay_km=10_000))
    assert not strict.distant_relay


def test_relay_related_address_locates_the_client(tmp_path: Path) -> None:
    local = cand("r1", "relay", "198.51.100.200", url="turn:turn-apac.example.net", related_address=SYDNEY_IP)
    report = relay_call(local, candidates=[local, cand("rs1", "host", "198.51.100.251", remote=True)])
    d = _distance(report, make_env(tmp_path))
    assert d.client_country == "AU" and d.client_region == "apac" and not d.distant_relay


def test_upload_address_when_candidates_are_private_or_mdns(tmp_path: Path) -> None:
    report = make_report(
        client_address=SYDNEY_IP,
        candidates=[
            cand("h1", "host", "4f1c9a2e-1b2c-4d3e-9f00-1234567890ab.local"),
            cand("h2", "host", "10.1.2.3"),
            cand("rh", "host", "198.51.100.251", remote=True),
        ],
        selected_pairs=[pair("h1", "rh")],
    )
    mix = derive_candidate_mix(report, build_inventory())
    assert client_public_address(report, mix) == SYDNEY_IP
    assert _distance(report, make_env(tmp_path)).client_region == "apac"


def test_ipv6_client(tmp_path: Path) -> None:
    report = srflx_call(
        candidates=[cand("s1", "srflx", PARIS_V6), cand("rs1", "srflx", "2001:db8:3::9", remote=True)],
        selected_pairs=[pair("s1", "rs1")],
    )
    d = _distance(report, make_env(tmp_path))
    assert d.client_country == "FR" and d.client_address == "2001:db8:ffff::" and d.client_region == "eu"


def test_country_only_database_uses_centroid_fallback(tmp_path: Path) -> None:
    report = make_report(client_address=US_COUNTRY_ONLY_IP)
    d = _distance(report, make_env(tmp_path))
    assert (d.client_country, d.geo_source, d.client_region) == ("US", "fallback", "us-east")


def test_without_geo_nothing_is_guessed_but_the_address_is_truncated() -> None:
    env = FactsEnv(inventory=build_inventory(), geo=NoGeoLocator())
    d = _distance(srflx_call(), env)
    assert d.geo_source == "none" and d.client_region == "" and d.relay_distance_km is None
    assert d.client_address == "203.0.113.0"


def test_relay_outside_the_inventory_is_located_by_geoip(tmp_path: Path) -> None:
    # A relayed address in the Sydney test network, unknown to the inventory; client in Berlin.
    local = cand("r1", "relay", "203.0.113.201", relay_protocol="udp", related_address=BERLIN_IP)
    d = _distance(relay_call(local), make_env(tmp_path))
    assert d.relay_distance_km is not None and d.relay_distance_km > 15_000 and d.distant_relay
