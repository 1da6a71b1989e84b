"""Numbers in hostile TURN log lines: digits that are not ASCII, counters thousands of digits
long, epoch times past the year 9999, byte counts past 64 bits. The parser never raises on them
(a raise stopped the tailer on that line for good), and every event it makes fits the columns
of ``turn_events`` and the batch message (orjson refuses integers past 64 bits, and one value out
of a column's range would make the store refuse a whole batch of lines)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.contract import DeadLetter, Model, TurnEvent
from collector.turn.batch_wire import encode_turn_batches
from collector.turn.coturn import CoturnParser, UnknownLine
from collector.turn.tailer import FileTailer
from collector.wire import decode

S = "session 001000000000000001: "
HOSTILE = [
    "²: : a superscript two is a digit to str.isdigit, not to int()",
    "1²: : x",
    "99999999999999: : epoch seconds in the year 3 million",
    "9" * 5000 + ": : a counter past int()'s 4300 digits",
    "9" * 5000 + " INFO an E4 counter past int()'s limit",
    "__REALTIME_TIMESTAMP=99999999999999999999999",
    "__REALTIME_TIMESTAMP=²",
    '{"MESSAGE": "1: : x", "__REALTIME_TIMESTAMP": "99999999999999999999"}',
    '{"MESSAGE": "1: : x", "__REALTIME_TIMESTAMP": "' + "9" * 5000 + '"}',
    f"5: : {S}usage: realm=<r>, username=<u>, rp=99999999999999999999999, rb=1, sp=1, sb=1",
    f"5: : {S}peer usage: realm=<r>, username=<u>, rp=1, rb=1, sp=1, sb=" + "9" * 5000,
    f"5: : {S}realm <r> user <u>: incoming packet ALLOCATE processed, error 99999: x",
    f"5: : {S}realm <r> user <u>: incoming packet ALLOCATE processed, error " + "4" * 5000,
    f"5: : {S}new, realm=<r>, username=<u>, lifetime=99999999999",
    f"5: : {S}new, realm=<r>, username=<u>, lifetime=" + "6" * 5000,
    f"5: : {S}peer 192.0.2.1 lifetime updated: 4294967296000",
    f"5: : {S}peer 192.0.2.1 lifetime updated: ٣٠٠",
    "٣: : Arabic-Indic digits",
    "0001-01-01T00:00:00+0100 INFO year 1 at +01:00 overflows the conversion to UTC",
    "9999-12-31T23:59:59-0100(17): INFO: past year 9999 in UTC",
    "1850-01-01T00:00:00+0000: : before the era",
    "<13>1 0001-01-01T00:00:00+01:00 host turnserver 1 - - 1: : a syslog time that overflows",
]
RANGES = {  # the columns of processors/store/migrations/0002_turn.sql
    "error_code": 2**16 - 1, "lifetime_s": 2**32 - 1, "channel": 2**16 - 1, "uptime_s": 2**64 - 1,
    "rx_packets": 2**64 - 1, "rx_bytes": 2**64 - 1, "tx_packets": 2**64 - 1, "tx_bytes": 2**64 - 1,
}
REF = datetime(2026, 11, 26, tzinfo=UTC)


def fits(ev: TurnEvent) -> None:
    for name, top in RANGES.items():
        value = getattr(ev, name)
        assert value is None or 0 <= value <= top, (name, value, ev.raw[:80])
    assert ev.at is None or 2000 <= ev.at.year < 2100


@pytest.mark.parametrize("line", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_number_never_raises_and_every_value_fits_its_column(line: str) -> None:
    parser = CoturnParser("turn-1", b"k")
    res = parser.parse(line + "\n", source="1:2:0", offset=0, received_at=REF)
    assert res is None or isinstance(res, (TurnEvent, UnknownLine))
    if isinstance(res, TurnEvent):
        fits(res)
        [(_, value, n)] = encode_turn_batches([res], source_host="h", tenant="default", max_bytes=1_000_000)
        assert n == 1 and decode(value)[1].events == [res]  # type: ignore[attr-defined]


def test_a_number_too_long_for_its_field_leaves_the_line_unmodelled_not_cut() -> None:
    parser = CoturnParser("turn-1", b"k")
    ev = parser.parse(f"5: : {S}new, realm=<r>, username=<u>, lifetime=99999999999\n", source="x", offset=0)
    assert isinstance(ev, TurnEvent) and ev.kind == "other" and ev.lifetime_s is None
    ev = parser.parse(f"6: : {S}new, realm=<r>, username=<u>, lifetime=600\n", source="x", offset=100)
    assert isinstance(ev, TurnEvent) and (ev.kind, ev.lifetime_s) == ("allocation", 600)


class Recorder:
    def __init__(self) -> None:
        self.payloads: list[Model] = []

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        self.payloads.extend(payloads)

    def close(self) -> None:
        pass


def test_the_tailer_gets_past_every_hostile_line(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    good = f"7: : {S}usage: realm=<r>, username=<u>, rp=3, rb=300, sp=2, sb=200\n"
    log.write_text("".join(line + "\n" for line in HOSTILE) + good)
    rec = Recorder()
    tailer = FileTailer(log, rec, CoturnParser("turn-1", b"k"), tmp_path / "cp.json", batch_lines=5)
    try:
        assert tailer.poll() == len(HOSTILE) + 1
    finally:
        tailer.close()
    events = [p for p in rec.payloads if isinstance(p, TurnEvent)]
    for ev in events:
        fits(ev)
    assert (events[-1].kind, events[-1].rx_bytes, events[-1].uptime_s) == ("usage", 300, 7)
    # every line is accounted for: an event, a dead letter, or journald metadata that was skipped
    dead = [p for p in rec.payloads if isinstance(p, DeadLetter)]
    skipped = tailer.parser.stats.skipped
    assert skipped == 2  # the two journald export fields alone (__REALTIME_TIMESTAMP=...)
    assert len(events) + len(dead) + skipped == len(HOSTILE) + 1
