"""The tailer's row path (a publisher with ``publish_turn_rows``, as KafkaPublisher has): the same
events, dead letters, ids and checkpoints as the object path, a failed publish retried with the
same rows, and the kill -9 scenario of test_turn_tailer_kill run again with a row publisher."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import tests.unit.test_turn_tailer_kill as kill
from collector.contract import TURN_EVENT_COLUMNS, DeadLetter, Model, TurnEvent, TurnEventBatch
from collector.errors import BrokerUnavailable
from collector.turn.coturn import CoturnParser
from collector.turn.tailer import FileTailer, load_checkpoint

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # the receive time the E2 lines take
LOG = (
    "0: : log file opened: /var/log/turn.log\n"
    "1: : IPv4. Local relay addr: 203.0.113.10:50001\n"
    "1: : session 001000000000000001: new, realm=<r>, username=<alice>, lifetime=600\n"
    "not a coturn line at all\n"
    "\n"
    "2: : session 001000000000000001: peer usage: realm=<r>, username=<alice>, rp=1, rb=2, sp=3, sb=4\n"
    "3: : session 001000000000000001: closed (2nd stage), user <alice> realm <r> origin <>, local "
    "203.0.113.10:3478, remote 198.51.100.7:40000, reason: allocation timeout\n"
)


class Objects:
    """Takes TurnEvent objects only (the test doubles and the embedded store)."""

    def __init__(self) -> None:
        self.batches: list[list[Model]] = []

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        self.batches.append(list(payloads))

    def close(self) -> None:
        pass


class Rows(Objects):
    """Takes rows too; decodes them the way a processor does (TurnEventBatch from columns/rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.row_calls = 0
        self.fail_next = 0

    def publish_turn_rows(self, rows: Sequence[tuple[Any, ...]], others: Sequence[Model],
                          tenant: str = "default") -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerUnavailable("broker down", retry_after=0.01)
        self.row_calls += 1
        batch = TurnEventBatch.model_validate({"columns": list(TURN_EVENT_COLUMNS), "rows": [list(r) for r in rows]})
        self.batches.append([*batch.events, *others])


def run(tmp: Path, pub: Objects, name: str) -> FileTailer:
    log = tmp / "turn.log"
    if not log.exists():
        log.write_text(LOG)
    tailer = FileTailer(log, pub, CoturnParser("turn-r", b"k"), tmp / f"{name}.json", clock=lambda: NOW)
    tailer.poll()
    return tailer


def split(pub: Objects) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    payloads = [p for b in pub.batches for p in b]
    events = [p.model_dump() for p in payloads if isinstance(p, TurnEvent)]
    dead = [(p.raw, p.origin or "") for p in payloads if isinstance(p, DeadLetter)]
    return events, dead


def test_rows_give_the_events_dead_letters_and_checkpoint_of_the_object_path(tmp_path: Path) -> None:
    objects, rows = Objects(), Rows()
    a, b = run(tmp_path, objects, "a"), run(tmp_path, rows, "b")
    a.close()
    b.close()
    assert rows.row_calls == 1
    assert split(rows) == split(objects)
    events, dead = split(rows)
    assert len(events) == 5 and [raw for raw, _ in dead] == ["not a coturn line at all"]
    assert b.published == a.published == 6 and b.dead_letters == a.dead_letters == 1
    cp_a, cp_b = load_checkpoint(tmp_path / "a.json"), load_checkpoint(tmp_path / "b.json")
    assert cp_a is not None and cp_b is not None
    assert (cp_b.offset, cp_b.parser) == (cp_a.offset, cp_a.parser) and cp_b.offset == len(LOG.encode())


def test_a_failed_row_publish_keeps_the_checkpoint_and_is_retried_with_the_same_rows(tmp_path: Path) -> None:
    pub = Rows()
    pub.fail_next = 1
    log = tmp_path / "turn.log"
    log.write_text(LOG)
    tailer = FileTailer(log, pub, CoturnParser("turn-r", b"k"), tmp_path / "cp.json", clock=lambda: NOW)
    with pytest.raises(BrokerUnavailable):
        tailer.poll()
    cp = load_checkpoint(tmp_path / "cp.json")
    assert cp is not None and cp.offset == 0 and pub.batches == []
    assert tailer.poll() == LOG.count("\n")
    tailer.close()
    reference = Objects()
    run(tmp_path, reference, "ref").close()
    assert split(pub) == split(reference)  # same ids, same parser state carried over the failure


ROWS_CHILD = kill.CHILD.replace(
    "    def close(self):",
    """    def publish_turn_rows(self, rows, others, tenant="default"):
        from collector.contract import TURN_EVENT_COLUMNS
        raw = TURN_EVENT_COLUMNS.index("raw")
        for r in rows:
            self.fh.write(json.dumps({"id": r[0], "raw": r[raw], "via": "rows"}) + "\\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())
    def close(self):""",
)


def test_sigkill_and_restart_with_a_row_publisher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ROWS_CHILD != kill.CHILD
    monkeypatch.setattr(kill, "CHILD", ROWS_CHILD)
    kill.test_sigkill_and_restart_lose_nothing_and_repeat_only_same_ids(tmp_path)
    got = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert got and all(g["via"] == "rows" for g in got)
