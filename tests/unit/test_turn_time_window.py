# ruff: noqa: E501 - real-shaped coturn and syslog lines are long
"""TURN lines stamped outside what turn_events keeps (collector/retention.py: 29 days back, 1 day
ahead) are dead letters naming the time and the limit, not events the store would drop on insert
without a trace: through the tailer into the embedded store (what turn_events, dead_letters and
turn_sessions hold), through the tailer's row path, and through the syslog receiver over UDP.
Times are relative to the real clock."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.contract import DeadLetter, Model, TurnEvent
from collector.errors import BrokerUnavailable
from collector.turn.coturn import CoturnParser
from collector.turn.syslog_server import SyslogServer
from collector.turn.tailer import FileTailer, load_checkpoint
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from tests.unit.test_turn_tailer_rows import Objects, Rows


def coturn_line(at: datetime, n: int, user: str = "alice") -> str:
    """A coturn line with its own time (the E2 timestamp prefix, new-log-timestamp)."""
    return (f"{at:%Y-%m-%dT%H:%M:%S}+0000: session 00100000000000000{n}: usage: realm=<r>, "
            f"username=<{user}>, rp={n}, rb=2, sp=3, sb=4\n")


def mixed_log(now: datetime) -> tuple[str, list[int], list[datetime]]:
    """Current, 40 days old, current, 3 days ahead, 29 days old less a minute (still kept): the
    log, the numbers of the lines that must become events, the times that must be refused."""
    old, ahead = now - timedelta(days=40), now + timedelta(days=3)
    lines = [
        coturn_line(now - timedelta(minutes=5), 1),
        coturn_line(old, 2),
        coturn_line(now - timedelta(minutes=4), 3),
        coturn_line(ahead, 4),
        coturn_line(now - timedelta(days=29) + timedelta(minutes=1), 5),
    ]
    return "".join(lines), [1, 3, 5], [old.replace(microsecond=0), ahead.replace(microsecond=0)]


def test_tailer_stores_current_lines_and_dead_letters_old_and_future_ones(tmp_path: Path, store: ChdbSink) -> None:
    now = datetime.now(UTC)
    text, kept, refused = mixed_log(now)
    log = tmp_path / "turn.log"
    log.write_text(text)
    pub = EmbeddedPublisher(store, RowBuilder(FactsEnv()))
    tailer = FileTailer(log, pub, CoturnParser("turn-w", b"k"), tmp_path / "cp.json")
    try:
        assert tailer.poll() == 5
    finally:
        tailer.close()
    events = store.query("SELECT rx_packets, at FROM turn_events FINAL WHERE server_id = 'turn-w' ORDER BY rx_packets")
    assert [e["rx_packets"] for e in events] == kept
    # nor do the refused lines reach the rollups the materialized views fill (kept 400 days)
    sessions = store.query("SELECT DISTINCT session_id FROM turn_sessions ORDER BY session_id")
    assert [s["session_id"] for s in sessions] == [f"00100000000000000{n}" for n in kept]
    letters = store.query("SELECT stage, intended, reason, path, raw, origin FROM dead_letters ORDER BY origin")
    assert len(letters) == 2 and {(d["stage"], d["intended"], d["path"]) for d in letters} == {("tailer", "turn_event", "at")}
    by_time = {t: next(d for d in letters if t.isoformat() in d["reason"]) for t in refused}
    old, ahead = (by_time[t] for t in refused)
    assert "more than 29 days before" in old["reason"] and "turn_events keeps 30 days" in old["reason"]
    assert "more than 1 day after" in ahead["reason"]
    assert "rp=2," in old["raw"] and "rp=4," in ahead["raw"]
    assert all("alice" not in d["raw"] and "username=<h:" in d["raw"] for d in letters)  # user names hashed
    cp = load_checkpoint(tmp_path / "cp.json")
    assert cp is not None and cp.offset == len(text.encode())
    assert tailer.published == 5 and tailer.dead_letters == 2


def test_row_path_publishes_rows_for_current_lines_and_dead_letters_for_the_others(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    text, kept, refused = mixed_log(now)
    log = tmp_path / "turn.log"
    log.write_text(text)
    rows, objects = Rows(), Objects()
    for name, pub in (("rows", rows), ("objects", objects)):
        tailer = FileTailer(log, pub, CoturnParser("turn-w", b"k"), tmp_path / f"{name}.json", clock=lambda: now)
        tailer.poll()
        tailer.close()
    for pub in (rows, objects):
        payloads = [p for b in pub.batches for p in b]
        assert [e.rx_packets for e in payloads if isinstance(e, TurnEvent)] == kept
        letters = [d for d in payloads if isinstance(d, DeadLetter)]
        assert [d.path for d in letters] == ["at", "at"]
        assert [next(t for t in refused if t.isoformat() in d.reason) for d in letters] == refused
    assert rows.row_calls == 1
    assert [d.reason for b in rows.batches for d in b if isinstance(d, DeadLetter)] == \
        [d.reason for b in objects.batches for d in b if isinstance(d, DeadLetter)]


def test_checkpoint_advances_only_once_the_dead_letters_are_acknowledged(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    text = coturn_line(now - timedelta(days=45), 1) + coturn_line(now - timedelta(days=31), 2)
    log = tmp_path / "turn.log"
    log.write_text(text)
    failing = Failing(fail_next=1)
    tailer = FileTailer(log, failing, CoturnParser("turn-w", b"k"), tmp_path / "cp.json", clock=lambda: now)
    with pytest.raises(BrokerUnavailable):
        tailer.poll()
    cp = load_checkpoint(tmp_path / "cp.json")
    assert cp is not None and cp.offset == 0 and failing.published == []
    assert tailer.poll() == 2
    tailer.close()
    assert [type(p) for p in failing.published] == [DeadLetter, DeadLetter]
    cp = load_checkpoint(tmp_path / "cp.json")
    assert cp is not None and cp.offset == len(text.encode())


class Failing:
    """Refuses the first ``fail_next`` publish calls (a broker down), records the others."""

    def __init__(self, fail_next: int) -> None:
        self.fail_next = fail_next
        self.published: list[Model] = []

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerUnavailable("broker down", retry_after=0.01)
        self.published.extend(payloads)

    def close(self) -> None:
        pass


def test_syslog_dead_letters_a_message_stamped_outside_the_window() -> None:
    pub = Failing(fail_next=0)
    srv = SyslogServer(pub, lambda sender: CoturnParser(f"srv-{sender}", b"k"), flush_interval=0.05, tcp_port=None)
    srv.start()
    now = datetime.now(UTC)
    old = (now - timedelta(days=35)).replace(microsecond=0)
    ahead = (now + timedelta(days=2)).replace(microsecond=0)
    usage = "session 001000000000001750: usage: realm=<r>, username=<bob>, rp={n}, rb=2, sp=3, sb=4"
    msgs = [
        f"<14>1 {t:%Y-%m-%dT%H:%M:%S}Z turn-a turnserver 1304 - - 245{n}: {usage.format(n=n)}"
        for n, t in ((1, now - timedelta(minutes=1)), (2, old), (3, ahead))
    ]
    # RFC 3164 has no year: the receiver takes the receive time's (or the one before): 35 days back
    msgs.append(f"<14>{old:%b} {old.day:2d} {old:%H:%M:%S} turn-a turnserver[1304]: 2454: {usage.format(n=4)}")
    try:
        assert srv.udp_address is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for m in msgs:
                s.sendto(m.encode(), srv.udp_address)
        deadline = time.monotonic() + 5
        while len(pub.published) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        srv.stop()
    assert [e.rx_packets for e in pub.published if isinstance(e, TurnEvent)] == [1]
    letters = [d for d in pub.published if isinstance(d, DeadLetter)]
    assert [(d.stage, d.path) for d in letters] == [("syslog", "at")] * 3
    assert old.isoformat() in letters[0].reason and "turn_events keeps 30 days" in letters[0].reason
    assert ahead.isoformat() in letters[1].reason and "after" in letters[1].reason
    assert old.isoformat() in letters[2].reason and "rp=4," in letters[2].raw
    assert all("bob" not in d.raw and "username=<h:" in d.raw for d in letters)
