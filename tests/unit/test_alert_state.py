"""The pure state book of alert instances (alerts/state.py): pending -> firing after `for`, pending
dropped, firing kept for `keep_firing_for` then resolved, undelivered resolves re-sent or taken
back, persistence."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.state import Book, Transition, fingerprint

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
RULE = "stun-unreachable"
APAC = {"tenant": "acme", "region": "apac"}
EU = {"tenant": "acme", "region": "eu"}
FOR, KEEP = 60.0, 120.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def true(*label_sets: Mapping[str, str], value: float = 0.5) -> list[tuple[Mapping[str, str], Mapping[str, Any]]]:
    return [(labels, {**labels, "value": value, "volume": 10}) for labels in label_sets]


def moves(changes: list[Transition]) -> list[tuple[str, str | None, str | None]]:
    return [(c.labels["region"], c.before, c.after) for c in changes]


def observe(book: Book, seconds: float, *label_sets: Mapping[str, str], value: float = 0.5) -> list[Transition]:
    return book.observe(RULE, at(seconds), true(*label_sets, value=value), FOR, KEEP)


def test_pending_fires_once_the_condition_held_for_for() -> None:
    book = Book()
    assert moves(observe(book, 0, APAC)) == [("apac", None, "pending")]
    assert observe(book, 30, APAC) == []
    assert observe(book, FOR - 1, APAC) == []
    [inst] = book.of_rule(RULE)
    assert inst.phase == "pending" and inst.fired_at is None and book.to_send() == []
    assert moves(observe(book, FOR, APAC, value=0.7)) == [("apac", "pending", "firing")]
    [inst] = book.of_rule(RULE)
    assert (inst.phase, inst.fired_at, inst.active_since) == ("firing", at(FOR).isoformat(), T0.isoformat())
    assert inst.values["value"] == 0.7 and not inst.delivered
    assert book.to_send() == [inst]


def test_for_zero_fires_at_the_first_evaluation() -> None:
    book = Book()
    changes = book.observe(RULE, T0, true(APAC), 0.0, 0.0)
    assert moves(changes) == [("apac", None, "pending"), ("apac", "pending", "firing")]


def test_pending_is_dropped_when_the_condition_goes_and_starts_over() -> None:
    book = Book()
    observe(book, 0, APAC, EU)
    assert moves(observe(book, 30, EU)) == [("apac", "pending", None)]
    assert [i.labels for i in book.of_rule(RULE)] == [EU]
    observe(book, 40, APAC)  # back: a new pending, its `for` counted from now
    assert observe(book, 40 + FOR - 1, APAC) == []
    assert moves(observe(book, 40 + FOR, APAC)) == [("apac", "pending", "firing")]


def test_firing_is_kept_for_keep_firing_for_then_resolved() -> None:
    book = Book()
    observe(book, 0, APAC)
    observe(book, FOR, APAC)
    last_true = FOR + 30
    observe(book, last_true, APAC)
    assert observe(book, last_true + 30) == []  # condition gone: still firing
    assert observe(book, last_true + KEEP - 1) == []
    [inst] = book.of_rule(RULE)
    assert inst.phase == "firing"
    assert observe(book, last_true + KEEP - 0.5, APAC) == []  # back within keep: simply continues
    last_true += KEEP - 0.5
    assert moves(observe(book, last_true + KEEP)) == [("apac", "firing", "resolved")]
    [inst] = book.of_rule(RULE)
    assert (inst.phase, inst.resolved_at, inst.fired_at) == ("resolved", at(last_true + KEEP).isoformat(),
                                                             at(FOR).isoformat())
    assert book.to_send() == [inst] and not inst.delivered


def _resolved_book() -> Book:
    book = Book()
    observe(book, 0, APAC)
    observe(book, FOR, APAC)
    book.delivered(book.to_send(), at(FOR))
    observe(book, FOR + KEEP)
    return book


def test_a_resolve_not_delivered_is_sent_again_and_forgotten_once_delivered() -> None:
    book = _resolved_book()
    [inst] = book.of_rule(RULE)
    assert inst.phase == "resolved"
    assert observe(book, FOR + KEEP + 30) == []  # a failed delivery: nothing marks it
    assert book.to_send() == [inst]
    book.delivered(book.to_send(), at(FOR + KEEP + 30))
    assert book.instances == {} and book.to_send() == []
    assert moves(observe(book, FOR + KEEP + 60, APAC)) == [("apac", None, "pending")]  # a new alert


def test_the_condition_returning_before_the_resolve_went_out_goes_back_to_firing() -> None:
    book = _resolved_book()
    assert moves(observe(book, FOR + KEEP + 30, APAC)) == [("apac", "resolved", "firing")]
    [inst] = book.of_rule(RULE)
    assert inst.phase == "firing" and inst.resolved_at is None
    assert inst.fired_at == at(FOR).isoformat()  # the same startsAt: no second page
    assert not inst.delivered and book.to_send() == [inst]


def test_delivery_marks_firing_alerts_without_forgetting_them() -> None:
    book = Book()
    observe(book, 0, APAC)
    observe(book, FOR, APAC)
    book.delivered(book.to_send(), at(FOR + 1))
    [inst] = book.of_rule(RULE)
    assert inst.delivered and inst.last_sent == at(FOR + 1).isoformat()
    assert book.to_send() == [inst]  # firing alerts are always due (re-sent to Alertmanager)


def test_instances_are_keyed_by_rule_and_labels() -> None:
    book = Book()
    observe(book, 0, APAC, EU)
    book.observe("ice-failure-spike", at(0), true(APAC), FOR, KEEP)
    assert set(book.instances) == {fingerprint(RULE, APAC), fingerprint(RULE, EU),
                                   fingerprint("ice-failure-spike", APAC)}
    assert fingerprint(RULE, {"region": "apac", "tenant": "acme"}) == fingerprint(RULE, APAC)  # order-free
    observe(book, 10)  # only this rule's instances move
    assert [i.rule_id for i in book.instances.values()] == ["ice-failure-spike"]


def test_json_round_trip_keeps_every_instance() -> None:
    book = _resolved_book()
    observe(book, FOR + KEEP + 1, EU)
    text = book.to_json()
    again = Book.from_json(text)
    assert again.instances == book.instances
    assert again.to_json() == text
    assert json.loads(text)["version"] == 1


def test_unknown_state_version_is_refused() -> None:
    doc = json.loads(_resolved_book().to_json())
    doc["version"] = 2
    with pytest.raises(ValueError, match="unknown alert state version 2"):
        Book.from_json(json.dumps(doc))
    with pytest.raises(ValueError, match="unknown alert state version None"):
        Book.from_json(json.dumps({"instances": {}}))


def test_instances_of_removed_rules_are_forgotten_once_nothing_is_owed() -> None:
    book = _resolved_book()  # resolved, not delivered: still owed to Alertmanager
    observe(book, FOR + KEEP + 1, EU)  # pending
    book.forget_rules_except(["other-rule"])
    assert [(i.labels["region"], i.phase) for i in book.instances.values()] == [("apac", "resolved")]
    book.delivered(book.to_send(), at(FOR + KEEP + 2))
    assert book.instances == {}


def test_a_firing_instance_of_a_removed_rule_is_resolved() -> None:
    book = Book()
    observe(book, 0, APAC)
    observe(book, FOR, APAC)
    book.delivered(book.to_send(), at(FOR))
    book.forget_rules_except(["other-rule"])
    assert [i.phase for i in book.instances.values()] == ["resolved"]
