"""The `icewatch` command: help, explain on the project's own example and on real captures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli_root import main

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
EXPLAIN_KEYS = {"call_id", "path_class", "local_candidate_type", "remote_candidate_type", "relay_protocol",
                "turn_url", "ice_failed", "dtls_stall", "rtt_median_ms", "rtt_band", "diagnosis", "labels"}


@pytest.mark.parametrize("args", [[], ["run"], ["processor"], ["query"], ["explain"], ["import"], ["migrate"],
                                  ["turn"], ["probe"], ["collector"]])
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_explain_json_on_the_example() -> None:
    result = CliRunner().invoke(main, ["explain", "--json", str(REPO / "docs/examples/w3c-call.json")])
    assert result.exit_code == 0, result.output
    [facts] = json.loads(result.output)
    assert set(facts) >= EXPLAIN_KEYS
    assert (facts["path_class"], facts["relay_protocol"], facts["rtt_band"]) == ("relay-udp", "udp", "excellent")


def test_explain_real_captures() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    result = CliRunner().invoke(main, ["explain", "--json", str(CORPUS / "rtcstats" / "chrome-relay"),
                                       str(CORPUS / "rtcstats" / "undefined-ice-candidate")])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    relay = [r for r in rows if r["file"].endswith("chrome-relay") and r["path_class"]]
    assert relay and relay[0]["path_class"] == "relay-tls" and 20 <= relay[0]["rtt_median_ms"] <= 32
    stall = [r for r in rows if r["file"].endswith("undefined-ice-candidate") and r["dtls_stall"]]
    assert stall and stall[0]["diagnosis"] == "dtls_stall"


def test_explain_rejects_an_empty_dump_with_a_clear_message() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    result = CliRunner().invoke(main, ["explain", str(CORPUS / "webrtc-internals" / "empty-dump.txt")])
    assert result.exit_code == 1
    assert "no peer connections" in result.output.lower()


def test_query_lists_named_queries() -> None:
    result = CliRunner().invoke(main, ["query", "--list"])
    assert result.exit_code == 0 and "relay-usage" in result.output
