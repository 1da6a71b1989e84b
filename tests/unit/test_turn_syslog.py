# ruff: noqa: E501 - real-shaped syslog lines are long
"""Syslog receiver over real sockets on 127.0.0.1: UDP, TCP octet-counted and newline framing,
dead letters for lines that are not coturn's, retry while the publisher is unavailable."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from collector.contract import DeadLetter, Model, TurnEvent
from collector.errors import BrokerUnavailable
from collector.turn import syslog_server
from collector.turn.coturn import CoturnParser, UnknownLine
from collector.turn.syslog_server import SyslogServer, split_frames

L1 = "<14>May 18 06:37:28 turn-a turnserver[1304]: 245431: session 001000000000001750: usage: realm=<r>, username=<u>, rp=1, rb=2, sp=3, sb=4"
L2 = "<14>1 2026-05-18T06:37:29Z turn-a turnserver 1304 - - 245432: session 001000000000001750: delete: realm=<r>, username=<u>"
# When the servers below receive them: the lines' own times lie within what turn_events keeps, so
# they become events (older ones are dead letters: tests/unit/test_turn_time_window.py).
RECEIVED = datetime(2026, 5, 18, 6, 40, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.items: list[Model] = []
        self.fail_next = 0
        self.lock = threading.Lock()

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerUnavailable("down", retry_after=0.05)
        with self.lock:
            self.items.extend(payloads)

    def close(self) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[tuple[SyslogServer, Recorder]]:
    rec = Recorder()
    srv = SyslogServer(rec, lambda sender: CoturnParser(f"srv-{sender}", b"k"), flush_interval=0.05,
                       clock=lambda: RECEIVED)
    srv.start()
    yield srv, rec
    srv.stop()


def wait_for(rec: Recorder, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(rec.items) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_listens_on_loopback_only(server: tuple[SyslogServer, Recorder]) -> None:
    srv, _ = server
    assert srv.udp_address is not None and srv.udp_address[0] == "127.0.0.1"
    assert srv.tcp_address is not None and srv.tcp_address[0] == "127.0.0.1"


def test_udp(server: tuple[SyslogServer, Recorder]) -> None:
    srv, rec = server
    assert srv.udp_address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(L1.encode(), srv.udp_address)
        s.sendto(L2.encode(), srv.udp_address)
    wait_for(rec, 2)
    evs = [i for i in rec.items if isinstance(i, TurnEvent)]
    assert [e.kind for e in evs] == ["usage", "allocation"]
    assert {e.server_id for e in evs} == {"srv-turn-a"}
    assert evs[0].process_key == evs[1].process_key == "syslog:turn-a:1304@0"  # the sender's process
    assert len({e.event_id for e in evs}) == 2


def test_tcp_octet_counted_and_newline_framing(server: tuple[SyslogServer, Recorder]) -> None:
    srv, rec = server
    assert srv.tcp_address is not None
    m1, m2 = L1.encode(), L2.encode()
    payload = f"{len(m1)} ".encode() + m1 + m2 + b"\n" + b"[info] not coturn at all\n"
    with socket.create_connection(srv.tcp_address) as s:
        s.sendall(payload[:17])  # frames split across reads
        time.sleep(0.05)
        s.sendall(payload[17:])
    wait_for(rec, 3)
    kinds = [i.kind if isinstance(i, TurnEvent) else "dead" for i in rec.items]
    assert kinds == ["usage", "allocation", "dead"]
    dl = rec.items[2]
    assert isinstance(dl, DeadLetter) and dl.stage == "syslog"


def test_publisher_unavailable_is_retried(server: tuple[SyslogServer, Recorder]) -> None:
    srv, rec = server
    rec.fail_next = 2
    assert srv.udp_address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(L1.encode(), srv.udp_address)
    wait_for(rec, 1)
    assert srv.flush()
    assert len(rec.items) == 1 and rec.fail_next == 0


def test_split_frames() -> None:
    msgs, used = split_frames(b"5 hello3 abcxyz\npartial")
    assert msgs == [b"hello", b"abc", b"xyz"] and used == len(b"5 hello3 abcxyz\n")
    msgs, used = split_frames(b"10 short")
    assert msgs == [] and used == 0


class BrokenOnBoom(CoturnParser):
    """A parser with a bug: it raises on lines holding "BOOM" (as unwrap did on Feb 29 dates)."""

    def parse(self, line: str, **kw: Any) -> TurnEvent | UnknownLine | None:
        if "BOOM" in line:
            raise RuntimeError(f"bug in the parser at {line[-30:]!r}")  # quoting the line, as int() does
        return super().parse(line, **kw)


def test_a_message_the_parser_fails_on_is_dead_lettered_and_the_reader_goes_on() -> None:
    rec = Recorder()
    srv = SyslogServer(rec, lambda sender: BrokenOnBoom(f"srv-{sender}", b"k"), flush_interval=0.05,
                       clock=lambda: RECEIVED)
    srv.start()
    try:
        assert srv.udp_address is not None and srv.tcp_address is not None
        boom = "<14>May 18 06:37:27 turn-a turnserver[1304]: 1: session 1: BOOM user <alice> refused"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(boom.encode(), srv.udp_address)
            s.sendto(L1.encode(), srv.udp_address)  # the UDP reader is still there
        with socket.create_connection(srv.tcp_address) as c:
            c.sendall((boom + "\n" + L2 + "\n").encode())  # and the TCP connection too
        wait_for(rec, 4)
    finally:
        srv.stop()
    letters = [i for i in rec.items if isinstance(i, DeadLetter)]
    assert len(letters) == 2
    assert all(d.reason.startswith("the parser failed: RuntimeError: bug in the parser at '")
               and "BOOM user <h:" in d.reason for d in letters)
    assert all("alice" not in d.raw + d.reason and "BOOM user <" in d.raw for d in letters)  # user names hashed
    assert sorted(e.kind for e in rec.items if isinstance(e, TurnEvent)) == ["allocation", "usage"]


def test_parsers_per_sender_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sender names and pids come from unauthenticated headers: a client making up a new one per
    message keeps at most MAX_SENDERS parsers; the least recently heard goes first."""
    monkeypatch.setattr(syslog_server, "MAX_SENDERS", 3)
    rec = Recorder()
    srv = SyslogServer(rec, lambda sender: CoturnParser(f"srv-{sender}", b"k"), udp_port=None, tcp_port=None,
                       flush_interval=0.05)
    for host in ("turn-a", "h1", "h2", "turn-a", "h3", "h4"):
        srv.handle_message(L1.replace("turn-a", host), "127.0.0.1")
    assert list(srv._parsers) == [("turn-a", "1304"), ("h3", "1304"), ("h4", "1304")]  # turn-a heard again
    assert srv.received == 6 and srv.queued == 6
