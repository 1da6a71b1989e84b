"""File tailer: rotation by rename and by copy-truncate, truncation, restarts from the checkpoint,
partial lines, an unavailable publisher, and exactly-once delivery by event id."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from collector.contract import DeadLetter, Model, TurnEvent
from collector.errors import BrokerUnavailable
from collector.turn.coturn import CoturnParser
from collector.turn.tailer import FileTailer, load_checkpoint


class RecordingPublisher:
    """Test double of Publisher: records what it acknowledged; can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[Model]] = []
        self.fail_next = 0
        self.crash_after_ack = False

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerUnavailable("broker down", retry_after=0.01)
        self.batches.append(list(payloads))
        if self.crash_after_ack:  # acknowledged, then the process dies before its checkpoint
            raise SystemExit("killed")

    def close(self) -> None:
        pass

    @property
    def events(self) -> list[TurnEvent]:
        return [p for b in self.batches for p in b if isinstance(p, TurnEvent)]


def line(i: int) -> str:
    return f"{i}: : session 001000000000000001: usage: realm=<r>, username=<u{i}>, rp={i}, rb=1, sp=1, sb=1\n"


def uptimes(pub: RecordingPublisher) -> list[int]:
    return [e.uptime_s for e in pub.events if e.uptime_s is not None]


def make(tmp: Path, pub: RecordingPublisher, **kw: object) -> FileTailer:
    return FileTailer(tmp / "turn.log", pub, CoturnParser("s1", b"k"), tmp / "turn.ckpt", **kw)  # type: ignore[arg-type]


def append(p: Path, text: str) -> None:
    with open(p, "a") as fh:
        fh.write(text)


def test_follows_appends_and_checkpoints(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1) + line(2))
    t = make(tmp_path, pub)
    assert t.poll() == 2
    append(log, line(3))
    assert t.poll() == 1
    assert t.poll() == 0
    assert uptimes(pub) == [1, 2, 3]
    cp = load_checkpoint(tmp_path / "turn.ckpt")
    assert cp is not None and cp.offset == log.stat().st_size and cp.ino == log.stat().st_ino


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    full = line(7)
    append(log, line(6) + full[:30])
    t = make(tmp_path, pub)
    t.poll()
    assert uptimes(pub) == [6]
    append(log, full[30:])
    t.poll()
    assert uptimes(pub) == [6, 7]
    assert pub.events[-1].raw.endswith("sb=1")
    assert pub.events[-1].rx_packets == 7


def test_rotation_by_rename(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1))
    t = make(tmp_path, pub)
    t.poll()
    os.rename(log, tmp_path / "turn.log.1")
    append(tmp_path / "turn.log.1", line(2) + line(3)[:20])  # the writer has not reopened yet
    append(log, line(4))  # new file
    t.poll()
    t.poll()  # old file quiet for one poll: switch
    append(log, line(5))
    t.poll()
    assert uptimes(pub) == [1, 2, 3, 4, 5]
    assert len({e.event_id for e in pub.events}) == 5
    # the unterminated tail of the rotated file was published as that file's last line
    assert pub.events[2].raw == line(3)[:20]


def test_rotation_by_copy_truncate(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1) + line(2))
    t = make(tmp_path, pub)
    t.poll()
    shutil.copy(log, tmp_path / "turn.log.1")
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, line(3))
    t.poll()
    assert uptimes(pub) == [1, 2, 3]
    ids = [e.event_id for e in pub.events]
    assert len(set(ids)) == 3  # line 3 sits at offset 0 like line 1, in a new generation
    cp = load_checkpoint(tmp_path / "turn.ckpt")
    assert cp is not None and cp.generation == 1


def test_truncated_and_rewritten_past_the_old_position(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1))
    t = make(tmp_path, pub)
    t.poll()
    with open(log, "w") as fh:  # truncate, then more than before is written before the next poll
        fh.write(line(20) + line(21) + line(22))
    t.poll()
    assert uptimes(pub) == [1, 20, 21, 22]


def test_restart_from_checkpoint_neither_skips_nor_repeats(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, "0: : log file opened: x\n0: : Coturn Version 4.6.1\n" + line(1))
    t = make(tmp_path, pub)
    t.poll()
    t.close()
    append(log, line(2))
    t2 = make(tmp_path, pub)  # a new process: state comes from the checkpoint
    t2.poll()
    assert uptimes(pub) == [0, 0, 1, 2]
    assert len({e.process_key for e in pub.events}) == 1


def test_restart_after_the_file_was_rotated_while_down(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1))
    t = make(tmp_path, pub)
    t.poll()
    t.close()
    append(log, line(2))
    os.rename(log, tmp_path / "turn.log.1")
    append(log, line(3))
    t2 = make(tmp_path, pub)
    for _ in range(3):
        t2.poll()
    assert uptimes(pub) == [1, 2, 3]


