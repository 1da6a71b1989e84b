"""Builders shared by the call-facts tests: canonical reports, a test inventory, a real .mmdb.

Everything here is hand-made test data in documentation address ranges (RFC 5737/3849).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from collector.contract import (
    CallReport,
    Candidate,
    CandidateError,
    IceServer,
    Sample,
    SelectedPair,
    StateChange,
)
from collector.inventory import Inventory
from processors.facts.call_facts import FactsEnv
from processors.facts.geo import MaxMindLocator

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)

# Client networks in the test GeoIP database.
BERLIN_IP = "203.0.113.10"  # City record
SYDNEY_IP = "203.0.113.200"  # City record
US_COUNTRY_ONLY_IP = "192.0.2.10"  # Country-only record (no coordinates)
PARIS_V6 = "2001:db8:ffff::25"  # City record, IPv6

INVENTORY_YAML = """
regions:
  - {id: us-east, name: US East, lat: 39.04, lon: -77.49}
  - {id: eu, name: Europe, lat: 50.11, lon: 8.68}
  - {id: apac, name: Asia-Pacific, lat: 1.35, lon: 103.82}
servers:
  - id: turn-use-1
    region: us-east
    urls: ["stun:turn-use.example.net:3478", "turn:turn-use.example.net:3478?transport=udp",
           "turns:turn-use.example.net:443?transport=tcp"]
    hostnames: [turn-use.example.net]
    addresses: [198.51.100.0/26, "2001:db8:1::/48"]
    lat: 39.04
    lon: -77.49
    ports: [3478, 443]
    transports: [udp, tcp, tls]
  - id: turn-eu-1
    region: eu
    urls: ["stun:turn-eu.example.net:3478", "turn:turn-eu.example.net:3478?transport=udp",
           "turn:turn-eu.example.net:443?transport=tcp", "turns:turn-eu.example.net:443?transport=tcp"]
    hostnames: [turn-eu.example.net]
    addresses: [198.51.100.128/26, "2001:db8:3::/48"]
    lat: 50.11
    lon: 8.68
    ports: [3478, 443]
    transports: [udp, tcp, tls]
  - id: turn-apac-1
    region: apac
    urls: ["turn:turn-apac.example.net:3478"]
    hostnames: [turn-apac.example.net]
    addresses: [198.51.100.192/26]
    lat: 1.35
    lon: 103.82
