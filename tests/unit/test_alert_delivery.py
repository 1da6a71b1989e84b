"""The evaluator's delivery on a store whose rows the test sets (alerts/evaluator.py): a resolve a
notifier could not take is sent again next round; and one interleaving that loses it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.alert import Alert
from alerts.evaluator import Evaluator
from alerts.rules import load_rules
from collector.errors import Unavailable
from processors.store.sink import Row, Table

RULE = next(r for r in load_rules() if r.id == "stun-unreachable")  # for 1m, keep_firing_for 2m
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BAD = {"tenant": "acme", "region": "apac", "volume": 10, "affected": 8, "value": 0.8}
FINE = {**BAD, "affected": 0, "value": 0.0}


class Store:
    """Answers every query with ``rows`` (the rule's result)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = [BAD]

    def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows]

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        raise NotImplementedError

    def execute(self, sql: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class Receiver:
    name = "receiver"

    def __init__(self) -> None:
        self.got: list[Alert] = []
        self.down = False

    def send(self, alerts: Sequence[Alert]) -> None:
        if self.down:
            raise Unavailable("receiver down")
        self.got += alerts


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _firing(tmp_path: Path, receiver: Receiver) -> tuple[Store, Evaluator]:
    store = Store()
    ev = Evaluator(store, [RULE], [receiver], tmp_path / "state.json", "http://icewatch.test")
    ev.evaluate(RULE.id, at(0))
    ev.evaluate(RULE.id, at(60))  # fires
    assert [a.resolved for a in receiver.got] == [False]
    return store, ev


def test_a_resolve_the_receiver_could_not_take_is_sent_next_round(tmp_path: Path) -> None:
    receiver = Receiver()
    store, ev = _firing(tmp_path, receiver)
    store.rows = [FINE]
    ev.evaluate(RULE.id, at(90))
    receiver.down = True
    ev.evaluate(RULE.id, at(180))  # resolved (keep_firing_for 2m since the last true at 60 s): not taken
    assert receiver.got and not any(a.resolved for a in receiver.got)
    [inst] = ev.book.instances.values()
    assert inst.phase == "resolved" and not inst.delivered
    receiver.down = False
    ev.evaluate(RULE.id, at(210))
    resolved = [a for a in receiver.got if a.resolved]
    assert len(resolved) == 1 and resolved[0].ends_at == at(180) and resolved[0].starts_at == at(60)
    assert ev.book.instances == {}
    reloaded = Evaluator(store, [RULE], [receiver], tmp_path / "state.json", "http://icewatch.test")
    assert reloaded.book.instances == {}


class Interleaving(Receiver):
    """Takes the first batch; while it is being sent, the rule is evaluated (as the scheduler's
    evaluation job may run during the resend job's send) and the receiver cannot take that batch."""

    def __init__(self) -> None:
        super().__init__()
        self.evaluator: Evaluator | None = None
        self.store: Store | None = None
        self.during: datetime = T0

    def send(self, alerts: Sequence[Alert]) -> None:
        if self.evaluator is not None and self.store is not None:
            evaluator, self.evaluator = self.evaluator, None
            self.store.rows = [FINE]
            self.down = True
            evaluator.evaluate(RULE.id, self.during)  # resolves; its delivery fails
            self.down = False
            self.got += alerts  # the batch being sent (the firing alert) is taken
            return
        super().send(alerts)


def test_a_resolve_made_while_another_delivery_is_sending_is_not_lost(tmp_path: Path) -> None:
    receiver = Interleaving()
    store, ev = _firing(tmp_path, receiver)
    receiver.evaluator, receiver.store, receiver.during = ev, store, at(200)
    ev.deliver(at(190))  # the resend job: sends the firing alert; the evaluation resolves meanwhile
    ev.evaluate(RULE.id, at(230))  # the next round must still deliver the resolve
    assert [a.ends_at for a in receiver.got if a.resolved] == [at(200)]
