"""The ``turn`` click group: ``turn parse`` and ``turn sessions`` on a log file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from collector.errors import ConfigError
from collector.settings import Settings
from collector.turn.cli import turn
from collector.turn.config import coturn_parser


def test_cli_parse_and_sessions(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    log.write_text(
        "0: : Coturn Version 4.6.1\n"
        "1: : session 000000000000000001: realm <r> user <>: incoming packet message processed, "
        "error 401: Unauthorized\n"
        "1: : session 000000000000000001: new, realm=<r>, username=<alice>, lifetime=600\n"
        "1: : session 000000000000000001: realm <r> user <alice>: incoming packet ALLOCATE processed, success\n"
        "5: : session 000000000000000001: peer usage: realm=<r>, username=<alice>, rp=5, rb=500, sp=5, sb=500\n"
        "5: : session 000000000000000001: closed (2nd stage), user <alice> realm <r> origin <>, local a:3478, "
        "remote b:1, reason: allocation timeout\n"
        "garbage\n"
    )
    runner = CliRunner()
    res = runner.invoke(turn, ["parse", str(log), "--json", "--server-id", "x"], env={"ICEWATCH_HASH_KEY": "k"})
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 6 and all('"server_id":"x"' in ln for ln in lines)
    assert "alice" not in res.stdout
    res = runner.invoke(turn, ["sessions", str(log), "--json"], env={"ICEWATCH_HASH_KEY": "k"})
    assert res.exit_code == 0, res.output
    sessions = [json.loads(ln) for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert len(sessions) == 1
    s = sessions[0]
    assert s["allocated"] and s["auth_challenges"] == 1 and s["peer_bytes"] == 1000 and s["transport"] == "udp"
    assert s["close_reason"] == "allocation timeout"
    assert "1 not understood" in res.stderr


def test_the_hash_key_comes_from_the_settings() -> None:
    with pytest.raises(ConfigError, match="ICEWATCH_HASH_KEY"):
        coturn_parser("s", Settings(hash_key=SecretStr("")))
    p = coturn_parser("s", Settings(hash_key=SecretStr("secret")), region="eu")
    q = coturn_parser("s", Settings(hash_key=SecretStr("secret")))
    assert p.hasher("alice") == q.hasher("alice") and p.region == "eu"
