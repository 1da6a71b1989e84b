"""Loading alert rules (alerts/rules.py): every shipped rule loads; each kind of mistake is refused
with the file, the rule and the field named."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.rules import RULES_DIR, RUNBOOKS_DIR, load_rule, load_rules, parse_duration
from collector.errors import ConfigError

SHIPPED = sorted(RULES_DIR.glob("*.yaml"))


def test_every_shipped_rule_loads() -> None:
    rules = load_rules()
    assert len(rules) == len(SHIPPED) == 12
    assert [r.id for r in rules] == [p.stem for p in SHIPPED]
    for rule in rules:
        assert (RUNBOOKS_DIR / f"{rule.runbook}.md").is_file()
        assert rule.always or rule.labels[0] == "tenant"
    assert [r.id for r in rules if r.always] == ["watchdog"]


def _doc(rule_id: str = "stun-unreachable") -> dict[str, Any]:
    doc = yaml.safe_load((RULES_DIR / f"{rule_id}.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def _write(directory: Path, name: str, doc: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


Mistake = Callable[[dict[str, Any]], None]
MISTAKES: dict[str, tuple[Mistake, str, str]] = {  # name -> (break the rule, field named, what is said)
    "unknown label": (lambda d: d.update(labels=["tenant", "colo"]), "labels", r"unknown label\(s\) \['colo'\]"),
    "dashboard variable": (
        lambda d: d.update(sql=d["sql"].replace("client_region != ''", "client_region = '$region'")),
        "sql", r"dashboard variables"),
    "braced variable": (
        lambda d: d.update(sql=d["sql"].replace("client_region != ''", "client_region IN (${region:singlequote})")),
        "sql", r"dashboard variables"),
    "frontend macro": (lambda d: d.update(sql=d["sql"].replace("$__timeFilter(minute)", "$__conditionalAll(1, x)")),
                       "sql", r"\$__conditionalAll is not a macro"),
    "for without unit": (lambda d: d.update({"for": 30}), "for", r"write a duration with its unit"),
    "bad duration": (lambda d: d.update(window="10 minutes"), "window", r"not a duration"),
    "missing column in a template": (lambda d: d.update(summary="{{ nosuch }} calls from {{ region }}"),
                                     "summary", r"\{\{ nosuch \}\} is not a column"),
    "missing column in the description": (lambda d: d.update(description="see {{ blocked }}"), "description",
                                          r"\{\{ blocked \}\} is not a column"),
    "missing runbook": (lambda d: d.update(runbook="no-such-runbook"), "runbook",
                        r"alerts/runbooks/no-such-runbook\.md does not exist"),
    "tenant not first": (lambda d: d.update(labels=["region", "tenant"]), "labels", r"the first is tenant"),
    "unknown field": (lambda d: d.update(treshold=1), "treshold", r"Extra inputs are not permitted"),
    "window shorter than the interval": (lambda d: d.update(window="10s"), "window", r"at least the interval"),
    "bad operator": (lambda d: d.update(threshold={"op": "=>", "value": 1}), "threshold.op", r"'>'"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_mistake_is_refused_naming_file_rule_and_field(tmp_path: Path, name: str) -> None:
    breaks, field, said = MISTAKES[name]
    doc = _doc()
    breaks(doc)
    _write(tmp_path, "stun-unreachable.yaml", doc)
    with pytest.raises(ConfigError) as err:
        load_rules(tmp_path)
    text = str(err.value)
    assert text.startswith("invalid alert rules: stun-unreachable.yaml (rule stun-unreachable): "), text
    assert f"{field}: " in text, text
    assert re.search(said, text), text
    assert "Value error, " not in text


def test_a_file_not_named_after_its_rule_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "stun.yaml", _doc())
    with pytest.raises(ConfigError, match=r"stun\.yaml: the file is named after its rule id "
                                          r"\(stun-unreachable\.yaml\)"):
        load_rules(tmp_path)


def test_every_broken_file_is_named_at_once(tmp_path: Path) -> None:
    good = _doc("watchdog")
    _write(tmp_path, "watchdog.yaml", good)
    a = _doc("dtls-stall-spike")
    a["for"] = 120
    _write(tmp_path, "dtls-stall-spike.yaml", a)
    b = _doc("turn-log-silent")
    b["labels"] = ["tenant", "server"]
    _write(tmp_path, "turn-log-silent.yaml", b)
    with pytest.raises(ConfigError) as err:
        load_rules(tmp_path)
    text = str(err.value)
    assert "dtls-stall-spike.yaml (rule dtls-stall-spike): for: " in text
    assert "turn-log-silent.yaml (rule turn-log-silent): labels: " in text
    assert "watchdog" not in text


def test_files_that_are_not_rules_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: a rule is a mapping"):
        load_rule(tmp_path / "x.yaml")
    (tmp_path / "y.yaml").write_text("id: [unclosed\n")
    with pytest.raises(ConfigError, match=r"y\.yaml: cannot read"):
        load_rule(tmp_path / "y.yaml")
    with pytest.raises(ConfigError, match="no alert rules in"):
        load_rules(tmp_path / "empty")


def test_durations() -> None:
    assert [parse_duration(v) for v in ("0s", "30s", "2m", "1h", "1d", "500ms")] == [0, 30, 120, 3600, 86400, 0.5]
    for bad in (30, 1.5, "30", "2 m", "1h30m", "-1s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
