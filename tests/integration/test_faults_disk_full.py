"""Disk full, on a small tmpfs each test mounts (and unmounts, also on failure): the TURN tailer's
checkpoint and `icewatch run`'s embedded store. Each refuses with an error that says what to free
or set, acknowledges nothing it did not keep, and takes up the work again once space returns; the
store then holds exactly what was acknowledged, counted once."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from collector.errors import Unavailable
from collector.turn.coturn import CoturnParser
from collector.turn.tailer import FileTailer, load_checkpoint
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.example_report import example_bytes
from tests.http_server import free_port
from tests.services import stop_process

ICEWATCH = [sys.executable, "-m", "collector"]


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the test's duration (needs root, as in CI)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "icewatch-test", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a {size} tmpfs at {where} (the disk-full tests need root): {mounted.stderr}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(fs: Path, leave: int = 0) -> Path:
    """A ballast file taking all but ``leave`` bytes of ``fs``; delete it to give the space back."""
    ballast = fs / "ballast"
    st = os.statvfs(fs)
    with open(ballast, "ab") as fh:
        todo = st.f_bavail * st.f_frsize - leave
        try:
            while todo > 0:
                todo -= fh.write(b"\0" * min(todo, 1 << 20))
            fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return ballast


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


def usage_line(i: int) -> str:
    return f"{i}: : session 001000000000000{i:03d}: usage: realm=<r>, username=<u>, rp={i}, rb=1, sp=1, sb=1\n"


def append(path: Path, first: int, end: int) -> None:
    with open(path, "a") as fh:
        fh.writelines(usage_line(i) for i in range(first, end))


def count(sink: ChdbSink, sql: str) -> int:
    return int(sink.query(sql)[0]["n"])


def test_tailer_checkpoint_on_a_full_disk_loses_nothing_and_recovers(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", "256k") as fs:
        sink = ChdbSink(tmp_path / "store")
        try:
            migrate(sink)
            publisher = EmbeddedPublisher(sink, RowBuilder(FactsEnv()))
            log, ckpt = tmp_path / "turn.log", fs / "turn.json"

            def tailer() -> FileTailer:
                return FileTailer(log, publisher, CoturnParser("turn-full", b"k"), ckpt, batch_lines=40)

            tail = tailer()
            append(log, 0, 100)
            assert tail.poll() == 100
            durable = load_checkpoint(ckpt)
            assert durable is not None and durable.offset == log.stat().st_size

            ballast = fill(fs)
            append(log, 100, 150)
            for _ in range(2):  # the run loop retries after retry_after; each round fails the same way
                with pytest.raises(Unavailable) as refused:
                    tail.poll()
                message = str(refused.value)
                assert str(ckpt) in message and "No space left on device" in message, message
                assert "free space" in message and "ICEWATCH_DATA_DIR" in message, message
                assert load_checkpoint(ckpt) == durable  # the old checkpoint, whole
                assert not (fs / "turn.json.tmp").exists()  # no half-written temp file holding space

            ballast.unlink()
            assert tail.poll() == 50
            done = load_checkpoint(ckpt)
            assert done is not None and done.offset == log.stat().st_size
            tail.close()
            restarted = tailer()  # a restart resumes at the checkpoint: nothing again
            assert restarted.poll() == 0
            restarted.close()

            # The batch published while its checkpoint could not be written went out twice, under
            # the same event ids: stored and counted once.
            assert count(sink, "SELECT count() AS n FROM turn_events FINAL") == 150
            assert count(sink, "SELECT count() AS n FROM turn_events") >= 150
            assert count(sink, "SELECT uniqExactMerge(lines) AS n FROM turn_server_minute") == 150
            packets = sink.query("SELECT groupArray(rx_packets) AS p FROM (SELECT rx_packets FROM turn_events FINAL "
                                 "ORDER BY rx_packets)")[0]["p"]
            assert packets == list(range(150))
        finally:
            sink.close()


def test_tailer_checkpoint_on_a_read_only_filesystem_says_so_and_recovers(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", "256k") as fs:
        sink = ChdbSink(tmp_path / "store")
        try:
            migrate(sink)
            log, ckpt = tmp_path / "turn.log", fs / "turn.json"
            tail = FileTailer(log, EmbeddedPublisher(sink, RowBuilder(FactsEnv())), CoturnParser("turn-ro", b"k"),
                              ckpt, batch_lines=40)
            append(log, 0, 30)
            assert tail.poll() == 30
            remount = ["mount", "-o", "remount,ro", str(fs)]
            subprocess.run(remount, check=True)  # e.g. the kernel after an I/O error
            append(log, 30, 60)
            with pytest.raises(Unavailable) as refused:
                tail.poll()
            message = str(refused.value)
            assert str(ckpt) in message and "Read-only file system" in message, message
            assert "make its directory writable" in message, message
            subprocess.run(["mount", "-o", "remount,rw", str(fs)], check=True)
            assert tail.poll() == 30
            tail.close()
            assert count(sink, "SELECT count() AS n FROM turn_events FINAL") == 60
            assert count(sink, "SELECT uniqExactMerge(lines) AS n FROM turn_server_minute") == 60
        finally:
            sink.close()


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/call-reports", content=body, headers={"Content-Type": "application/json"})


def test_embedded_store_on_a_full_disk_answers_503_and_keeps_every_202_and_every_turn_line(tmp_path: Path) -> None:
    fs_dir = tmp_path / "small"
    with small_filesystem(fs_dir, "48m") as fs:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
        turn_log = tmp_path / "turn.log"  # tailed by the same process; its checkpoint is on the small disk
        append(turn_log, 0, 20)
        env.update({"ICEWATCH_PORT": str(port), "ICEWATCH_DATA_DIR": str(fs / "data"),
                    "ICEWATCH_HASH_KEY": "disk-full-key",
                    "ICEWATCH_TURN_LOGS": json.dumps([{"path": str(turn_log), "server_id": "turn-full"}])})
        checkpoint = fs / "data" / "checkpoints" / "turn-turn-full-0.json"

        def tailed_to_end() -> bool:
            cp = load_checkpoint(checkpoint) if checkpoint.exists() else None
            return cp is not None and cp.offset == turn_log.stat().st_size
        run_log = tmp_path / "run.log"
        proc = subprocess.Popen([*ICEWATCH, "run"], env=env, stdout=run_log.open("wb"), stderr=subprocess.STDOUT)
        bodies = {f"full-{i:03d}": example_bytes(f"full-{i:03d}") for i in range(400)}
        accepted: list[str] = []
        refused: list[str] = []
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/healthz").status_code == 200:
                        break
                assert proc.poll() is None and time.monotonic() < deadline, run_log.read_text()[-3000:]
                time.sleep(0.2)
            wait_for(tailed_to_end, 30, "the first TURN lines")
            ids = iter(bodies)
            for call_id in [next(ids) for _ in range(10)]:
                assert _post(client, bodies[call_id]).status_code == 202
                accepted.append(call_id)

            # Leave a little room: some uploads still fit, then the store refuses (parts of a refused
            # upload may already be on disk; they are not acknowledged).
            ballast = fill(fs, leave=1536 * 1024)
            for call_id in ids:
                r = _post(client, bodies[call_id])
                if r.status_code == 202:
                    accepted.append(call_id)
                    continue
                assert r.status_code == 503, r.text
                assert int(r.headers["Retry-After"]) >= 1
                assert "out of disk space" in r.text and "ICEWATCH_DATA_DIR" in r.text, r.text
                refused.append(call_id)
                if len(refused) == 5:
                    break
            assert len(refused) == 5, "the store never filled up"
            append(turn_log, 20, 50)  # the tailer cannot store these while the disk is full
            wait_for(lambda: "publisher unavailable" in run_log.read_text(), 10, "the tailer to be refused")
            assert not tailed_to_end()
            assert client.get("/healthz").status_code == 200  # still serving while full
            assert "out of disk space" in run_log.read_text()  # the operator sees why, once

            ballast.unlink()  # space returns: the SDKs' retries of the same bodies are taken
            for call_id in refused:
                r = _post(client, bodies[call_id])
                assert r.status_code == 202, r.text
                accepted.append(call_id)
            for call_id in [next(ids) for _ in range(5)]:
                assert _post(client, bodies[call_id]).status_code == 202
                accepted.append(call_id)
            assert "takes writes again" in run_log.read_text()
            wait_for(tailed_to_end, 30, "the tailer to catch up")  # its retry comes within 5 s
            client.close()
        finally:
            stop_process(proc, grace=30)
        assert proc.returncode == 0, run_log.read_text()[-3000:]  # SIGTERM is a normal stop

        sink = ChdbSink(fs / "data" / "store")
        try:
            n = len(accepted)
            assert n == len(set(accepted)) > 15
            stored = sink.query("SELECT call_id FROM calls FINAL ORDER BY call_id")
            assert [r["call_id"] for r in stored] == sorted(accepted)
            assert count(sink, "SELECT uniqExactMerge(calls) AS n FROM call_minute") == n
            assert count(sink, "SELECT uniqExactMerge(reports) AS n FROM ingest_minute") >= n
            per_call = sink.query("SELECT call_id, count() AS n FROM call_samples FINAL GROUP BY call_id")
            assert len(per_call) == n and len({r["n"] for r in per_call}) == 1  # every call whole
            samples = sum(int(r["n"]) for r in per_call)
            rtt = count(sink, "SELECT countIf(rtt_ms IS NOT NULL) AS n FROM call_samples FINAL")
            assert count(sink, "SELECT uniqExactMerge(samples) AS n FROM rtt_band_minute") == rtt > 0
            assert samples >= rtt
            assert count(sink, "SELECT count() AS n FROM turn_events FINAL") == 50
            assert count(sink, "SELECT uniqExactMerge(lines) AS n FROM turn_server_minute") == 50
        finally:
            sink.close()