def test_crash_between_ack_and_checkpoint_replays_with_the_same_event_ids(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1) + line(2))
    t = make(tmp_path, pub)
    t.poll()
    append(log, line(3) + line(4))
    pub.crash_after_ack = True
    with pytest.raises(SystemExit):
        t.poll()
    pub.crash_after_ack = False
    t2 = make(tmp_path, pub)
    t2.poll()
    ids = [e.event_id for e in pub.events]
    assert uptimes(pub) == [1, 2, 3, 4, 3, 4]  # at least once ...
    assert len(set(ids)) == 4  # ... and exactly once by event id
    assert ids[2:4] == ids[4:6]


def test_unavailable_publisher_leaves_the_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1))
    t = make(tmp_path, pub)
    t.poll()
    before = load_checkpoint(tmp_path / "turn.ckpt")
    append(
        log,
        line(2) + "0: : session 001000000000000001: realm <r> user <u>: incoming packet ALLOCATE "
        "processed, error 508: Cannot create socket\n",
    )
    pub.fail_next = 1
    with pytest.raises(BrokerUnavailable):
        t.poll()
    assert load_checkpoint(tmp_path / "turn.ckpt") == before
    append(
        log,
        "0: : session 001000000000000001: realm <r> user <u>: incoming packet message processed, "
        "error 508: Cannot create socket\n",
    )
    t.poll()
    kinds = [e.kind for e in pub.events]
    assert uptimes(pub)[:2] == [1, 2]
    assert kinds[-2:] == ["request", "request_message"]  # parser state was rolled back too
    clean = RecordingPublisher()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(log, fresh / "turn.log")
    make(fresh, clean).poll()
    assert [e.raw for e in clean.events] == [e.raw for e in pub.events]


def test_unparseable_lines_go_out_as_dead_letters_in_the_same_publish(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    append(log, line(1) + "[info] something else entirely user <alice>\n" + line(2))
    t = make(tmp_path, pub)
    t.poll()
    assert len(pub.batches) == 1
    dls = [p for p in pub.batches[0] if isinstance(p, DeadLetter)]
    assert len(dls) == 1 and dls[0].stage == "tailer" and "alice" not in dls[0].raw
    assert t.dead_letters == 1


def test_missing_file_then_created(tmp_path: Path) -> None:
    pub = RecordingPublisher()
    t = make(tmp_path, pub)
    assert t.poll() == 0
    append(tmp_path / "turn.log", line(1))
    assert t.poll() == 1


def test_run_loop_waits_out_an_unavailable_publisher(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    pub = RecordingPublisher()
    pub.fail_next = 3
    append(log, line(1) + line(2))
    t = make(tmp_path, pub)
    assert run_then_append_third(t, pub, log)
    assert uptimes(pub) == [1, 2, 3] and pub.fail_next == 0


def run_then_append_third(t: FileTailer, pub: RecordingPublisher, log: Path) -> bool:
    """Run the tailer's loop on a thread until lines 1-2 arrive, append line 3 and wait for it;
    whether the thread was still running at the end."""
    stop = threading.Event()
    th = threading.Thread(target=t.run, args=(stop, 0.01))
    th.start()
    try:
        deadline = time.monotonic() + 10
        while len(pub.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        append(log, line(3))
        while len(pub.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        return th.is_alive()
    finally:
        stop.set()
        th.join(5)


def test_glob_pattern_follows_coturns_dated_file_names(tmp_path: Path) -> None:
    pub = RecordingPublisher()
    day1 = tmp_path / "turn_4242_2026-11-22.log"
    day2 = tmp_path / "turn_4242_2026-11-23.log"
    append(day1, line(1))
    t = FileTailer(tmp_path / "turn_*.log", pub, CoturnParser("s1", b"k"), tmp_path / "turn.ckpt")
    t.poll()
    append(day1, line(2))
    append(day2, line(3))
    os.utime(day1, ns=(1, 1))  # day2 is the newest file
    t.poll()
    t.poll()
    append(day2, line(4))
    os.utime(day1, None)  # a late touch of the old file does not send the tailer back to it
    t.poll()
    assert uptimes(pub) == [1, 2, 3, 4]
    t.close()
    append(day2, line(5))
    t2 = FileTailer(tmp_path / "turn_*.log", pub, CoturnParser("s1", b"k"), tmp_path / "turn.ckpt")
    for _ in range(3):
        t2.poll()
    assert uptimes(pub) == [1, 2, 3, 4, 5]  # the newer mtime of day 1 does not make it read again


def test_run_loop_survives_an_error_other_than_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store refusing a batch (any error but Unavailable) used to end the tailer's thread for good:
    now it is counted, retried from the checkpoint, and every line arrives once."""
    import collector.turn.tailer as tailer_module

    monkeypatch.setattr(tailer_module, "ERROR_RETRY_S", 0.01)

    class RefusingOnce(RecordingPublisher):
        refused = 0

        def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
            if not self.refused:
                self.refused += 1
                raise RuntimeError("store refused the batch")
            super().publish(payloads, tenant)

    log = tmp_path / "turn.log"
    pub = RefusingOnce()
    append(log, line(1) + line(2))
    t = make(tmp_path, pub)
    assert run_then_append_third(t, pub, log)
    assert uptimes(pub) == [1, 2, 3] and t.errors == 1 and pub.refused == 1
    assert load_checkpoint(tmp_path / "turn.ckpt") is not None
