"""The alert rules as Grafana alert-rule *file provisioning* (``apiVersion: 1``, loaded from
``<provisioning>/alerting/*.yaml``), for teams that let Grafana evaluate and route them instead of
``icewatch alerts run``. The shape is Grafana's ``pkg/services/provisioning/alerting/rules_types.go``;
``deploy/tools/grafana-validate --alert-rules`` checks a written file against it and against the
Go foundation SDK's alerting model.

Groups: Grafana evaluates every rule of a group on the group's interval, so there is one group per
distinct rule ``interval`` (``icewatch-30s``, ...), all in the dashboards' folder. Each rule is
A -> B -> C:

- A: the rule's SQL on the ClickHouse datasource over ``relativeTimeRange {from: window + delay,
  to: delay}`` (seconds), the window the evaluator reads. Grafana turns a table's string columns
  into instance labels and needs exactly one number per row, so the SQL is wrapped to return the
  label columns and ``value`` only, keeping the rows the evaluator keeps (volume at least
  ``min_volume``, value a finite number)::

      SELECT <labels>, toFloat64(r.value) AS value FROM (<rule sql>) AS r
      WHERE r.volume >= <min_volume> AND isFinite(toFloat64(r.value))

- B: reduce ``last`` (mode ``dropNN``): a no-op on a table's numbers, it names the value for
  templates (``$values.B``).
- C: threshold on B with the rule's operator: ``>`` gt, ``>=`` gte, ``<`` lt, ``<=`` lte. The
  inclusive types exist server-side since Grafana 11.6 (``pkg/expr/threshold.go``, grafana#99516;
  the Grafana 11.6 build of the foundation SDK lists them), so the comparison is exactly the
  evaluator's, boundary included.

States: no data is OK (no row crosses; the watchdog, ``always``, alerts on no data instead),
an execution error is Error. Labels: ``severity`` and ``icewatch_rule``; the SQL's label columns
are added by Grafana per instance.

Templates: ``{{ <label> }}`` becomes ``{{ $labels.<label> }}`` and ``{{ value }}`` becomes
``{{ printf "%.4g" $values.B.Value }}``. Any other column (volume, counts, last_error) never
reaches Grafana, and a number left blank would mislead, so the text naming it goes: a
parenthetical naming one is removed, then the text is cut into clauses (at ``. `` and at ``: ``
or ``; `` not followed by a capital letter, outside parentheses) and every clause naming one is
removed. If nothing is left, the rule's title and its labels (tenant aside) stand in.
``runbook_url`` points at the runbook served by icewatch (``--external-url``).

``$``: Grafana expands ``$VAR`` environment variables in a provisioning file's titles, labels
and other plain fields (``$$`` is a literal ``$``), stores ``model`` raw (so ``$__timeFilter``
survives; grafana#54293) and does not expand annotations (grafana#54975; ``$$`` there would
stay doubled), so nothing is escaped: ``$labels``/``$values`` appear in annotations only and
``export`` refuses a ``$`` in any interpolated field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from alerts.rules import RULES_DIR, Rule, format_duration, load_rules
from dashboards.grafana import CLICKHOUSE_TYPE, CLICKHOUSE_UID, FOLDER_TITLE

DEFAULT_OUT = Path("deploy/grafana/provisioning/alerting/icewatch.yaml")
DEFAULT_EXTERNAL_URL = "http://127.0.0.1:8080"
EXPR_UID = "__expr__"  # Grafana's datasource uid for server-side expressions
ORG_ID = 1
UID_PREFIX = "icewatch-"
MAX_UID = 40  # Grafana's limit on an alert rule uid
HEADER = "# Written by `icewatch alerts export-grafana` from alerts/rules/*.yaml: edit the rules and re-export.\n"
THRESHOLD_TYPES = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
VALUE_TEMPLATE = '{{ printf "%.4g" $values.B.Value }}'

_REF = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_PARENTHETICAL = re.compile(r"\s*\([^()]*\)")
_CLAUSE_END = re.compile(r"(?:\.|[:;](?!\s*[A-Z]))\s+")


def group_name(interval_s: float) -> str:
    return f"icewatch-{_duration(interval_s)}"


def _duration(seconds: float) -> str:
    return "0s" if seconds == 0 else format_duration(seconds)


def _seconds(value: float, what: str) -> int:
    if value != int(value):
        raise ValueError(f"{what}: Grafana's relativeTimeRange counts whole seconds, got {value}")
    return int(value)


def _number(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


def wrapped_sql(rule: Rule) -> str:
    """The rule's SQL reduced to its label columns and one number per row (see the module doc)."""
    inner = rule.sql.strip().rstrip(";").rstrip()
    columns = ", ".join([*rule.labels, "toFloat64(r.value) AS value"])  # r.value: the column, not the alias
    return (f"SELECT {columns}\nFROM (\n{inner}\n) AS r\n"
            f"WHERE r.volume >= {_number(rule.min_volume)} AND isFinite(toFloat64(r.value))")


def _hidden(text: str, rule: Rule) -> bool:
    return any(name not in rule.labels and name != "value" for name in _REF.findall(text))


def _clauses(text: str) -> list[tuple[str, str]]:
    """(clause, separator) pairs; separators inside parentheses do not cut."""
    out: list[tuple[str, str]] = []
    depth, start, pos = 0, 0, 0
    while pos < len(text):
        ch = text[pos]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif depth == 0 and ch in ".:;":
            m = _CLAUSE_END.match(text, pos)
            if m:
                out.append((text[start:pos + 1], text[pos + 1:m.end()]))
                start = pos = m.end()
                continue
        pos += 1
    if start < len(text):
        out.append((text[start:], ""))
    return out


