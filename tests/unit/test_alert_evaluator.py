"""The evaluator's bookkeeping around one rule: delivery, re-sending, persistence across a restart,
and what a failing store or notifier does. The store here answers a rule's query with rows the
test sets (the rules' SQL itself runs on the real engine in tests/integration/test_alert_rules.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.alert import Alert
from alerts.evaluator import Evaluator, condition_rows, rule_sql, window
from alerts.rules import load_rules
from collector.errors import StorageUnavailable, Unavailable
from processors.store.sink import Table

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RULES = {r.id: r for r in load_rules()}
DOWN = RULES["turn-server-down"]


class Rows:
    """A Sink answering every query with ``rows`` (or raising ``error``)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.error: Exception | None = None
        self.sql: list[str] = []

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.sql.append(sql)
        if self.error is not None:
            raise self.error
        return [dict(r) for r in self.rows]

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        raise AssertionError("the evaluator reads rows, not tables")

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], dedup_token: str | None = None) -> None:
        raise AssertionError("the evaluator never writes")

    def execute(self, sql: str) -> None:
        raise AssertionError("the evaluator never runs DDL")

    def close(self) -> None:
        pass


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.batches: list[list[Alert]] = []
        self.down = False

    def send(self, alerts: Sequence[Alert]) -> None:
        if self.down:
            raise Unavailable("receiver down")
        self.batches.append(list(alerts))


def eu_down(failing: int = 2, volume: int = 2) -> dict[str, Any]:
    return {"tenant": "default", "turn_server": "turn-eu-1", "region": "eu", "transport": "udp",
            "volume": volume, "failing": failing, "value": failing / volume, "last_error": "timeout"}


def make(tmp_path: Path, sink: Rows, rec: Recorder) -> Evaluator:
    return Evaluator(sink, [DOWN], [rec], tmp_path / "state.json", "http://icewatch.example:8080", resend_s=30)


def test_the_window_ends_delay_before_now_and_the_macros_are_expanded() -> None:
    start, end = window(DOWN, T0)
    assert end == T0 - timedelta(seconds=DOWN.delay) and end - start == timedelta(seconds=DOWN.window)
    sql = rule_sql(DOWN, T0)
    assert f"at >= toDateTime({int(start.timestamp())}) AND at <= toDateTime({int(end.timestamp())})" in sql
    assert "$__" not in sql


def test_rows_below_the_minimum_volume_or_not_numbers_never_count() -> None:
    rule = RULES["stun-unreachable"]  # min_volume 5, value >= 0.3
    base = {"tenant": "t", "region": "eu", "affected": 3}
    rows = [{**base, "value": 0.6, "volume": 5}, {**base, "region": "us", "value": 0.9, "volume": 4},
            {**base, "region": "apac", "value": float("nan"), "volume": 50},
            {**base, "region": "x", "value": 0.1, "volume": 50}]
    assert [labels for labels, _ in condition_rows(rule, rows)] == [{"tenant": "t", "region": "eu"}]


def test_pending_then_firing_then_resolved_each_delivered_with_its_labels_and_times(tmp_path: Path) -> None:
    sink, rec = Rows(), Recorder()
    ev = make(tmp_path, sink, rec)
    sink.rows = [eu_down()]
    ev.evaluate(DOWN.id, T0)
    assert rec.batches == []  # pending: nothing pages yet
    ev.evaluate(DOWN.id, T0 + timedelta(seconds=DOWN.for_))
    (alert,) = rec.batches[-1]
    assert alert.labels == {"alertname": "turn-server-down", "severity": "page", "tenant": "default",
                            "turn_server": "turn-eu-1", "region": "eu", "transport": "udp"}
    assert alert.starts_at == T0 + timedelta(seconds=DOWN.for_) and alert.ends_at is None
    assert alert.annotations["summary"] == "TURN turn-eu-1 (eu) unreachable over udp: 2 of 2 vantage points fail"
    assert alert.annotations["runbook_url"] == "http://icewatch.example:8080/runbooks/turn-server-down"
    assert alert.generator_url == "http://icewatch.example:8080/alerts#turn-server-down"
    sink.rows = []
    gone = T0 + timedelta(seconds=DOWN.for_ + 1)
    ev.evaluate(DOWN.id, gone)  # kept firing for keep_firing_for: re-sent only when resend_s passed
    ev.evaluate(DOWN.id, gone + timedelta(seconds=DOWN.keep_firing_for))
    resolved = rec.batches[-1][0]
    assert resolved.ends_at == gone + timedelta(seconds=DOWN.keep_firing_for)
    assert resolved.starts_at == alert.starts_at and resolved.labels == alert.labels
    n = len(rec.batches)
    ev.evaluate(DOWN.id, gone + timedelta(seconds=DOWN.keep_firing_for + 60))
    assert len(rec.batches) == n  # a delivered resolve is not sent again


def test_firing_alerts_are_re_sent_every_resend_interval(tmp_path: Path) -> None:
    sink, rec = Rows(), Recorder()
    ev = make(tmp_path, sink, rec)
    sink.rows = [eu_down()]
    for s in range(0, 121, 10):
        ev.evaluate(DOWN.id, T0 + timedelta(seconds=s))
    sends = [b[0].starts_at for b in rec.batches]
    assert len(sends) == 4  # fired at 10 s, then at 40, 70, 100 s
    assert len(set(sends)) == 1  # always the same startsAt


