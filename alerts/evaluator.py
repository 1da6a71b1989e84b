"""The evaluator: every rule on its own interval (APScheduler), its SQL over the store for the window
that has landed, the state book updated and persisted, alerts handed to the notifiers.

Delivery: firing alerts are sent after every evaluation of their rule and re-sent at least every
``resend_s`` (Alertmanager forgets an alert not re-sent within its resolve_timeout); a resolve is
sent until a notifier took it. The book is written to ``state_path`` (atomically) after every change
and read at start, so a restart keeps firing alerts firing under the same startsAt (Alertmanager
deduplicates by labels: no second page) and still delivers a resolve it had not sent.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from alerts.alert import Alert, Notifier
from alerts.rules import Rule, shared_labels
from alerts.state import Book, Instance, Transition
from collector.errors import IcewatchError
from dashboards.macros import time_macros
from processors.store.sink import Sink

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Evaluation:
    rule: Rule
    at: datetime
    rows: list[dict[str, Any]]
    true_rows: list[tuple[dict[str, str], dict[str, Any]]]


def window(rule: Rule, now: datetime) -> tuple[datetime, datetime]:
    """The range a rule reads when evaluated at ``now``: it ends ``delay`` ago (ingestion lag)."""
    end = now - timedelta(seconds=rule.delay)
    return end - timedelta(seconds=rule.window), end


def rule_sql(rule: Rule, now: datetime) -> str:
    start, end = window(rule, now)
    return time_macros(rule.sql, start, end, rule.interval)


def _number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def condition_rows(rule: Rule, rows: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """The rows whose value crosses the threshold on enough volume, with their label sets."""
    out = []
    for row in rows:
        value, volume = _number(row.get("value")), _number(row.get("volume"))
        if value is None or volume is None or volume < rule.min_volume:
            continue
        if rule.always or rule.threshold.holds(value):
            out.append(({name: str(row.get(name, "")) for name in rule.labels}, dict(row)))
    return out


class Evaluator:
    def __init__(self, sink: Sink, rules: Sequence[Rule], notifiers: Sequence[Notifier], state_path: Path,
                 external_url: str, resend_s: float = 30.0, clock: Callable[[], datetime] = utcnow) -> None:
        self.sink = sink
        self.rules = {r.id: r for r in rules}
        self.notifiers = list(notifiers)
        self.state_path = state_path
        self.external_url = external_url.rstrip("/")
        self.resend_s = resend_s
        self.clock = clock
        self._lock = threading.Lock()
        self.book = self._load()
        self.book.forget_rules_except(self.rules, self.clock())
        self.errors: dict[str, str] = {}  # rule id -> the last evaluation error
        self._scheduler: BackgroundScheduler | None = None

    # --- state ---------------------------------------------------------------------------------
    def _load(self) -> Book:
        try:
            return Book.from_json(self.state_path.read_text())
        except FileNotFoundError:
            return Book()
        except (ValueError, TypeError, KeyError) as exc:
            broken = self.state_path.with_suffix(".broken")
            self.state_path.replace(broken)
            log.error("alert state unreadable, kept as %s and started empty: %s", broken, exc)
            return Book()

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(self.book.to_json())
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.state_path)

    # --- one round -----------------------------------------------------------------------------
    def evaluate(self, rule_id: str, now: datetime | None = None) -> list[Transition]:
        """Evaluate one rule, update and persist the book, deliver; the store's errors leave the
        book as it was (logged, kept in ``errors``)."""
        rule = self.rules[rule_id]
        now = now or self.clock()
        try:
            rows = self.sink.query(rule_sql(rule, now))
        except IcewatchError as exc:
            self.errors[rule.id] = str(exc)
            log.warning("alert rule %s not evaluated: %s", rule.id, exc)
            return []
        self.errors.pop(rule.id, None)
        with self._lock:
            true_rows = [row for row in condition_rows(rule, rows) if not self._inhibited(rule, row[0], now)]
            changes = self.book.observe(rule.id, now, true_rows, rule.for_, rule.keep_firing_for)
            if changes:
                for c in changes:
                    log.info("alert %s %s -> %s", rule.id, c.before or "inactive", c.after or "inactive",
                             extra={"labels": dict(c.labels)})
                self._save()
        self.deliver(now, only_rule=None if changes else rule.id)
        return changes

    def _inhibited(self, rule: Rule, labels: Mapping[str, str], now: datetime) -> bool:
        """A rule of ``inhibited_by`` fired, for the same values of the labels both rules carry,
        within the window ``rule`` reads now: its rows still hold the period the cause explains
        (else a symptom rule would page after the recovery, on the outage's calls)."""
        since = window(rule, now)[0]
        for source_id in rule.inhibited_by:
            source = self.rules.get(source_id)
            if source is None:
                continue
            equal = shared_labels(source, rule)
            for fired in self.book.fired_since(source_id, since):
                if all(fired.get(k) == labels.get(k) for k in equal):
                    return True
        return False

    def alert(self, inst: Instance) -> Alert:
        rule = self.rules.get(inst.rule_id)
        labels = {"alertname": inst.rule_id, **inst.labels}
        annotations: dict[str, str] = {"summary": inst.summary}
        if rule is not None:
            inst.severity = rule.severity
            inst.summary = rule.render(rule.summary, {**inst.values, **inst.labels})
            annotations = {
                "summary": inst.summary,
                "description": rule.render(rule.description, {**inst.values, **inst.labels}),
                "runbook_url": f"{self.external_url}/runbooks/{rule.runbook}",
                "value": str(inst.values.get("value", "")),
            }
        labels["severity"] = inst.severity
        labels = {k: v for k, v in labels.items() if v != ""}
        starts = datetime.fromisoformat(inst.fired_at or inst.active_since)
        ends = datetime.fromisoformat(inst.resolved_at) if inst.resolved_at else None
        return Alert(labels, annotations, starts, ends, f"{self.external_url}/alerts#{inst.rule_id}")

    def deliver(self, now: datetime | None = None, only_rule: str | None = None) -> None:
        """Send what is due: everything after a change; otherwise a rule's firing alerts once
        ``resend_s`` passed since they were last sent."""
        now = now or self.clock()
        with self._lock:
            due = [i for i in self.book.to_send()
                   if only_rule is None or i.rule_id == only_rule]
            if only_rule is not None:
                due = [i for i in due if not i.delivered or i.last_sent is None
                       or (now - datetime.fromisoformat(i.last_sent)).total_seconds() >= self.resend_s]
            if not due:
                return
            picked = [(i, i.phase) for i in due]
            alerts = [self.alert(i) for i in due]
        ok = True  # without notifiers the book still moves on (the built-in pages show it)
        for notifier in self.notifiers:
            try:
                notifier.send(alerts)
            except IcewatchError as exc:
                ok = False
                log.warning("alerts not delivered by %s (kept, sent again next round): %s", notifier.name, exc)
        if ok:
            with self._lock:
                # only what is still as it was sent: an instance an evaluation moved meanwhile (e.g.
                # resolved) has news the receiver did not get yet
                self.book.delivered([i for i, phase in picked if i.phase == phase], now)
                self._save()

    def evaluate_all(self, now: datetime | None = None) -> None:
        for rule_id in self.rules:
            self.evaluate(rule_id, now)

    # --- scheduling ----------------------------------------------------------------------------
    def start(self) -> None:
        """Evaluate every rule on its interval in background threads, starting now."""
        scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1,
                                                                      "misfire_grace_time": 30})
        first = self.clock()
        for rule in self.rules.values():
            scheduler.add_job(self.evaluate, "interval", args=[rule.id], seconds=rule.interval,
                              next_run_time=first, id=rule.id)
        scheduler.add_job(self.deliver, "interval", seconds=self.resend_s, id="resend")
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None

    def snapshot(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, for the built-in pages."""
        with self._lock:
            return [{"rule": i.rule_id, "title": self.rules[i.rule_id].title if i.rule_id in self.rules else "",
                     "phase": i.phase, "labels": dict(i.labels), "since": i.fired_at or i.active_since,
                     "summary": self.alert(i).annotations.get("summary", ""),
                     "runbook": f"/runbooks/{self.rules[i.rule_id].runbook}" if i.rule_id in self.rules else ""}
                    for i in self.book.instances.values() if i.phase in ("pending", "firing")]
