"""The tailer killed with SIGKILL at arbitrary moments while the log grows and rotates, then
restarted from its checkpoint: every line arrives, and lines delivered twice carry the same
event id (so ClickHouse's ReplacingMergeTree keeps one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from collector.contract import stable_id

CHILD = """
import json, os, sys, time
from collector.contract import TurnEvent
from collector.turn.coturn import CoturnParser
from collector.turn.tailer import FileTailer

class FilePublisher:
    '''Acknowledges only once the payloads are on disk (like Kafka acks=all). A write torn by the
    kill was never acknowledged: it is ended with a newline at the next start, so it stands alone
    (and is not read as delivered) instead of running into the next line.'''
    def __init__(self, path):
        self.fh = open(path, "a")
        if self.fh.tell() > 0:
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\\n":
                    self.fh.write("\\n")
    def publish(self, payloads, tenant="default"):
        for p in payloads:
            if isinstance(p, TurnEvent):
                self.fh.write(json.dumps({"id": p.event_id, "raw": p.raw}) + "\\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())
    def close(self):
        self.fh.close()

log, ckpt, out = sys.argv[1:4]
t = FileTailer(log, FilePublisher(out), CoturnParser("kill-test", b"k"), ckpt, batch_lines=7)
while True:
    t.poll()
    time.sleep(0.002)
"""


def line(i: int) -> str:
    return f"{i}: : session 001000000000000001: usage: realm=<r>, username=<u>, rp={i}, rb=1, sp=1, sb=1\n"


def delivered(text: str) -> list[dict[str, str]]:
    """The complete lines of the publisher's file: a line torn by a kill (never acknowledged), or
    the one being written while this reads, is not a delivery."""
    out = []
    for x in text.splitlines():
        try:
            out.append(json.loads(x))
        except ValueError:
            continue
    return out


def count_out(tmp: Path) -> int:
    out = tmp / "out.jsonl"
    return out.read_text().count("\n") if out.exists() else 0


def wait_for_output(tmp: Path, lines: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count_out(tmp) < lines and time.monotonic() < deadline:
        time.sleep(0.005)


def start(tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp / "turn.log"), str(tmp / "turn.ckpt"), str(tmp / "out.jsonl")],
        cwd=Path(__file__).resolve().parents[2],
    )


def test_sigkill_and_restart_lose_nothing_and_repeat_only_same_ids(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    expected: dict[str, str] = {}  # event id -> line
    proc = start(tmp_path)
    try:
        n = 0
        for round_ in range(6):
            for _ in range(150):
                n += 1
                st_before = log.stat() if log.exists() else None
                with open(log, "a") as fh:
                    fh.write(line(n))
                st = log.stat()
                offset = st_before.st_size if st_before is not None and st_before.st_ino == st.st_ino else 0
                expected[stable_id("kill-test", f"{st.st_dev}:{st.st_ino}:0", offset)] = line(n).rstrip("\n")
            # let it start and publish part of the round (interpreter start-up is slow), then kill
            wait_for_output(tmp_path, n - 150 + 20 * round_ + 1, 30)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            if round_ == 2:  # rotate by rename while the tailer is down
                os.rename(log, tmp_path / "turn.log.1")
            proc = start(tmp_path)
        deadline = time.monotonic() + 30
        got: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            out = tmp_path / "out.jsonl"
            got = delivered(out.read_text()) if out.exists() else []
            if {g["id"] for g in got} >= set(expected):
                break
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    ids = {g["id"] for g in got}
    assert ids == set(expected)  # nothing lost, nothing invented
    for g in got:  # a repeat is the same line under the same id
        assert expected[g["id"]].startswith(g["raw"][:20])
    assert len(got) >= len(expected)
