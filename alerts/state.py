"""The life of one alert instance (a rule and one label set), without I/O:

    inactive --condition--> pending --held for `for`--> firing --condition gone for
    `keep_firing_for`--> resolved (kept until the resolve is delivered, then forgotten)

A pending instance whose condition goes away is forgotten (it never paged). A firing instance whose
condition returns while it is kept firing simply continues. An evaluation that failed (the store
unreachable) changes nothing: no alert resolves because the data could not be read.

Each instance remembers whether its latest state was delivered; ``to_json``/``from_json`` persist
the whole book, so a restart neither pages again (same labels, same startsAt: Alertmanager
deduplicates) nor forgets a firing alert or an undelivered resolve.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Phase = Literal["pending", "firing", "resolved"]
# An evaluation may start a little after its scheduled time (several rules come due together and
# share one store): durations are compared with this much slack, else `for` equal to the interval
# would take two intervals whenever the first evaluation started late.
SLACK_S = 0.5


def fingerprint(rule_id: str, labels: Mapping[str, str]) -> str:
    text = json.dumps([rule_id, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Instance:
    rule_id: str
    labels: dict[str, str]
    phase: Phase
    active_since: str  # ISO times: the book is JSON
    last_true: str
    fired_at: str | None = None
    resolved_at: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # the latest row (for templates)
    delivered: bool = False  # the latest phase reached a notifier
    last_sent: str | None = None
    severity: str = ""  # as last sent: a rule removed meanwhile still resolves under the same labels
    summary: str = ""


@dataclass(frozen=True)
class Transition:
    rule_id: str
    labels: Mapping[str, str]
    before: Phase | None
    after: Phase | None  # None: forgotten


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Book:
    """Every instance the evaluator knows, keyed by fingerprint."""

    RECENT_S = 86400.0  # how long a resolved alert is remembered for inhibitions (the longest window)

    def __init__(self, instances: Mapping[str, Instance] | None = None,
                 recent: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.instances: dict[str, Instance] = dict(instances or {})
        # fingerprint -> {rule_id, labels, until}: alerts that stopped firing, and when; a rule
        # inhibited by one of them stays quiet while its window still holds the firing period
        self.recent: dict[str, dict[str, Any]] = dict(recent or {})

    def fired_since(self, rule_id: str, since: datetime) -> list[dict[str, str]]:
        """Label sets of ``rule_id`` firing now or until a moment after ``since``."""
        out = [dict(i.labels) for i in self.of_rule(rule_id) if i.phase == "firing"]
        out += [dict(r["labels"]) for r in self.recent.values()
                if r["rule_id"] == rule_id and _t(r["until"]) >= since]
        return out

    def of_rule(self, rule_id: str) -> list[Instance]:
        return [i for i in self.instances.values() if i.rule_id == rule_id]

    def observe(self, rule_id: str, now: datetime, true_rows: Iterable[tuple[Mapping[str, str], Mapping[str, Any]]],
                for_s: float, keep_firing_for_s: float) -> list[Transition]:
        """One successful evaluation of ``rule_id`` at ``now``: ``true_rows`` are the (labels, row)
        whose condition holds. Returns what changed."""
        stamp = now.isoformat()
        changes: list[Transition] = []
        seen: set[str] = set()
        for labels, row in true_rows:
            key = fingerprint(rule_id, labels)
            seen.add(key)
            inst = self.instances.get(key)
            if inst is not None and inst.phase == "resolved" and not inst.delivered:
                inst.phase, inst.resolved_at = "firing", None  # back before its resolve went out
                changes.append(Transition(rule_id, labels, "resolved", "firing"))
            if inst is None or inst.phase == "resolved":
                before = inst.phase if inst else None
                inst = Instance(rule_id, dict(labels), "pending", stamp, stamp)
                self.instances[key] = inst
                changes.append(Transition(rule_id, labels, before, "pending"))
            inst.last_true = stamp
            inst.values = dict(row)
            if inst.phase == "pending" and (now - _t(inst.active_since)).total_seconds() >= for_s - SLACK_S:
                inst.phase, inst.fired_at, inst.delivered = "firing", stamp, False
                changes.append(Transition(rule_id, labels, "pending", "firing"))
        for key, inst in list(self.instances.items()):
            if inst.rule_id != rule_id or key in seen:
                continue
            if inst.phase == "pending":
                del self.instances[key]
                changes.append(Transition(rule_id, inst.labels, "pending", None))
            elif inst.phase == "firing" and (now - _t(inst.last_true)).total_seconds() >= keep_firing_for_s - SLACK_S:
                inst.phase, inst.resolved_at, inst.delivered = "resolved", stamp, False
                self.recent[key] = {"rule_id": rule_id, "labels": dict(inst.labels), "until": stamp}
                changes.append(Transition(rule_id, inst.labels, "firing", "resolved"))
        for key, r in list(self.recent.items()):
            if (now - _t(r["until"])).total_seconds() > self.RECENT_S:
                del self.recent[key]
        return changes

    def forget_rules_except(self, rule_ids: Iterable[str], now: datetime | None = None) -> None:
        """Instances of rules that no longer exist: a pending one is forgotten, a firing one is
        resolved now (its resolve is delivered, then it is forgotten like any other)."""
        keep = set(rule_ids)
        stamp = (now or datetime.now(UTC)).isoformat()
        for key, inst in list(self.instances.items()):
            if inst.rule_id in keep:
                continue
            if inst.phase == "pending":
                del self.instances[key]
            elif inst.phase == "firing":
                inst.phase, inst.resolved_at, inst.delivered = "resolved", stamp, False

    def to_send(self) -> list[Instance]:
        """Firing instances (re-sent every round, as Alertmanager's clients must) and resolved ones
        whose resolve was not delivered yet."""
        return [i for i in self.instances.values()
                if i.phase == "firing" or (i.phase == "resolved" and not i.delivered)]

    def delivered(self, instances: Iterable[Instance], now: datetime) -> None:
        for inst in instances:
            inst.delivered, inst.last_sent = True, now.isoformat()
            if inst.phase == "resolved":
                self.instances.pop(fingerprint(inst.rule_id, inst.labels), None)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "instances": {k: asdict(v) for k, v in self.instances.items()},
                           "recent": self.recent}, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Book:
        doc = json.loads(text)
        if doc.get("version") != 1:
            raise ValueError(f"unknown alert state version {doc.get('version')!r}")
        return cls({k: Instance(**v) for k, v in doc["instances"].items()}, doc.get("recent", {}))