"""

STUN_EU = "stun:turn-eu.example.net:3478"
TURN_EU_UDP = "turn:turn-eu.example.net:3478?transport=udp"
TURN_EU_TCP = "turn:turn-eu.example.net:443?transport=tcp"
TURNS_EU = "turns:turn-eu.example.net:443?transport=tcp"
TURN_USE_UDP = "turn:turn-use.example.net:3478?transport=udp"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def build_inventory() -> Inventory:
    return Inventory.from_yaml_text(INVENTORY_YAML)


def write_test_mmdb(path: Path) -> Path:
    """A tiny real GeoIP2-City-shaped database (plus one Country-only record)."""
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    w.insert_network(
        IPSet(["203.0.113.0/25"]),
        {"country": {"iso_code": "DE"}, "location": {"latitude": 52.52, "longitude": 13.40}},
    )
    w.insert_network(
        IPSet(["203.0.113.128/25"]),
        {"country": {"iso_code": "AU"}, "location": {"latitude": -33.87, "longitude": 151.21}},
    )
    w.insert_network(IPSet(["192.0.2.0/24"]), {"country": {"iso_code": "US"}})
    w.insert_network(
        IPSet(["2001:db8:ffff::/48"]),
        {"country": {"iso_code": "FR"}, "location": {"latitude": 48.86, "longitude": 2.35}},
    )
    w.to_db_file(str(path))
    return path


def make_env(tmp_path: Path, **thresholds: float) -> FactsEnv:
    """The test inventory plus a MaxMindLocator over a freshly written test database."""
    db = write_test_mmdb(tmp_path / "test-city.mmdb")
    return FactsEnv(inventory=build_inventory(), geo=MaxMindLocator(str(db)), **thresholds)


def cand(
    cid: str,
    ctype: str,
    address: str | None = None,
    *,
    remote: bool = False,
    gathered: float | None = None,
    **extra: Any,
) -> Candidate:
    return Candidate(
        id=cid,
        is_remote=remote,
        candidate_type=ctype,
        address=address,
        gathered_at=at(gathered) if gathered is not None else None,
        **extra,
    )


def pair(local: str, remote: str, seconds: float = 1.0) -> SelectedPair:
    return SelectedPair(
        at=at(seconds), pair_id=f"{local}-{remote}", local_candidate_id=local, remote_candidate_id=remote
    )


def state(seconds: float, kind: str, value: str) -> StateChange:
    return StateChange(at=at(seconds), kind=kind, state=value)


def err(url: str, code: int, seconds: float | None = 0.2, address: str = "192.168.1.10") -> CandidateError:
    return CandidateError(at=at(seconds) if seconds is not None else None, url=url, error_code=code, address=address)


def rtt_samples(values_ms: list[float], start: float = 2.0, **extra: Any) -> list[Sample]:
    """One 1-second sample per value, from candidate-pair RTT."""
    return [
        Sample(start=at(start + i), end=at(start + i + 1), rtt_ms=v, rtt_source="candidate-pair", **extra)
        for i, v in enumerate(values_ms)
    ]


def connected_states(ice_at: float = 0.5, dtls_at: float | None = 0.7) -> list[StateChange]:
    out = [state(0.0, "gathering", "gathering"), state(0.1, "ice", "checking"), state(ice_at, "ice", "connected")]
    if dtls_at is not None:
        out += [state(ice_at, "dtls", "connecting"), state(dtls_at, "dtls", "connected")]
        out.append(state(dtls_at, "connection", "connected"))
    return out


def make_report(**fields: Any) -> CallReport:
    """A canonical report with defaults for the identity fields."""
    base: dict[str, Any] = {
        "call_id": "call-1",
        "report_id": "rep-1",
        "source_format": "w3c",
        "started_at": T0,
    }
    base.update(fields)
    return CallReport(**base)


def srflx_call(rtts: list[float] | None = None, **fields: Any) -> CallReport:
    """A healthy direct call: local srflx (Berlin) to a remote srflx, ICE and DTLS connected."""
    defaults: dict[str, Any] = {
        "ice_servers": [IceServer(urls=[STUN_EU, TURN_EU_UDP])],
        "candidates": [
            cand("h1", "host", "192.168.1.10", gathered=0.01, protocol="udp"),
            cand("s1", "srflx", BERLIN_IP, gathered=0.05, protocol="udp", url=STUN_EU, related_address="192.168.1.10"),
            cand(
                "r1",
                "relay",
                "198.51.100.130",
                gathered=0.12,
                protocol="udp",
                url=TURN_EU_UDP,
                relay_protocol="udp",
                related_address=BERLIN_IP,
            ),
            cand("rs1", "srflx", "198.51.100.250", remote=True),
        ],
        "selected_pairs": [pair("s1", "rs1", 0.5)],
        "states": connected_states(),
        "samples": rtt_samples(rtts if rtts is not None else [40.0] * 10),
    }
    defaults.update(fields)
    return make_report(**defaults)


def relay_call(local: Candidate, rtts: list[float] | None = None, **fields: Any) -> CallReport:
    """A relayed call whose selected local candidate is ``local`` (plus a host and a srflx)."""
    defaults: dict[str, Any] = {
        "ice_servers": [IceServer(urls=[STUN_EU, TURN_EU_UDP, TURNS_EU])],
        "candidates": [
            cand("h1", "host", "192.168.1.10", gathered=0.01, protocol="udp"),
            local,
            cand("rs1", "srflx", "198.51.100.250", remote=True),
        ],
        "selected_pairs": [pair(local.id, "rs1", 0.5)],
        "states": connected_states(),
        "samples": rtt_samples(rtts if rtts is not None else [60.0] * 10),
    }
    defaults.update(fields)
    return make_report(**defaults)


def test_builders_make_valid_reports() -> None:
    report = srflx_call()
    assert report.selected_pairs[0].local_candidate_id == "s1"
    assert len(report.samples) == 10
    assert build_inventory().server("turn-eu-1") is not None