def visible_text(template: str, rule: Rule) -> str:
    """``template`` without the parentheticals and clauses naming a column Grafana cannot see."""
    text = _PARENTHETICAL.sub(lambda m: "" if _hidden(m.group(0), rule) else m.group(0), template.strip())
    kept: list[list[str]] = []
    first_dropped = False
    for i, (clause, sep) in enumerate(_clauses(text)):
        if not _hidden(clause, rule):
            kept.append([clause, sep])
        elif i == 0:
            first_dropped = True
        elif kept and clause.endswith(".") and kept[-1][0][-1:] in (":", ";"):
            kept[-1][0] = kept[-1][0][:-1] + "."  # the sentence ended with the dropped clause
    out = "".join(clause + sep for clause, sep in kept).strip().rstrip(":;").strip()
    return out[:1].upper() + out[1:] if first_dropped else out


def translate(template: str, rule: Rule) -> str:
    """An icewatch template as a Grafana annotation template (see the module doc)."""
    shown = [label for label in rule.labels if label != "tenant"] or list(rule.labels)
    fallback = rule.title + (": " + ", ".join(f"{{{{ {label} }}}}" for label in shown) if shown else "")
    text = visible_text(template, rule) or fallback

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        return VALUE_TEMPLATE if name == "value" else f"{{{{ $labels.{name} }}}}"

    return _REF.sub(one, text)


def _plain(value: str, where: str) -> str:
    if "$" in value:
        raise ValueError(f"{where}: Grafana would expand the $ of {value!r} as an environment variable")
    return value


def rule_doc(rule: Rule, external_url: str = DEFAULT_EXTERNAL_URL) -> dict[str, Any]:
    uid = UID_PREFIX + rule.id
    if len(uid) > MAX_UID:
        raise ValueError(f"rule {rule.id}: uid {uid!r} is longer than Grafana's {MAX_UID} characters")
    where = f"rule {rule.id}"
    expr_ref = {"type": EXPR_UID, "uid": EXPR_UID}
    return {
        "uid": uid,
        "title": _plain(rule.title, f"{where}: title"),
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": _seconds(rule.window + rule.delay, f"{where}: window + delay"),
                                      "to": _seconds(rule.delay, f"{where}: delay")},
                "datasourceUid": CLICKHOUSE_UID,
                "model": {
                    "refId": "A",
                    "datasource": {"type": CLICKHOUSE_TYPE, "uid": CLICKHOUSE_UID},
                    "editorType": "sql",
                    "format": 1,  # table: string columns become the instance labels
                    "queryType": "table",
                    "rawSql": wrapped_sql(rule),
                },
            },
            {
                "refId": "B",
                "datasourceUid": EXPR_UID,
                "model": {"refId": "B", "datasource": expr_ref, "type": "reduce", "expression": "A",
                          "reducer": "last", "settings": {"mode": "dropNN"}},
            },
            {
                "refId": "C",
                "datasourceUid": EXPR_UID,
                "model": {"refId": "C", "datasource": expr_ref, "type": "threshold", "expression": "B",
                          "conditions": [{"evaluator": {"type": THRESHOLD_TYPES[rule.threshold.op],
                                                        "params": [rule.threshold.value]}}]},
            },
        ],
        "noDataState": "Alerting" if rule.always else "OK",
        "execErrState": "Error",
        "for": _duration(rule.for_),
        "keepFiringFor": _duration(rule.keep_firing_for),
        "annotations": {
            "summary": translate(rule.summary, rule),
            "description": translate(rule.description, rule),
            "runbook_url": _plain(f"{external_url.rstrip('/')}/runbooks/{rule.runbook}", f"{where}: runbook_url"),
        },
        "labels": {"severity": rule.severity, "icewatch_rule": rule.id},
        "isPaused": False,
    }


def export(rules: Iterable[Rule], external_url: str = DEFAULT_EXTERNAL_URL) -> dict[str, Any]:
    """The provisioning document: one group per evaluation interval, rules by id."""
    by_interval: dict[float, list[Rule]] = {}
    for rule in rules:
        by_interval.setdefault(rule.interval, []).append(rule)
    groups = []
    for interval in sorted(by_interval):
        groups.append({
            "orgId": ORG_ID,
            "name": group_name(interval),
            "folder": _plain(FOLDER_TITLE, "folder"),
            "interval": _duration(interval),
            "rules": [rule_doc(r, external_url) for r in sorted(by_interval[interval], key=lambda r: r.id)],
        })
    return {"apiVersion": 1, "groups": groups}


def render(rules: Sequence[Rule], external_url: str = DEFAULT_EXTERNAL_URL) -> str:
    """The file's text: the header and the document as block YAML (multi-line SQL as literal blocks)."""

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # no &anchors: every mapping written out where it is used

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    body = yaml.dump(export(rules, external_url), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100_000)
    return HEADER + body


def write(out_path: Path = DEFAULT_OUT, external_url: str = DEFAULT_EXTERNAL_URL,
          rules_dir: Path = RULES_DIR) -> Path:
    """Export the rules of ``rules_dir`` to ``out_path`` (ConfigError when a rule is invalid)."""
    text = render(load_rules(rules_dir), external_url)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    return out_path
