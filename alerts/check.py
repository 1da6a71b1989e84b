"""``icewatch alerts check``: every rule loads (alerts/rules.py) and its SQL compiles against the
real schema, returning its labels, ``value``, ``volume`` and the columns its templates name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from alerts.evaluator import rule_sql
from alerts.rules import RESERVED, Rule
from collector.errors import IcewatchError
from processors.store.sink import Sink

_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*)\)?$")


def check_rule(sink: Sink, rule: Rule, now: datetime | None = None) -> list[str]:
    """Problems of one rule's SQL on this store's schema (empty: fine)."""
    try:
        described = sink.query(f"DESCRIBE TABLE ({rule_sql(rule, now or datetime.now(UTC))})")
    except IcewatchError as exc:
        return [f"{rule.id}: sql: does not compile: {str(exc).splitlines()[0][:400]}"]
    types = {str(c["name"]): str(c["type"]) for c in described}
    problems = []
    for label in rule.labels:
        if label not in types:
            problems.append(f"{rule.id}: sql: returns no column {label!r} for its label")
    for name in RESERVED:
        if name not in types:
            problems.append(f"{rule.id}: sql: returns no {name!r} column")
        elif not _NUMERIC.match(types[name]):
            problems.append(f"{rule.id}: sql: {name!r} is {types[name]}, not a number")
    for field in ("summary", "description"):
        for name in _TEMPLATE.findall(getattr(rule, field)):
            if name not in types:
                problems.append(f"{rule.id}: {field}: {{{{ {name} }}}} is not a column of the result")
    return problems


def check_rules(sink: Sink, rules: Sequence[Rule]) -> list[str]:
    ids = [r.id for r in rules]
    problems = [f"rule id {i!r} is used twice" for i in sorted(set(ids)) if ids.count(i) > 1]
    for rule in rules:
        problems += check_rule(sink, rule)
    return problems
