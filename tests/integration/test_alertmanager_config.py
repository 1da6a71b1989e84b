"""The shipped deploy/alertmanager/alertmanager.yml: valid for amtool 0.25, every rule's alerts
routed to the right receivers (amtool config routes test), inhibit rules whose `equal` labels both
sides carry, and the file itself running in the real Alertmanager (only its secret files, endpoint
URLs and group timings replaced): pages reach PagerDuty and Slack, inhibited alerts reach nobody,
the watchdog reaches the dead man's switch with its bearer token."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.alert import Alert
from alerts.notify.alertmanager import AlertmanagerNotifier
from tests.alertmanager import AMTOOL, WebhookReceiver, binary, get_alerts, start_alertmanager
from tests.services import REPO_ROOT, free_ports

pytestmark = pytest.mark.alertmanager

CONFIG = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULES = REPO_ROOT / "alerts" / "rules"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary(AMTOOL), *args], capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


def receivers_for(config: Path, *labels: str) -> list[str]:
    result = amtool("config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def rules() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(RULES.glob("*.yaml")):
        rule = yaml.safe_load(path.read_text())
        out[rule["id"]] = rule
    assert len(out) >= 10
    return out


def test_amtool_check_config_passes() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert " - 3 inhibit rules" in result.stdout and " - 5 receivers" in result.stdout


def test_amtool_check_config_fails_on_a_broken_copy(tmp_path: Path) -> None:
    broken = tmp_path / "am.yml"
    broken.write_text(CONFIG.read_text().replace("routing_key_file:", "routing_key_fil:"))
    result = amtool("check-config", str(broken))
    assert result.returncode == 1
    assert "field routing_key_fil not found" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["severity=page", "alertname=turn-server-down"], ["pagerduty", "slack-page"]),
        (["severity=page", "alertname=relay-gathering-failing", "tenant=acme"], ["pagerduty", "slack-page"]),
        (["severity=ticket", "alertname=turn-log-silent"], ["slack-ticket", "email-ticket"]),
        (["severity=ticket", "alertname=turn-allocation-failures"], ["slack-ticket", "email-ticket"]),
        (["alertname=watchdog", "severity=info"], ["deadmansswitch"]),
        (["alertname=watchdog", "severity=page"], ["deadmansswitch"]),  # continue: false, first match
        (["severity=info", "alertname=something-else"], ["slack-ticket"]),
        (["alertname=no-severity"], ["slack-ticket"]),
    ],
)
def test_routes(labels: list[str], expected: list[str]) -> None:
    assert receivers_for(CONFIG, *labels) == expected


def test_every_rule_is_routed_by_its_severity() -> None:
    expected = {"page": ["pagerduty", "slack-page"], "ticket": ["slack-ticket", "email-ticket"]}
    for rule_id, rule in rules().items():
        want = ["deadmansswitch"] if rule_id == "watchdog" else expected.get(rule["severity"], ["slack-ticket"])
        got = receivers_for(CONFIG, f"alertname={rule_id}", f"severity={rule['severity']}", "tenant=acme")
        assert got == want, rule_id


def test_tree_timings_and_secrets() -> None:
    text = CONFIG.read_text()
    config = yaml.safe_load(text)
    route = config["route"]
    assert route["group_by"] == ["alertname", "tenant", "turn_server", "region"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("10s", "1m", "4h")
    watchdog = route["routes"][0]
    assert watchdog["receiver"] == "deadmansswitch" and watchdog["repeat_interval"] == "1m"
    assert watchdog["continue"] is False
    # no secret inline: each comes from a file
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")
    assert not re.search(r"^\s*(routing_key|service_key|api_url|auth_password|credentials|password):", text, re.M)


def _alertnames(matchers: list[str]) -> list[str]:
    names: list[str] = []
    for m in matchers:
        found = re.fullmatch(r'alertname(=~?)"([^"]*)"', m)
        assert found, m
        names.extend(found.group(2).split("|"))
    return names


def test_inhibit_rules_name_real_rules_and_labels_both_sides_carry() -> None:
    """Alertmanager's `equal` treats a label missing on one side as different from a set one: an
    inhibit rule whose equal labels a target rule lacks never mutes it."""
    known = rules()
    config = yaml.safe_load(CONFIG.read_text())
    targets: set[str] = set()
    for inhibit in config["inhibit_rules"]:
        for name in _alertnames(inhibit["source_matchers"]) + _alertnames(inhibit["target_matchers"]):
            assert name in known, name
            missing = [label for label in inhibit["equal"] if label not in known[name]["labels"]]
            assert not missing, f"{name} has no {missing} label: the inhibit rule could never match it"
        targets.update(_alertnames(inhibit["target_matchers"]))
    assert targets == {"turn-allocation-failures", "relay-gathering-failing", "turn-log-silent", "ice-failure-spike",
                       "stun-unreachable"}


def test_every_inhibited_by_of_a_rule_is_an_inhibit_rule_of_alertmanager() -> None:
    """icewatch's evaluator applies a rule's `inhibited_by`; Alertmanager must mute the same pairs
    on the same labels (for alerts Grafana evaluates from the export)."""
    from alerts.rules import load_rules, shared_labels

    by_id = {r.id: r for r in load_rules()}
    config = yaml.safe_load(CONFIG.read_text())
    pairs = {(src, tgt): tuple(inhibit["equal"]) for inhibit in config["inhibit_rules"]
             for src in _alertnames(inhibit["source_matchers"]) for tgt in _alertnames(inhibit["target_matchers"])}
    wanted = [(src, rule.id) for rule in by_id.values() for src in rule.inhibited_by]
    assert wanted
    for src, tgt in wanted:
        assert (src, tgt) in pairs, f"alertmanager.yml does not mute {tgt} while {src} fires"
        assert set(pairs[(src, tgt)]) == set(shared_labels(by_id[src], by_id[tgt])), (src, tgt)


# -- the shipped file in the real Alertmanager


def shipped_for_test(tmp_path: Path, receiver: str) -> str:
    """The shipped config with only its secret files, endpoint URLs and group timings replaced."""
    config = yaml.safe_load(CONFIG.read_text())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "slack").write_text(receiver + "/slack")
    (secrets / "pd").write_text("test-routing-key-0123456789abcdef")
    (secrets / "smtp").write_text("smtp-password")
    (secrets / "dms").write_text("dms-token-0123")
    (smtp_port,) = free_ports(1)  # nothing listens: an e-mail would only fail in the log
    config["global"].update(
        slack_api_url_file=str(secrets / "slack"),
        smtp_auth_password_file=str(secrets / "smtp"),
        smtp_smarthost=f"127.0.0.1:{smtp_port}",
        smtp_require_tls=False,
    )
    config["route"].update(group_wait="1s", group_interval="1s")
    by_name = {r["name"]: r for r in config["receivers"]}
    pagerduty = by_name["pagerduty"]["pagerduty_configs"][0]
    pagerduty.update(routing_key_file=str(secrets / "pd"), url=receiver + "/pagerduty")
    dms = by_name["deadmansswitch"]["webhook_configs"][0]
    dms["url"] = receiver + "/dms"
    dms["http_config"]["authorization"]["credentials_file"] = str(secrets / "dms")
    return str(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture()
def shipped(tmp_path: Path) -> Iterator[tuple[str, WebhookReceiver]]:
    with WebhookReceiver() as rx, start_alertmanager(tmp_path, rx.url, config=shipped_for_test(tmp_path, rx.url)) as am:
        yield am, rx


def alert(name: str, severity: str, **labels: str) -> Alert:
    return Alert(
        {"alertname": name, "severity": severity, **labels},
        {"summary": f"{name} {labels}", "runbook_url": f"http://127.0.0.1:8080/alerts/runbooks/{name}"},
        datetime.now(UTC),
        None,
        f"http://127.0.0.1:8080/alerts/rules/{name}",
    )


def test_shipped_config_pages_and_inhibits_in_the_real_alertmanager(shipped: tuple[str, WebhookReceiver]) -> None:
    am, rx = shipped
    notifier = AlertmanagerNotifier([am])
    eu1 = {"tenant": "acme", "turn_server": "turn-eu-1", "region": "eu-west"}
    notifier.send([alert("turn-server-down", "page", transport="udp", **eu1)])
    time.sleep(0.5)  # the next evaluator round brings the consequences
    notifier.send(
        [
            alert("turn-allocation-failures", "ticket", **eu1),  # muted: same tenant and server
            alert("turn-log-silent", "ticket", **eu1),  # muted
            alert("relay-gathering-failing", "page", tenant="acme", region="eu-west"),  # muted: same region
            alert("relay-gathering-failing", "page", tenant="acme", region="us-east"),  # another region
            alert("turn-allocation-failures", "ticket", tenant="acme", turn_server="turn-eu-2", region="eu-west"),
            alert("turn-allocation-failures", "ticket", tenant="globex", turn_server="turn-eu-1", region="eu-west"),
        ]
    )

    def pd_for(name: str, region: str) -> Any:
        def match(p: Any) -> bool:
            return bool(p.get("routing_key") and f"{name} " in p["payload"]["summary"] and region in str(p))

        return match

    down = rx.wait_for(pd_for("turn-server-down", "eu-west"), timeout=30)
    assert down.path == "/pagerduty"
    event = down.json()
    assert event["routing_key"] == "test-routing-key-0123456789abcdef"
    assert event["event_action"] == "trigger" and event["payload"]["severity"] == "critical"
    assert event["links"] == [{"href": "http://127.0.0.1:8080/alerts/rules/turn-server-down", "text": "icewatch rule"}]
    rx.wait_for(pd_for("relay-gathering-failing", "us-east"), timeout=30)
    page = rx.wait_for(lambda p: p.get("channel") == "#oncall-page" and "turn-server-down" in str(p), timeout=30)
    attachment = page.json()["attachments"][0]
    assert attachment["title"] == "[FIRING] turn-server-down turn-eu-1 eu-west"
    assert attachment["title_link"] == "http://127.0.0.1:8080/alerts/rules/turn-server-down"
    assert "http://127.0.0.1:8080/alerts/runbooks/turn-server-down" in attachment["text"]
    rx.wait_for(lambda p: p.get("channel") == "#oncall-tickets" and "turn-eu-2" in str(p), timeout=30)
    rx.wait_for(lambda p: p.get("channel") == "#oncall-tickets" and "globex" in str(p), timeout=30)

    state = {(a["labels"]["alertname"], a["labels"]["tenant"], a["labels"].get("turn_server"),
              a["labels"]["region"]): a["status"] for a in get_alerts(am)}  # fmt: skip
    source = [a["fingerprint"] for a in get_alerts(am) if a["labels"]["alertname"] == "turn-server-down"]
    muted = [
        ("turn-allocation-failures", "acme", "turn-eu-1", "eu-west"),
        ("turn-log-silent", "acme", "turn-eu-1", "eu-west"),
        ("relay-gathering-failing", "acme", None, "eu-west"),
    ]
    for key in muted:
        assert state[key]["state"] == "suppressed" and state[key]["inhibitedBy"] == source, key
    assert sum(s["state"] == "active" for s in state.values()) == 4, state

    time.sleep(3)  # three more group intervals: the muted alerts reached nobody
    sent = " ".join(r.body.decode() for r in rx.received)
    assert "turn-log-silent" not in sent
    assert "relay-gathering-failing" in sent and "eu-west" in sent  # (the us-east one)
    for r in rx.received:
        text = r.body.decode()
        assert not ("relay-gathering-failing" in text and "us-east" not in text), text
        assert not ("turn-allocation-failures" in text and "turn-eu-1" in text and "acme" in text), text
    paths = sorted({r.path for r in rx.received})
    assert paths == ["/pagerduty", "/slack"], paths  # e-mail cannot reach its SMTP server here


def test_shipped_config_sends_the_watchdog_to_the_dead_mans_switch_only(shipped: tuple[str, WebhookReceiver]) -> None:
    am, rx = shipped
    AlertmanagerNotifier([am]).send([alert("watchdog", "info")])
    got = rx.wait_for(lambda p: p.get("receiver") == "deadmansswitch", timeout=30)
    assert got.path == "/dms"
    assert got.headers["authorization"] == "Bearer dms-token-0123"
    assert got.json()["alerts"][0]["labels"] == {"alertname": "watchdog", "severity": "info"}
    time.sleep(2)
    assert [r.path for r in rx.received] == ["/dms"]