def test_a_restart_keeps_firing_alerts_without_a_new_page_and_delivers_a_pending_resolve(tmp_path: Path) -> None:
    sink, rec = Rows(), Recorder()
    ev = make(tmp_path, sink, rec)
    sink.rows = [eu_down()]
    ev.evaluate(DOWN.id, T0)
    ev.evaluate(DOWN.id, T0 + timedelta(seconds=DOWN.for_))
    first = rec.batches[-1][0]
    # a new process on the same state: still firing from the same start, re-sent as such
    rec2 = Recorder()
    ev2 = make(tmp_path, sink, rec2)
    ev2.evaluate(DOWN.id, T0 + timedelta(seconds=60))
    assert rec2.batches and rec2.batches[-1][0].starts_at == first.starts_at
    assert rec2.batches[-1][0].ends_at is None
    # it resolves while the receiver is down: the resolve survives another restart and goes out
    sink.rows = []
    rec2.down = True
    ev2.evaluate(DOWN.id, T0 + timedelta(seconds=60 + DOWN.keep_firing_for + 1))
    rec3 = Recorder()
    ev3 = make(tmp_path, sink, rec3)
    ev3.evaluate(DOWN.id, T0 + timedelta(seconds=60 + DOWN.keep_firing_for + 20))
    (resolved,) = rec3.batches[-1]
    assert resolved.ends_at is not None and resolved.starts_at == first.starts_at


def test_a_store_error_changes_nothing(tmp_path: Path) -> None:
    sink, rec = Rows(), Recorder()
    ev = make(tmp_path, sink, rec)
    sink.rows = [eu_down()]
    ev.evaluate(DOWN.id, T0)
    ev.evaluate(DOWN.id, T0 + timedelta(seconds=DOWN.for_))
    sink.error = StorageUnavailable("store down")
    for s in range(60, 600, 30):  # long past keep_firing_for: an unreadable store resolves nothing
        ev.evaluate(DOWN.id, T0 + timedelta(seconds=s))
    assert ev.errors[DOWN.id] == "store down"
    assert [i.phase for i in ev.book.of_rule(DOWN.id)] == ["firing"]
    assert all(a.ends_at is None for b in rec.batches for a in b)


def test_an_unreadable_state_file_is_kept_aside_and_the_evaluator_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    ev = make(tmp_path, Rows(), Recorder())
    assert ev.book.instances == {}
    assert (tmp_path / "state.broken").read_text() == "{not json"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_alert_carries_a_runbook_and_a_summary(tmp_path: Path, rule_id: str) -> None:
    rule = RULES[rule_id]
    assert (Path(__file__).resolve().parents[2] / "alerts" / "runbooks" / f"{rule.runbook}.md").is_file()
    assert rule.summary and rule.description


class ByRule(Rows):
    """Rows per rule, told apart by the table the rule reads."""

    def __init__(self) -> None:
        super().__init__()
        self.by_table: dict[str, list[dict[str, Any]]] = {}

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        table = "probes" if "FROM probes" in sql else "call_minute"
        return [dict(r) for r in self.by_table.get(table, [])]


def test_a_symptom_stays_quiet_while_its_cause_fires_and_while_its_window_still_holds_the_outage(
        tmp_path: Path) -> None:
    ice = RULES["ice-failure-spike"]
    assert DOWN.id in ice.inhibited_by
    sink, rec = ByRule(), Recorder()
    ev = Evaluator(sink, [DOWN, ice], [rec], tmp_path / "state.json", "http://x", resend_s=30)
    eu = {"tenant": "default", "region": "eu", "failed": 5, "volume": 10, "value": 0.5}
    us = {**eu, "region": "us-east"}
    sink.by_table = {"probes": [eu_down()], "call_minute": [eu, us]}
    t = T0
    while t <= T0 + timedelta(minutes=5):  # the outage: DOWN fires for eu; the symptom in eu and us-east
        ev.evaluate(DOWN.id, t)
        ev.evaluate(ice.id, t)
        t += timedelta(seconds=10)
    fired = {(a.labels["alertname"], a.labels["region"]) for b in rec.batches for a in b if not a.resolved}
    assert fired == {("turn-server-down", "eu"), ("ice-failure-spike", "us-east")}  # us-east has no cause
    sink.by_table["probes"] = []  # recovered; the symptom's 10-minute window still holds the outage's calls
    end = t + timedelta(seconds=ice.window + ice.delay)
    while t <= end:
        ev.evaluate(DOWN.id, t)
        ev.evaluate(ice.id, t)
        t += timedelta(seconds=10)
    assert not any(a.labels["alertname"] == "ice-failure-spike" and a.labels["region"] == "eu"
                   for b in rec.batches for a in b)
    ev.evaluate(ice.id, t + timedelta(seconds=ice.for_ + 60))  # past the window, the symptom is its own again
    ev.evaluate(ice.id, t + timedelta(seconds=ice.for_ + 120))
    assert any(a.labels["alertname"] == "ice-failure-spike" and a.labels["region"] == "eu" and not a.resolved
               for b in rec.batches for a in b)


def test_for_equal_to_the_interval_fires_on_the_next_evaluation_even_when_the_first_started_late(
        tmp_path: Path) -> None:
    """Found with the real scheduler: several rules come due together, so an evaluation starts some
    milliseconds after its slot; `for` must not then take two intervals."""
    sink, rec = Rows(), Recorder()
    ev = make(tmp_path, sink, rec)
    sink.rows = [eu_down()]
    ev.evaluate(DOWN.id, T0 + timedelta(milliseconds=54))  # late start of the first evaluation
    ev.evaluate(DOWN.id, T0 + timedelta(seconds=DOWN.interval, milliseconds=3))
    assert rec.batches and rec.batches[-1][0].ends_at is None  # fired on the second evaluation
