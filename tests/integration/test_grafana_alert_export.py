"""``icewatch alerts export-grafana``: the alert rules as Grafana alert-rule file provisioning.

The export of the real rules passes ``grafana-validate --alert-rules`` (the file shape of Grafana's
rules_types.go plus the Go foundation SDK's strict alerting model); broken variants of it fail with
the reason; the committed file is what the command writes; every rule's wrapped SQL, its macros
expanded, runs on chDB over a migrated store and returns the label columns as strings and one
number, keeping exactly the rows the evaluator keeps; templates name only what Grafana can see.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from alerts import grafana_export
from alerts.cli import alerts as alerts_cli
from alerts.evaluator import condition_rows
from alerts.grafana_export import DEFAULT_OUT, VALUE_TEMPLATE, export, render, translate, wrapped_sql
from alerts.rules import Rule, load_rules
from dashboards.grafana import CLICKHOUSE_UID, FOLDER_TITLE
from dashboards.macros import time_macros
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.grafana_validator import REPO, ValidatorBuildError, validate, validator_binary

RULES = load_rules()
BY_ID = {r.id: r for r in RULES}
COMMITTED = REPO / DEFAULT_OUT
STRING_TYPE = re.compile(r"^(LowCardinality\()?String\)?$")


@pytest.fixture(scope="module")
def validator() -> Path:
    try:
        return validator_binary()
    except ValidatorBuildError as exc:
        pytest.fail(f"the Grafana validator could not be built:\n{exc}", pytrace=False)


def _rules_of(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield group, rule


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


# --- the document --------------------------------------------------------------------------------

def test_one_group_per_interval_in_the_dashboards_folder() -> None:
    doc = export(RULES)
    assert doc["apiVersion"] == 1
    intervals = sorted({r.interval for r in RULES})
    assert [g["name"] for g in doc["groups"]] == [grafana_export.group_name(i) for i in intervals]
    for group in doc["groups"]:
        assert group["folder"] == FOLDER_TITLE and group["orgId"] == 1
        assert isinstance(group["interval"], str)
        for rule in group["rules"]:
            assert grafana_export.group_name(BY_ID[rule["labels"]["icewatch_rule"]].interval) == group["name"]
    assert sorted(r["labels"]["icewatch_rule"] for _, r in _rules_of(doc)) == sorted(BY_ID)


def test_rule_shape() -> None:
    doc = export(RULES, external_url="https://icewatch.example.com/")
    for _, out in _rules_of(doc):
        rule = BY_ID[out["labels"]["icewatch_rule"]]
        assert out["uid"] == f"icewatch-{rule.id}" and len(out["uid"]) <= 40
        assert out["title"] == rule.title and out["condition"] == "C"
        a, b, c = out["data"]
        assert a["relativeTimeRange"] == {"from": int(rule.window + rule.delay), "to": int(rule.delay)}
        assert a["datasourceUid"] == CLICKHOUSE_UID and a["model"]["rawSql"] == wrapped_sql(rule)
        assert (a["model"]["format"], a["model"]["queryType"], a["model"]["editorType"]) == (1, "table", "sql")
        assert (b["datasourceUid"], b["model"]["type"], b["model"]["expression"]) == ("__expr__", "reduce", "A")
        assert (c["datasourceUid"], c["model"]["type"], c["model"]["expression"]) == ("__expr__", "threshold", "B")
        assert c["model"]["conditions"] == [{"evaluator": {"type": grafana_export.THRESHOLD_TYPES[rule.threshold.op],
                                                           "params": [rule.threshold.value]}}]
        assert out["noDataState"] == ("Alerting" if rule.always else "OK") and out["execErrState"] == "Error"
        assert out["labels"] == {"severity": rule.severity, "icewatch_rule": rule.id}
        assert out["annotations"]["runbook_url"] == f"https://icewatch.example.com/runbooks/{rule.runbook}"
    turn_down = next(r for _, r in _rules_of(doc) if r["uid"] == "icewatch-turn-server-down")
    assert (turn_down["for"], turn_down["keepFiringFor"]) == ("10s", "45s")
    assert next(r for _, r in _rules_of(doc) if r["uid"] == "icewatch-watchdog")["for"] == "0s"


def test_inclusive_operators_map_to_grafanas_inclusive_types() -> None:
    assert grafana_export.THRESHOLD_TYPES == {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


# --- templates -----------------------------------------------------------------------------------

def test_annotations_name_only_labels_and_the_value() -> None:
    for _, out in _rules_of(export(RULES)):
        rule = BY_ID[out["labels"]["icewatch_rule"]]
        for key in ("summary", "description"):
            text = out["annotations"][key]
            assert text.strip(), (rule.id, key)
            for ref in re.findall(r"\{\{.*?\}\}", text):
                assert ref == VALUE_TEMPLATE or ref in {f"{{{{ $labels.{label} }}}}" for label in rule.labels}, \
                    (rule.id, key, ref)


def _templated(summary: str, description: str = "Something happened to {{ region }}.") -> Rule:
    """A rule with labels tenant, turn_server, region, the given templates and hidden columns."""
    return BY_ID["turn-allocation-failures"].model_copy(update={"summary": summary, "description": description})


V = VALUE_TEMPLATE
TRANSLATIONS = {
    # labels and the value translate; a parenthetical naming a hidden column goes
    "TURN {{ turn_server }} ({{ region }}): {{ value }} of allocations fail ({{ failed }} of {{ volume }})":
        f"TURN {{{{ $labels.turn_server }}}} ({{{{ $labels.region }}}}): {V} of allocations fail",
    # a clause naming one goes (cut at ": " before a lower-case word or a template)
    "TURN {{ turn_server }} unreachable: {{ failed }} of {{ volume }} vantage points fail":
        "TURN {{ $labels.turn_server }} unreachable",
    "{{ failed }} of {{ volume }} calls from {{ region }} stalled: something drops DTLS (or its large packets).":
        "Something drops DTLS (or its large packets).",
    # a sentence naming one goes; the clause before it then ends the sentence
    "The whole pipeline (collector, Kafka): p90 {{ value }} s over {{ volume }} results. Alerts are behind.":
        "The whole pipeline (collector, Kafka). Alerts are behind.",
    # ": " before a capital introduces a name, not a clause: the sentence goes whole
    "{{ failed }} calls had errors on their stun: URLs and no candidate. Calls fall back to relays.":
        "Calls fall back to relays.",
    "Clients of {{ turn_server }} lose relays over {{ region }}; {{ failed }} calls failed.":
        "Clients of {{ $labels.turn_server }} lose relays over {{ $labels.region }}.",
    # nothing left: the title and the labels (tenant aside)
    "No log line for 5 minutes while {{ volume }} probes succeeded":
        "TURN allocations failing: {{ $labels.turn_server }}, {{ $labels.region }}",
    # no hidden column: unchanged but for the syntax
    "icewatch alerting is alive for {{ tenant }}": "icewatch alerting is alive for {{ $labels.tenant }}",
}


@pytest.mark.parametrize("template", sorted(TRANSLATIONS))
def test_translation(template: str) -> None:
    rule = _templated(template)
    assert rule.title == "TURN allocations failing"
    assert translate(template, rule) == TRANSLATIONS[template]


def test_a_dollar_grafana_would_expand_is_refused() -> None:
    rule = BY_ID["watchdog"].model_copy(update={"title": "Costs $HOME"})
    with pytest.raises(ValueError, match=r"rule watchdog: title: Grafana would expand the \$"):
        export([rule])


# --- the committed file and the command ----------------------------------------------------------

def test_committed_file_is_what_the_command_writes(tmp_path: Path) -> None:
    out = tmp_path / "icewatch.yaml"
    result = CliRunner().invoke(alerts_cli, ["export-grafana", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert COMMITTED.is_file(), f"{DEFAULT_OUT} is not committed: run `icewatch alerts export-grafana`"
    assert out.read_text() == COMMITTED.read_text(), "re-run `icewatch alerts export-grafana`"
    assert out.read_text() == render(RULES)
    defaults = {p.name: p.default for p in alerts_cli.commands["export-grafana"].params}
    assert defaults == {"out": DEFAULT_OUT, "external_url": grafana_export.DEFAULT_EXTERNAL_URL}


# --- Grafana's model -----------------------------------------------------------------------------

def test_real_export_passes_the_validator(validator: Path) -> None:
    result = validate(["--alert-rules", COMMITTED])
    assert (result.returncode, result.stdout) == (0, f"{COMMITTED}: ok\n"), result.stdout + result.stderr


DELETE = object()
G0R0 = "groups[0].rules[0]"

# (path into the export, new value or DELETE, the problem lines expected among the output)
BROKEN: dict[str, tuple[tuple[str | int, ...], object, list[str]]] = {
    "interval-number": (("groups", 0, "interval"), 10,
                        ["file: groups[0]: interval must be a duration string such as 1m, got number 10"]),
    "interval-not-duration": (("groups", 0, "interval"), "10 seconds",
                              ['file: groups[0]: interval "10 seconds" is not a duration']),
    "condition-unknown-refid": (("groups", 0, "rules", 0, "condition"), "D",
                                [f'file: {G0R0}: condition string "D" is not the refId of a query of the rule']),
    "condition-missing": (("groups", 0, "rules", 0, "condition"), DELETE,
                          [f"file: {G0R0}: condition is required",
                           f"grafana: {G0R0}: condition: required field is missing from input"]),
    "relative-time-range-string": (
        ("groups", 0, "rules", 0, "data", 0, "relativeTimeRange", "from"), "77",
        [f'file: {G0R0}.data[0]: relativeTimeRange.from must be whole seconds, got string "77"',
         f"grafana: {G0R0}: data[0].relativeTimeRange.from: json: cannot unmarshal string"]),
    "relative-time-range-missing": (("groups", 0, "rules", 0, "data", 0, "relativeTimeRange"), DELETE,
                                    [f"file: {G0R0}.data[0]: relativeTimeRange is required for a datasource query"]),
    "unknown-rule-field": (("groups", 0, "rules", 0, "owner"), "sre",
                           [f'file: {G0R0}: unknown field "owner" (Grafana ignores it)',
                            f"grafana: {G0R0}: Rule: unexpected field 'owner'"]),
    # The HTTP API's name in a file: Grafana's file loader would drop it silently; the SDK knows it.
    "api-field-name-in-file": (("groups", 0, "rules", 0, "keep_firing_for"), "45s",
                               [f'file: {G0R0}: unknown field "keep_firing_for" (Grafana ignores it)']),
    "unknown-reduce-field": (("groups", 0, "rules", 0, "data", 1, "model", "reduceer"), "last",
                             [f"grafana: {G0R0}: data[1].model.TypeReduce: unexpected field 'reduceer'"]),
    "expression-not-on-expr": (("groups", 0, "rules", 0, "data", 2, "datasourceUid"), CLICKHOUSE_UID,
                               [f'file: {G0R0}.data[2]: the model is an expression but datasourceUid is '
                                f'"{CLICKHOUSE_UID}", want "__expr__"']),
    "threshold-type": (("groups", 0, "rules", 0, "data", 2, "model", "conditions", 0, "evaluator", "type"), "ge",
                       [f"file: {G0R0}.data[2]: conditions[0].evaluator.type must be one of"]),
    "threshold-input": (("groups", 0, "rules", 0, "data", 2, "model", "expression"), "Z",
                        [f'file: {G0R0}.data[2]: expression input string "Z" is not the refId']),
    "no-data-state": (("groups", 0, "rules", 0, "noDataState"), "Ok",
                      [f'file: {G0R0}: noDataState must be one of [OK Alerting NoData KeepLast], got string "Ok"']),
    "for-number": (("groups", 0, "rules", 0, "for"), 10,
                   [f"file: {G0R0}: for must be a duration string such as 1m, got number 10",
                    f"grafana: {G0R0}: for: json: cannot unmarshal number"]),
    "duplicate-uid": (("groups", 1, "rules", 0, "uid"), "icewatch-turn-server-down",
                      ['file: groups[1].rules[0]: uid "icewatch-turn-server-down" already used by groups[0].rules[0]']),
    "label-dollar": (("groups", 0, "rules", 0, "labels", "severity"), "$SEVERITY",
                     [f'icewatch: {G0R0}.labels.severity: "$SEVERITY": Grafana expands $NAME']),
    "clickhouse-builder": (("groups", 0, "rules", 0, "data", 0, "model", "editorType"), "builder",
                           [f'icewatch: {G0R0}.data[0].model: ClickHouse target editorType is "builder", want "sql"']),
}


def _mutated(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(export(RULES))
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_export_fails_with_the_reason(validator: Path, tmp_path: Path, name: str) -> None:
    where, value, problems = BROKEN[name]
    path = _write(tmp_path, name, _mutated(where, value))
    result = validate(["--alert-rules", path])
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), result.stdout
    for problem in problems:
        assert any(line.startswith(f"{path}: {problem}") for line in lines), f"{problem!r} not in:\n{result.stdout}"


def test_the_unmutated_document_passes(validator: Path, tmp_path: Path) -> None:
    """The broken variants differ from a passing document by their mutation only."""
    path = _write(tmp_path, "plain", _mutated(("apiVersion",), 1))
    assert validate(["--alert-rules", path]).returncode == 0


# --- the SQL Grafana runs ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbSink]:
    sink = ChdbSink(tmp_path_factory.mktemp("alert-export-store"))
    try:
        migrate(sink)
        yield sink
    finally:
        sink.close()


def _grafana_sql(rule: Rule, now: datetime) -> str:
    """The wrapped SQL with the macros expanded for the rule's relativeTimeRange, as the plugin does."""
    end = now - timedelta(seconds=rule.delay)
    return time_macros(wrapped_sql(rule), end - timedelta(seconds=rule.window), end, rule.interval)


