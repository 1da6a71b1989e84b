"""Alert rules as data: ``alerts/rules/*.yaml``, one rule per file, loaded and validated here.

A rule's SQL returns one row per alert instance: its label columns (tenant, and the rule's others
among LABELS), ``value`` (compared with the threshold), ``volume`` (how many calls, probes or
lines the value stands on; below ``min_volume`` the row is noise and never fires) and any other
numbers its templates name. The SQL may use the backend macros only ($__timeFilter, $__fromTime,
$__toTime, $__interval_s), never dashboard variables: Grafana evaluates alert rules without them.

Evaluation at time t reads the window [t - delay - window, t - delay]: ``delay`` is the ingestion
lag allowed on purpose (reports in flight, the minute being written), so a quiet window is quiet
and not merely late. Templates: ``{{ name }}`` is replaced by that column of the row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from collector.errors import ConfigError

RULES_DIR = Path(__file__).resolve().parent / "rules"
RUNBOOKS_DIR = Path(__file__).resolve().parent / "runbooks"
LABELS = ("tenant", "turn_server", "region", "transport", "source")  # labels a rule may put on its alerts
RESERVED = ("value", "volume")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_VARIABLE = re.compile(r"\$\{\w+|\$(?!__)\w+")
BACKEND_MACROS = ("timeFilter", "fromTime", "toTime", "interval_s", "timeInterval")


def parse_duration(value: Any) -> float:
    """'30s', '2m', '1h' -> seconds (Prometheus style, one unit; 0 allowed)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("write a duration with its unit, e.g. 30s or 5m")
    m = _DURATION.match(str(value).strip())
    if not m:
        raise ValueError(f"not a duration: {value!r} (e.g. 30s, 5m, 1h)")
    return int(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m", "s"):
        n = seconds / _UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    return f"{int(seconds * 1000)}ms"


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    op: Literal[">", ">=", "<", "<="]
    value: float

    def holds(self, x: float) -> bool:
        return {">": x > self.value, ">=": x >= self.value, "<": x < self.value, "<=": x <= self.value}[self.op]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")
    title: str = Field(min_length=3, max_length=120)
    severity: Literal["page", "ticket", "info"]
    interval: Duration = 60.0  # how often it is evaluated
    window: Duration  # the range its SQL reads
    delay: Duration = 30.0  # the window ends this long before the evaluation (ingestion lag)
    for_: Duration = Field(0.0, alias="for")
    keep_firing_for: Duration = 0.0
    labels: tuple[str, ...]  # the columns that identify an instance (tenant first)
    threshold: Threshold
    min_volume: float = Field(0.0, ge=0)
    summary: str = Field(min_length=5, max_length=300)
    description: str = Field(min_length=5, max_length=2000)
    runbook: str  # alerts/runbooks/<runbook>.md
    sql: str = Field(min_length=10, max_length=20000)
    always: bool = False  # the watchdog: fires whenever it can be evaluated
    # rules whose firing explains this one: while one of them fires for the same values of the labels
    # both share (e.g. tenant and region), this rule does not fire (deploy/alertmanager/alertmanager.yml
    # has the same inhibit rules, for Grafana-evaluated alerts too)
    inhibited_by: tuple[str, ...] = ()

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [label for label in labels if label not in LABELS]
        if unknown:
            raise ValueError(f"unknown label(s) {unknown}; known: {list(LABELS)}")
        if len(set(labels)) != len(labels):
            raise ValueError("a label is named twice")
        return labels

    @field_validator("sql")
    @classmethod
    def _backend_macros_only(cls, sql: str) -> str:
        if _VARIABLE.search(sql):
            raise ValueError("dashboard variables ($name, ${name}) are not expanded for alerts")
        for m in re.finditer(r"\$__(\w+)", sql):
            if m.group(1) not in BACKEND_MACROS:
                raise ValueError(f"$__{m.group(1)} is not a macro Grafana's backend expands for alert rules")
        return sql

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if not self.always and (not self.labels or self.labels[0] != "tenant"):
            raise ValueError("labels: the first is tenant (every alert belongs to one app)")
        if self.interval < 5:
            raise ValueError("interval: at least 5s")
        if self.window < self.interval:
            raise ValueError("window: at least the interval (else rows fall between evaluations)")
        for field in ("summary", "description"):
            for name in _TEMPLATE.findall(getattr(self, field)):
                if name not in (*self.labels, *RESERVED) and not re.search(rf"\bAS {name}\b", self.sql):
                    raise ValueError(f"{field}: {{{{ {name} }}}} is not a column of the rule's SQL")
        if not (RUNBOOKS_DIR / f"{self.runbook}.md").is_file():
            raise ValueError(f"runbook: alerts/runbooks/{self.runbook}.md does not exist")
        return self

    def render(self, template: str, row: Mapping[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            v = row.get(m.group(1))
            if isinstance(v, float):
                return f"{v:.3g}" if abs(v) < 1 else f"{v:,.1f}".rstrip("0").rstrip(".")
            return str(v)

        return _TEMPLATE.sub(one, template)


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(rule)"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def load_rule(path: Path) -> Rule:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path.name}: cannot read: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path.name}: a rule is a mapping")
    try:
        rule = Rule.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{path.name} (rule {doc.get('id', '?')}): {_errors(exc)}") from exc
    if path.stem != rule.id:
        raise ConfigError(f"{path.name}: the file is named after its rule id ({rule.id}.yaml)")
    return rule


def load_rules(directory: Path = RULES_DIR) -> list[Rule]:
    """Every rule of ``directory``; ConfigError naming the file, rule and field of each problem."""
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise ConfigError(f"no alert rules in {directory}")
    problems, rules = [], []
    for path in paths:
        try:
            rules.append(load_rule(path))
        except ConfigError as exc:
            problems.append(str(exc))
    by_id = {r.id: r for r in rules}
    for rule in rules:
        for source in rule.inhibited_by:
            if source not in by_id or source == rule.id:
                problems.append(f"{rule.id}.yaml (rule {rule.id}): inhibited_by: no other rule {source!r}")
            elif not set(shared_labels(by_id[source], rule)) - {"tenant"}:
                problems.append(f"{rule.id}.yaml (rule {rule.id}): inhibited_by: {source} shares no label "
                                "but tenant with it, so it would mute it everywhere")
    if problems:
        raise ConfigError("invalid alert rules: " + " | ".join(problems))
    return rules


def shared_labels(source: Rule, target: Rule) -> tuple[str, ...]:
    """The labels an inhibition compares (Alertmanager's ``equal``)."""
    return tuple(label for label in target.labels if label in source.labels)
