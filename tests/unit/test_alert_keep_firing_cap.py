"""ICEWATCH_ALERTS__KEEP_FIRING_FOR_MAX_S: icewatch's evaluator keeps an alert firing at most that long
after its condition is gone (below each rule's own keep_firing_for), so a short demo resolves
soon after its incident; unset, every rule keeps its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.rules import load_rules
from alerts.service import evaluator_for
from collector.errors import ConfigError
from collector.settings import load_settings
from tests.unit.test_alert_evaluator import Rows  # the store stand-in answering rules with set rows

VAR = "ICEWATCH_ALERTS__KEEP_FIRING_FOR_MAX_S"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


EU_DOWN = {"tenant": "default", "turn_server": "turn-eu-1", "region": "eu", "transport": "udp",
           "volume": 1, "failing": 1, "value": 1.0, "last_error": "timeout"}


@pytest.fixture(autouse=True)
def no_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)


def test_unset_every_rule_keeps_its_own(tmp_path: Path) -> None:
    evaluator = evaluator_for(load_settings(data_dir=tmp_path), Rows())
    assert evaluator.rules == {r.id: r for r in load_rules()}


def test_the_cap_lowers_longer_holds_and_changes_nothing_else(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "10")
    shipped = {r.id: r for r in load_rules()}
    assert shipped["turn-server-down"].keep_firing_for == 45  # what the cap is for in the demo
    capped = evaluator_for(load_settings(data_dir=tmp_path), Rows()).rules
    assert capped.keys() == shipped.keys()
    for rule_id, rule in capped.items():
        assert rule.keep_firing_for == min(shipped[rule_id].keep_firing_for, 10)
        assert rule.model_dump(exclude={"keep_firing_for"}) == shipped[rule_id].model_dump(exclude={"keep_firing_for"})


def test_a_capped_alert_resolves_once_its_condition_is_gone_for_the_cap(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "10")
    store = Rows()
    evaluator = evaluator_for(load_settings(data_dir=tmp_path), store)
    rule = evaluator.rules["turn-server-down"]
    store.rows = [EU_DOWN]
    evaluator.evaluate(rule.id, T0)
    evaluator.evaluate(rule.id, T0 + timedelta(seconds=rule.for_))
    assert [i.phase for i in evaluator.book.of_rule(rule.id)] == ["firing"]
    last_true = T0 + timedelta(seconds=rule.for_)
    store.rows = []
    evaluator.evaluate(rule.id, last_true + timedelta(seconds=5))
    assert [i.phase for i in evaluator.book.of_rule(rule.id)] == ["firing"]  # kept firing ...
    changes = evaluator.evaluate(rule.id, last_true + timedelta(seconds=10))  # ... for the cap, not 45 s
    assert [(c.before, c.after) for c in changes] == [("firing", "resolved")]


@pytest.mark.parametrize("value", ["-1", "86401", "nan", "inf", "ten", ""])
def test_a_bad_cap_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ConfigError, match=VAR):
        load_settings()