@pytest.mark.parametrize("rule_id", sorted(BY_ID))
def test_wrapped_sql_returns_string_labels_and_one_number(store: ChdbSink, rule_id: str) -> None:
    rule = BY_ID[rule_id]
    table = store.query_table(_grafana_sql(rule, datetime.now(UTC)), {})
    names = [name for name, _ in table.columns]
    assert names == [*rule.labels, "value"]
    for name, typ in table.columns[:-1]:
        assert STRING_TYPE.match(typ), f"{rule_id}: label {name} is {typ}"
    assert table.columns[-1][1] == "Float64"


def test_wrapped_sql_keeps_the_rows_the_evaluator_keeps(store: ChdbSink) -> None:
    rows = [("a", "eu", 0.5, 10), ("a", "us", float("nan"), 10), ("b", "eu", 0.9, 2), ("b", "us", 0.1, 3),
            ("c", "eu", float("inf"), 50)]
    values = ", ".join(f"('{t}', '{r}', {v!r}, {n})" for t, r, v, n in rows)  # nan, inf: ClickHouse literals
    rule = BY_ID["ice-failure-spike"].model_copy(update={
        "min_volume": 3.0,
        "sql": ("SELECT c1 AS tenant, c2 AS region, toFloat64(c3) AS value, c4 AS volume "
                f"FROM values('c1 String, c2 String, c3 Float64, c4 UInt32', {values}) "
                "WHERE $__toTime > $__fromTime"),
    })
    table = store.query_table(_grafana_sql(rule, datetime.now(UTC)), {})
    got = sorted((str(r[0]), str(r[1]), float(r[2])) for r in table.rows)
    raw = [{"tenant": t, "region": r, "value": v, "volume": n} for t, r, v, n in rows]
    kept = [(labels["tenant"], labels["region"], row["value"])
            for labels, row in condition_rows(rule.model_copy(update={"always": True}), raw)]
    assert got == sorted(kept) == [("a", "eu", 0.5), ("b", "us", 0.1)]
