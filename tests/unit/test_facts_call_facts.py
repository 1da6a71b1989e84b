"""derive_call_facts end to end: composition, determinism, repeats/out-of-order input, defaults, speed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collector.contract import CallReport, Sample
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.model import PATH_CLASSES, CallFacts
from tests.unit.test_facts_fixtures import (
    BERLIN_IP,
    TURNS_EU,
    at,
    cand,
    make_env,
    pair,
    relay_call,
    srflx_call,
    state,
)


def _realistic(samples: int = 300) -> CallReport:
    local = cand("r1", "relay", "198.51.100.131", url=TURNS_EU, related_address=BERLIN_IP, priority=(0 << 24) | 255)
    rows = [
        Sample(
            start=at(1 + i),
            end=at(2 + i),
            rtt_ms=40.0 + (i % 50),
            rtt_source="candidate-pair",
            jitter_ms=3.0 + (i % 7),
            packets_sent=50,
            packets_received=50 - (i % 2),
            packets_lost=i % 2,
            bytes_sent=4000,
            bytes_received=4100,
            ice_state="connected",
            dtls_state="connected",
            selected_pair_id="r1-rs1",
        )
        for i in range(samples)
    ]
    return relay_call(
        local,
        samples=rows,
        segment=2,
        final=False,
        peer_connection_id="pc0",
        sdk_name="telnyx-js",
        sdk_version="2.27.10",
        browser="chrome",
        ended_at=at(samples + 1),
    )


def test_all_facts_of_a_realistic_relayed_call(tmp_path: Path) -> None:
    f = derive_call_facts(_realistic(), make_env(tmp_path))
    assert (f.call_id, f.report_id, f.segment, f.peer_connection_id, f.sdk_version) == (
        "call-1",
        "rep-1",
        2,
        "pc0",
        "2.27.10",
    )
    assert f.path_class == "relay-tls" and f.path_class in PATH_CLASSES
    assert (f.relay_protocol, f.relay_protocol_source) == ("tls", "url")
    assert (f.turn_server_id, f.turn_region, f.client_region, f.client_country) == ("turn-eu-1", "eu", "eu", "DE")
    assert f.client_address == "203.0.113.0" and not f.distant_relay
    assert f.ice_connected and f.dtls_connected and not f.dtls_stall
    assert f.rtt_samples == 300 and f.rtt_band == "excellent" and f.seconds_excellent == 300.0
    assert f.loss_pct is not None and 0.9 < f.loss_pct < 1.1
    assert f.mos is not None and f.connection_send_kbps == 32.0
    assert f.labels == ["udp_blocked_tcp_relay"]
    CallFacts.model_validate_json(f.model_dump_json())  # the row survives serialization


def test_deterministic_and_insensitive_to_order_and_repeats(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    report = _realistic(30)
    first = derive_call_facts(report, env)
    assert derive_call_facts(report, env) == first
    shuffled = report.model_copy(
        update={
            "samples": list(reversed(report.samples)) + report.samples[:10],
            "states": list(reversed(report.states)) + list(report.states),
            "selected_pairs": report.selected_pairs * 2,
            "candidates": list(reversed(report.candidates)) + report.candidates,
            "candidate_errors": report.candidate_errors * 2,
        }
    )
    assert derive_call_facts(shuffled, env) == first


def test_duplicate_segment_upload_gives_the_same_facts(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    report = _realistic(20)
    retried = CallReport.model_validate_json(report.model_dump_json())
    assert derive_call_facts(retried, env) == derive_call_facts(report, env)


def test_default_env_needs_no_configuration() -> None:
    f = derive_call_facts(srflx_call(), FactsEnv.default())
    assert f.path_class == "srflx" and f.geo_source == "none" and f.turn_server_id == ""
    assert f.client_region == "" and f.nearest_server_id == "" and f.diagnosis == "ok"
    assert FactsEnv.default().distant_relay_km == 1500.0 and FactsEnv.default().dtls_stall_ms == 5000.0


def test_facts_env_loads_the_configured_inventory_and_names_a_bad_one(tmp_path: Path) -> None:
    from collector.errors import ConfigError
    from collector.settings import Settings
    from processors.service.assembly import facts_env

    example = Path(__file__).resolve().parents[2] / "deploy" / "inventory.example.yaml"
    env = facts_env(Settings(inventory=example, distant_relay_km=900))
    assert len(env.inventory.servers) == 4 and env.distant_relay_km == 900
    (tmp_path / "bad.yaml").write_text("servers: [{id: x}]")
    with pytest.raises(ConfigError, match="ICEWATCH_INVENTORY"):
        facts_env(Settings(inventory=tmp_path / "bad.yaml"))
    with pytest.raises(ConfigError, match="ICEWATCH_GEOIP_DB"):
        facts_env(Settings(geoip_db=tmp_path / "missing.mmdb"))


def test_firefox_without_transport_stats(tmp_path: Path) -> None:
    # No transport block: no per-sample states, no reported pair counter; the pair comes from
    # `candidate-pair.selected`, RTT from remote-inbound-rtp, DTLS from connectionState.
    local = cand("r1", "relay", "198.51.100.131", url=TURNS_EU, related_address=BERLIN_IP)
    report = relay_call(
        local,
        browser="firefox",
        states=[state(0.1, "ice", "checking"), state(0.4, "ice", "connected"), state(0.6, "connection", "connected")],
        samples=[Sample(start=at(i), rtt_ms=30.0, rtt_source="remote-inbound-rtp") for i in range(1, 4)],
    )
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.path_class == "relay-tls" and f.rtt_source == "remote-inbound-rtp" and f.rtt_median_ms == 30.0
    assert f.dtls_connected and f.dtls_connect_ms == 200.0 and not f.dtls_stall


def test_mdns_host_pair(tmp_path: Path) -> None:
    report = srflx_call(
        client_address=BERLIN_IP,
        candidates=[
            cand("h1", "host", "0d1e2f3a-aaaa-bbbb-cccc-1234567890ab.local"),
            cand("h2", "host", "9a8b7c6d-aaaa-bbbb-cccc-1234567890ab.local", remote=True),
        ],
        selected_pairs=[pair("h1", "h2")],
    )
    f = derive_call_facts(report, make_env(tmp_path))
    assert f.path_class == "host" and f.client_country == "DE" and f.client_address == "203.0.113.0"


def test_fast_enough_per_message(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    report = _realistic(300)
    derive_call_facts(report, env)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        derive_call_facts(report, env)
    per_call_ms = (time.perf_counter() - start) * 1000 / runs
    assert per_call_ms < 20, f"{per_call_ms:.2f} ms per 300-sample report"
