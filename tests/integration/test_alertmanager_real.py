"""AlertmanagerNotifier against Debian's real Alertmanager 0.25: what a webhook receiver behind it
actually gets. A firing alert arrives once with its labels, annotations and generatorURL (re-sends
are deduplicated by labels), ends_at resolves it, every Alertmanager of an HA set gets it, and
one of them down does not stop delivery. The binary missing fails the test (never a skip)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.alert import Alert
from alerts.notify.alertmanager import AlertmanagerNotifier
from collector.errors import Unavailable
from tests.alertmanager import WebhookReceiver, get_alerts, start_alertmanager
from tests.services import ServiceError, free_ports

pytestmark = pytest.mark.alertmanager

LABELS = {
    "alertname": "turn-server-down",
    "severity": "page",
    "tenant": "acme",
    "turn_server": "turn-eu-1",
    "region": "eu-west",
    "transport": "udp",
}
ANNOTATIONS = {
    "summary": "TURN turn-eu-1 (eu-west) unreachable over udp: 3 of 3 vantage points fail",
    "runbook_url": "http://127.0.0.1:8080/runbooks/turn-server-down",
}
GENERATOR = "http://127.0.0.1:8080/alerts#turn-server-down"  # as alerts/evaluator.py builds it


def is_turn_down(status: str) -> Any:
    def match(payload: Any) -> bool:
        return bool(
            payload.get("status") == status
            and any(a["labels"].get("alertname") == "turn-server-down" for a in payload.get("alerts", []))
        )

    return match


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


def test_firing_deduplicated_then_resolved(tmp_path: Path, receiver: WebhookReceiver) -> None:
    with start_alertmanager(tmp_path, receiver.url + "/am-webhook", group_wait="1s") as base:
        notifier = AlertmanagerNotifier([base])
        started = datetime.now(UTC).replace(microsecond=0)
        firing = Alert(LABELS, ANNOTATIONS, started, None, GENERATOR)

        sent = time.monotonic()
        notifier.send([firing])
        got = receiver.wait_for(is_turn_down("firing"), timeout=30)
        delivery_s = got.at - sent
        print(f"delivery through Alertmanager (group_wait 1s): {delivery_s:.3f} s on {datetime.now(UTC):%Y-%m-%d}")
        assert 0.9 <= delivery_s < 10, delivery_s  # group_wait holds it ~1 s; more means something stalled

        assert got.path == "/am-webhook"
        body = got.json()
        assert body["version"] == "4" and body["receiver"] == "test-webhook"
        assert body["groupLabels"] == {"alertname": "turn-server-down"}
        (sent_alert,) = body["alerts"]
        assert sent_alert["status"] == "firing"
        assert sent_alert["labels"] == LABELS
        assert sent_alert["annotations"] == ANNOTATIONS
        assert sent_alert["generatorURL"] == GENERATOR
        assert sent_alert["startsAt"] == started.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert sent_alert["endsAt"] == "0001-01-01T00:00:00Z"  # Alertmanager's zero time while firing

        (held,) = get_alerts(base)
        assert held["labels"] == LABELS and held["annotations"] == ANNOTATIONS
        assert held["status"]["state"] == "active" and held["generatorURL"] == GENERATOR
        assert held["receivers"] == [{"name": "test-webhook"}]

        # The evaluator re-sends firing alerts every round: Alertmanager keeps one alert (same
        # labels) and notifies no more. 3 re-sends over > 3 group_intervals, then 2 more intervals.
        for _ in range(3):
            time.sleep(1.2)
            notifier.send([firing])
        time.sleep(2.5)
        assert len(receiver.received) == 1, receiver.payloads()
        assert len(get_alerts(base)) == 1

        ended = datetime.now(UTC)
        resolved_at = time.monotonic()
        notifier.send([Alert(LABELS, ANNOTATIONS, started, ended, GENERATOR)])
        done = receiver.wait_for(is_turn_down("resolved"), timeout=30)
        print(f"resolve through Alertmanager (group_interval 1s): {done.at - resolved_at:.3f} s")
        body = done.json()
        (resolved,) = body["alerts"]
        assert resolved["status"] == "resolved" and resolved["labels"] == LABELS
        assert resolved["generatorURL"] == GENERATOR
        assert resolved["endsAt"].startswith(ended.strftime("%Y-%m-%dT%H:%M:%S"))
        assert len(receiver.received) == 2  # one firing, one resolved: nothing else
        assert get_alerts(base) == []  # a resolved alert is no longer listed


def test_every_alertmanager_gets_the_alert_and_one_down_does_not_stop_delivery(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    (dead_port,) = free_ports(1)
    dead = f"http://127.0.0.1:{dead_port}"
    alert = Alert(LABELS, ANNOTATIONS, datetime.now(UTC), None, GENERATOR)
    with (
        start_alertmanager(tmp_path, receiver.url + "/a") as am_a,
        start_alertmanager(tmp_path, receiver.url + "/b") as am_b,
    ):
        AlertmanagerNotifier([am_a, am_b]).send([alert])
        # not clustered here, so each one notifies: both got the alert
        receiver.wait_for(lambda p: any(r.path == "/a" for r in receiver.received), timeout=30)
        receiver.wait_for(lambda p: any(r.path == "/b" for r in receiver.received), timeout=30)
        assert [a["labels"] for a in get_alerts(am_a)] == [LABELS]
        assert [a["labels"] for a in get_alerts(am_b)] == [LABELS]

        other = Alert({**LABELS, "turn_server": "turn-eu-2"}, ANNOTATIONS, datetime.now(UTC), None, GENERATOR)
        AlertmanagerNotifier([dead, am_b]).send([other])  # one down: delivered, no exception
        assert sorted(a["labels"]["turn_server"] for a in get_alerts(am_b)) == ["turn-eu-1", "turn-eu-2"]
        assert [a["labels"]["turn_server"] for a in get_alerts(am_a)] == ["turn-eu-1"]

    # both stopped now: nothing accepts, and the reasons name each URL
    with pytest.raises(Unavailable) as info:
        AlertmanagerNotifier([am_a, am_b], timeout=2).send([alert])
    assert f"{am_a}/api/v2/alerts: connection refused" in str(info.value)
    assert f"{am_b}/api/v2/alerts: connection refused" in str(info.value)


def test_alertmanager_refuses_what_the_notifier_would_have_refused(tmp_path: Path, receiver: WebhookReceiver) -> None:
    """The checks in alerts/notify/payload.py mirror real refusals: posted raw, AM answers 400."""
    from alerts.notify.transport import DeliveryFailed, post_json

    with start_alertmanager(tmp_path, receiver.url) as base:
        for body, words in [
            (b'[{"labels":{"turn-server":"x"}}]', 'invalid label set: invalid name \\"turn-server\\"'),
            (b'[{"labels":{"a":"x"},"annotations":{"runbook-url":"x"}}]', "invalid annotations"),
            (b'[{"labels":{"alertname":""}}]', "at least one label pair required"),
            (
                b'[{"labels":{"a":"x"},"startsAt":"2026-11-26T04:00:00Z","endsAt":"2026-11-26T03:00:00Z"}]',
                "start time must be before end time",
            ),
        ]:
            with pytest.raises(DeliveryFailed, match="HTTP 400") as info:
                post_json(f"{base}/api/v2/alerts", body, timeout=5)
            assert words in str(info.value)


def test_a_missing_alertmanager_binary_fails_not_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        pytest.raises(ServiceError, match="prometheus-alertmanager not found"),
        start_alertmanager(tmp_path, "http://x"),
    ):
        pass
