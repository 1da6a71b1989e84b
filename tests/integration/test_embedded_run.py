"""`icewatch run` on the embedded store, as the README's quick start does it: the documented
example report is posted over HTTP and `icewatch query` shows it."""

# ruff: noqa: E501 - real coturn lines are long
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.example_report import EXAMPLE_BODY
from tests.http_server import free_port

REPO = Path(__file__).resolve().parents[2]
ICEWATCH = [sys.executable, "-m", "collector"]


# coturn 4.6.1 lines (the format Debian's coturn writes with --simple-log)
TURN_LOG = """0: : Listener address to use: 198.18.0.1
0: : Relay address to use: 198.18.0.1
1: : session 001000000000000001: realm <testbed.icewatch> user <>: incoming packet message processed, error 401: Unauthorized
1: : IPv4. Local relay addr: 198.18.0.1:62182
1: : session 001000000000000001: new, realm=<testbed.icewatch>, username=<icewatch>, lifetime=600
1: : session 001000000000000001: realm <testbed.icewatch> user <icewatch>: incoming packet ALLOCATE processed, success
1: : session 001000000000000001: peer 198.18.0.1 lifetime updated: 300
1: : session 001000000000000001: realm <testbed.icewatch> user <icewatch>: incoming packet CREATE_PERMISSION processed, success
"""


@pytest.fixture()
def embedded(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("ICEWATCH_"):
            del env[k]
    turn_log = tmp_path / "turn.log"
    turn_log.write_text(TURN_LOG)
    env.update({"ICEWATCH_PORT": str(port), "ICEWATCH_DATA_DIR": str(tmp_path / "data"),
                "ICEWATCH_HASH_KEY": "test-key",
                "ICEWATCH_TURN_LOGS": json.dumps([{"path": str(turn_log), "server_id": "turn-eu-1", "region": "eu"}])})
    log = tmp_path / "run.log"
    proc = subprocess.Popen([*ICEWATCH, "run"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"icewatch run did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    yield base, env
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"icewatch run did not stop on SIGTERM within 30 s:\n{log.read_text()[-3000:]}")
    # SIGTERM is a normal stop: the cleanup after the server ran (uvicorn used to re-raise the
    # signal and kill the process before it)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "icewatch run stopped: evaluator, publisher and store closed" in log.read_text()


def post(base: str, body: bytes) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(f"{base}/v1/call-reports", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_quick_start_example_appears_in_query(embedded: tuple[str, dict[str, str]]) -> None:
    base, env = embedded
    status, body = post(base, EXAMPLE_BODY)
    assert status == 202, body
    assert body["call_ids"] == ["example-call-0001"]
    # a retried upload is harmless
    assert post(base, EXAMPLE_BODY)[0] == 202

    out = subprocess.run([*ICEWATCH, "query", "relay-usage", "--since", "52w", "--format", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows == [{"region": rows[0]["region"], "turn-region": rows[0]["turn-region"], "protocol": "udp",
                     "calls": 1, "relayed": 1, "relayed_share": 1}]

    table = subprocess.run([*ICEWATCH, "query", "path-mix", "--since", "52w"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "relay-udp" in table.stdout

    bad = post(base, b'{"format": "w3c", "call_id": 7, "snapshots": []}')
    assert bad[0] == 422 and "call_id" in str(bad[1].get("path"))


def test_run_tails_the_configured_turn_log(embedded: tuple[str, dict[str, str]]) -> None:
    _, env = embedded
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run([*ICEWATCH, "query", "turn-servers", "--since", "1d", "--format", "json"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        if rows:
            break
        assert time.monotonic() < deadline, "the TURN log never reached the store"
        time.sleep(0.5)
    assert len(rows) == 1
    row = rows[0]
    assert (row["turn-server"], row["allocations_ok"], row["auth_rejected"]) == ("turn-eu-1", 1, 0)
    assert row["log_lines"] == len(TURN_LOG.splitlines())


def test_import_sends_files_through_the_collector(embedded: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = embedded
    bad = tmp_path / "bad.json"
    bad.write_text('{"PeerConnections": {}}')
    example = tmp_path / "example.json"
    example.write_bytes(EXAMPLE_BODY)
    ok = subprocess.run([*ICEWATCH, "import", "--url", base, str(example)], env=env, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0 and "accepted 1 report(s)" in ok.stdout, ok.stderr
    rejected = subprocess.run([*ICEWATCH, "import", "--url", base, str(bad)], env=env, capture_output=True,
                              text=True, timeout=60)
    assert rejected.returncode == 1 and "422" in rejected.stderr and "peer connection" in rejected.stderr.lower()
