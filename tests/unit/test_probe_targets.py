"""Probe targets from the fleet inventory, and ProbeSettings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from collector.inventory import Inventory, load_inventory
from collector.probes import stun
from collector.probes.credentials import probe_credentials, probe_options
from collector.probes.targets import ProbeTarget, targets_for
from collector.settings import ProbeSettings, load_settings

INVENTORY = """
servers:
  - id: full
    region: eu
    lat: 50.1
    lon: 8.7
    urls:
      - stun:turn-eu.example.net:3478
      - turn:turn-eu.example.net:3478?transport=udp
      - turn:turn-eu.example.net:443?transport=tcp
      - turns:turn-eu.example.net:443?transport=tcp
    transports: [udp, tcp, tls]
  - id: turn-only
    region: us-east
    lat: 39.0
    lon: -77.5
    urls: ["turn:198.51.100.7"]
    transports: [udp]
  - id: bare
    region: apac
    lat: 1.35
    lon: 103.8
    addresses: [203.0.113.9]
    ports: [3478, 443]
  - id: stun-only
    region: apac
    lat: 1.35
    lon: 103.8
    urls: ["stun:stun.example.net:19302", "stuns:stun.example.net"]
"""


def keyset(targets: list[ProbeTarget]) -> set[tuple[str, str, str, str]]:
    return {(t.server_id, t.kind, t.transport, t.target) for t in targets}


def test_targets_from_urls_and_fallbacks() -> None:
    inv = Inventory.from_yaml_text(INVENTORY)
    got = keyset(targets_for(inv))
    assert got == {
        ("full", "stun_binding", "udp", "turn-eu.example.net:3478"),
        ("full", "stun_binding", "tcp", "turn-eu.example.net:3478"),
        ("full", "turn_allocate", "udp", "turn-eu.example.net:3478"),
        ("full", "turn_allocate", "tcp", "turn-eu.example.net:443"),
        ("full", "turn_allocate", "tls", "turn-eu.example.net:443"),
        ("full", "stun_binding", "tls", "turn-eu.example.net:443"),  # Binding on the TURN/TLS listener
        ("turn-only", "turn_allocate", "udp", "198.51.100.7:3478"),  # tcp not offered by the server
        ("turn-only", "stun_binding", "udp", "198.51.100.7:3478"),
        ("bare", "stun_binding", "udp", "203.0.113.9:3478"),
        ("bare", "turn_allocate", "udp", "203.0.113.9:3478"),
        ("bare", "stun_binding", "tcp", "203.0.113.9:3478"),
        ("bare", "turn_allocate", "tcp", "203.0.113.9:3478"),
        ("bare", "stun_binding", "tls", "203.0.113.9:443"),
        ("bare", "turn_allocate", "tls", "203.0.113.9:443"),
        ("stun-only", "stun_binding", "udp", "stun.example.net:19302"),
        ("stun-only", "stun_binding", "tcp", "stun.example.net:19302"),
        ("stun-only", "stun_binding", "tls", "stun.example.net:5349"),
    }


def test_one_target_per_server_kind_transport() -> None:
    inv = load_inventory("deploy/inventory.example.yaml")
    targets = targets_for(inv)
    keys = [(t.server_id, t.kind, t.transport) for t in targets]
    assert len(keys) == len(set(keys))
    assert len(targets) == len(inv.servers) * 2 * 3


def test_filters() -> None:
    inv = Inventory.from_yaml_text(INVENTORY)
    assert {t.transport for t in targets_for(inv, ["udp"])} == {"udp"}
    assert {t.kind for t in targets_for(inv, kinds=["stun_binding"])} == {"stun_binding"}


def test_ipv6_target_text() -> None:
    inv = Inventory.from_yaml_text(
        "servers:\n  - {id: v6, region: eu, lat: 0, lon: 0, urls: ['stun:[2001:db8::1]:3478'], transports: [udp]}\n"
    )
    (t,) = targets_for(inv)
    assert (t.host, t.port, t.target) == ("2001:db8::1", 3478, "[2001:db8::1]:3478")


# ---- settings -------------------------------------------------------------------------------


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEWATCH_PROBES_INTERVAL_S", "15")
    monkeypatch.setenv("ICEWATCH_PROBES_TIMEOUT_S", "2.5")
    monkeypatch.setenv("ICEWATCH_PROBES_VANTAGE", "fra-collector-1")
    monkeypatch.setenv("ICEWATCH_PROBES_TURN_USERNAME", "probe")
    monkeypatch.setenv("ICEWATCH_PROBES_TURN_PASSWORD", "hunter2")
    monkeypatch.setenv("ICEWATCH_PROBES_TRANSPORTS", '["udp","tcp"]')
    s = load_settings().probes
    assert (s.interval_s, s.timeout_s, s.vantage, s.transports) == (15, 2.5, "fra-collector-1", ["udp", "tcp"])
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    creds = probe_credentials(s)
    assert creds is not None and (creds.username, creds.password) == ("probe", "hunter2")
    assert probe_options(s).timeout_s == 2.5


def test_settings_defaults() -> None:
    s = ProbeSettings()
    assert s.vantage  # the host name
    assert probe_credentials(s) is None and not s.has_turn_credentials


def test_turn_rest_secret() -> None:
    s = ProbeSettings(turn_secret=SecretStr("S"), turn_rest_user="probe", turn_rest_ttl_s=600)
    creds = probe_credentials(s, now=1000)
    assert creds is not None
    assert (creds.username, creds.password) == stun.turn_rest_credentials("S", "probe", 600, now=1000)
    assert creds.username == "1600:probe"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"turn_username": "u"},
        {"turn_password": SecretStr("p")},
        {"turn_username": "u", "turn_password": SecretStr("p"), "turn_secret": SecretStr("s")},
        {"interval_s": 0},
    ],
)
def test_settings_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ProbeSettings(**kwargs)


def test_a_bad_probe_variable_is_named_in_the_one_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.errors import ConfigError

    monkeypatch.setenv("ICEWATCH_PROBES_INTERVAL_S", "often")
    monkeypatch.setenv("ICEWATCH_PORT", "99999")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "ICEWATCH_PROBES_INTERVAL_S" in str(err.value) and "ICEWATCH_PORT" in str(err.value)
    assert "often" not in str(err.value)
