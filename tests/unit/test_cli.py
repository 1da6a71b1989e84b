"""The `icewatch` command: help, explain on the project's own example and real captures, import via the collector."""

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


def test_import_of_many_files_reports_progress_and_a_summary(tmp_path: Path) -> None:
    """Through the real collector app (uvicorn on 127.0.0.1): every good file is published, every bad one
    is rejected and dead-lettered, stderr ends with the summary and the exit status says a file failed."""
    from collector.contract import CallReport, DeadLetter
    from collector.http_app import IngestConfig, build_app
    from tests.example_report import example_bytes
    from tests.http_server import serve
    from tests.unit.test_http_api import RecordingPublisher

    good = [tmp_path / f"call-{i:02}.json" for i in range(12)]
    for i, path in enumerate(good):
        path.write_bytes(example_bytes(f"import-{i:02}"))
    bad = [tmp_path / "empty-dump.json", tmp_path / "not-json.json"]
    bad[0].write_text('{"PeerConnections": {}}')
    bad[1].write_bytes(b"\xff\xfe not json")
    pub = RecordingPublisher()
    app = build_app(pub, IngestConfig(api_keys={}, max_body_bytes=1_000_000, hash_key=b"k"))
    with serve(app) as base:
        result = CliRunner().invoke(main, ["import", "--url", base, *map(str, [*good[:6], *bad, *good[6:]])])
        only_good = CliRunner().invoke(main, ["import", "--url", base, str(good[0])])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [f"{p}: accepted 1 report(s)" for p in good]
    errors = result.stderr.splitlines()
    assert [line.split(":")[0] for line in errors[:-1]] == [str(p) for p in bad]
    assert errors[-1] == "import: 14/14 files, 12 reports accepted, 2 rejected"
    reports = sorted(p.call_id for p in pub.published if isinstance(p, CallReport))
    assert reports == sorted([f"import-{i:02}" for i in range(12)] + ["import-00"])
    assert len([p for p in pub.published if isinstance(p, DeadLetter)]) == 2
    assert only_good.exit_code == 0 and only_good.stderr == "import: 1/1 files, 1 report accepted, 0 rejected\n"


def test_import_says_when_the_collector_is_unreachable(tmp_path: Path) -> None:
    from tests.example_report import example_bytes
    from tests.http_server import free_port

    path = tmp_path / "call.json"
    path.write_bytes(example_bytes("unreachable"))
    base = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["import", "--url", base, str(path), str(path)])
    assert result.exit_code == 1
    assert f"import: 0/2 files, 0 reports accepted, 0 rejected; stopped: cannot reach the collector at {base}" \
        in result.stderr
    assert f"cannot reach the collector at {base}" in result.stderr.splitlines()[-1]
