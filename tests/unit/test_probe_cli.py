"""``icewatch probe``: --once output (table and JSON lines), exit status, settings errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.contract import ProbeResult
from collector.probes import cli
from tests.unit.test_probe_client import Behaviour, closed_port, fake_server


def inventory(tmp_path: Path, udp: int, tcp: int) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"""
servers:
  - id: local
    region: eu
    lat: 50
    lon: 8
    urls: ["stun:127.0.0.1:{udp}?transport=udp", "stun:127.0.0.1:{tcp}?transport=tcp",
           "turn:127.0.0.1:{udp}?transport=udp", "turn:127.0.0.1:{tcp}?transport=tcp"]
    transports: [udp, tcp]
"""
    )
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEWATCH_PROBES_VANTAGE", "test-vantage")
    monkeypatch.setenv("ICEWATCH_PROBES_TIMEOUT_S", "1")
    monkeypatch.setenv("ICEWATCH_PROBES_INITIAL_RTO_S", "0.05")
    monkeypatch.setenv("ICEWATCH_PROBES_TURN_USERNAME", "alice")
    monkeypatch.setenv("ICEWATCH_PROBES_TURN_PASSWORD", "secret")


def test_once_json_all_ok(tmp_path: Path, env: None) -> None:
    with fake_server(Behaviour()) as srv:
        inv = inventory(tmp_path, srv.udp_port, srv.tcp_port)
        result = CliRunner().invoke(cli.probe, ["--inventory", str(inv), "--once", "--json"])
    assert result.exit_code == 0, result.output
    results = [ProbeResult.model_validate(json.loads(line)) for line in result.output.splitlines()]
    assert {(r.kind, r.transport) for r in results} == {
        ("stun_binding", "udp"), ("stun_binding", "tcp"), ("turn_allocate", "udp"), ("turn_allocate", "tcp"),
    }  # fmt: skip
    assert all(r.success and r.vantage == "test-vantage" and r.latency_ms for r in results)
    assert "secret" not in result.output


def test_once_table_and_failure_exit_status(tmp_path: Path, env: None) -> None:
    import socket

    inv = inventory(tmp_path, closed_port(socket.SOCK_DGRAM), closed_port(socket.SOCK_STREAM))
    result = CliRunner().invoke(cli.probe, ["--inventory", str(inv), "--once"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].split() == ["server", "kind", "transport", "target", "result", "code", "latency_ms", "error"]
    assert len(lines) == 5
    assert all("FAIL" in line and "connection refused" in line for line in lines[1:])


def test_bad_settings_name_the_variable_without_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEWATCH_PROBES_TURN_PASSWORD", "do-not-print-me")
    monkeypatch.setenv("ICEWATCH_PROBES_TURN_SECRET", "nor-me")
    monkeypatch.setenv("ICEWATCH_PROBES_TURN_USERNAME", "u")
    inv = inventory(tmp_path, 1, 1)
    result = CliRunner().invoke(cli.probe, ["--inventory", str(inv), "--once"])
    assert result.exit_code != 0
    assert "ICEWATCH_PROBES_TURN_SECRET" in result.output
    assert "do-not-print-me" not in result.output and "nor-me" not in result.output


def test_bad_inventory(tmp_path: Path, env: None) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("servers: [{id: x}]\n")
    result = CliRunner().invoke(cli.probe, ["--inventory", str(bad), "--once"])
    assert result.exit_code != 0 and "fleet inventory" in result.output


def test_scheduled_mode_needs_kafka(tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICEWATCH_KAFKA__BOOTSTRAP", raising=False)
    inv = inventory(tmp_path, 1, 1)
    result = CliRunner().invoke(cli.probe, ["--inventory", str(inv)])
    assert result.exit_code != 0 and "ICEWATCH_KAFKA__BOOTSTRAP" in result.output


def test_scheduled_mode_publishes_until_stopped(tmp_path: Path, env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from collector.inventory import load_inventory
    from collector.probes.scheduler import ProbeScheduler
    from collector.settings import load_settings
    from tests.unit.test_probe_scheduler import RecordingPublisher

    monkeypatch.setenv("ICEWATCH_PROBES_INTERVAL_S", "1")
    pub = RecordingPublisher()
    stop = threading.Event()
    with fake_server(Behaviour()) as srv:
        inv = load_inventory(inventory(tmp_path, srv.udp_port, srv.tcp_port))
        scheduler = ProbeScheduler(inv, load_settings().probes, pub)
        timer = threading.Timer(2.5, stop.set)
        timer.start()
        cli.run_scheduled(scheduler, stop)
    assert not scheduler.running
    assert len(pub.batches) >= 2
    assert all(len(batch) == 4 for batch, _ in pub.batches)
    assert all(isinstance(r, ProbeResult) and r.success for batch, _ in pub.batches for r in batch)
