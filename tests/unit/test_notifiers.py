"""Notifiers over real HTTP to in-process receivers: the exact JSON sent, batching, label checks
before anything is sent, the failure reasons of every Alertmanager, HA delivery with one down,
the webhook signature and its verification, and the settings that build them."""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from alerts.alert import Alert
from alerts.notify.alertmanager import AlertmanagerNotifier, alerts_endpoint
from alerts.notify.build import notifiers_from
from alerts.notify.webhook import WebhookNotifier, sign, verify_signature
from collector.errors import ConfigError, InvalidInput, Unavailable
from collector.settings import load_settings
from tests.alertmanager import WebhookReceiver
from tests.services import free_ports

T0 = datetime(2026, 11, 26, 4, 5, 6, 789000, tzinfo=UTC)
SECRET = "s3cret-of-the-hook-0123456789"
LABELS = {
    "alertname": "turn-server-down",
    "severity": "page",
    "tenant": "acme",
    "turn_server": "turn-eu-1",
    "region": "eu-west",
}
ANNOTATIONS = {"summary": "TURN turn-eu-1 (eu-west) unreachable over udp", "runbook_url": "http://h/runbooks/x"}
URL = "http://127.0.0.1:8080/alerts/turn-server-down"


def alert(ends_at: datetime | None = None, **labels: str) -> Alert:
    return Alert({**LABELS, **labels}, ANNOTATIONS, T0, ends_at, URL)


@pytest.fixture()
def am() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


@pytest.fixture()
def am2() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    (port,) = free_ports(1)
    return f"http://127.0.0.1:{port}"


# -- Alertmanager: payload


def test_firing_alert_is_posted_as_this_exact_json(am: WebhookReceiver) -> None:
    AlertmanagerNotifier([am.url]).send([alert()])
    (req,) = am.received
    assert req.path == "/api/v2/alerts"
    assert req.headers["content-type"] == "application/json"
    assert req.body == (
        b'[{"labels":{"alertname":"turn-server-down","severity":"page","tenant":"acme","turn_server":"turn-eu-1",'
        b'"region":"eu-west"},"annotations":{"summary":"TURN turn-eu-1 (eu-west) unreachable over udp",'
        b'"runbook_url":"http://h/runbooks/x"},"startsAt":"2026-11-26T04:05:06.789Z",'
        b'"generatorURL":"http://127.0.0.1:8080/alerts/turn-server-down"}]'
    )


def test_resolved_alert_carries_ends_at_in_utc(am: WebhookReceiver) -> None:
    cet = timezone(timedelta(hours=1))
    resolved = Alert(LABELS, {}, T0.astimezone(cet), datetime(2026, 11, 26, 6, 0, 0, tzinfo=cet), "")
    AlertmanagerNotifier([am.url + "/"]).send([resolved])
    (req,) = am.received
    assert req.json() == [
        {
            "labels": LABELS,
            "annotations": {},
            "startsAt": "2026-11-26T04:05:06.789Z",
            "endsAt": "2026-11-26T05:00:00.000Z",
        }
    ]


def test_non_ascii_values_are_sent_as_utf8(am: WebhookReceiver) -> None:
    AlertmanagerNotifier([am.url]).send([alert(region="são-paulo")])
    assert "são-paulo".encode() in am.received[0].body
    assert am.received[0].json()[0]["labels"]["region"] == "são-paulo"


def test_nothing_to_send_sends_nothing(am: WebhookReceiver) -> None:
    AlertmanagerNotifier([am.url]).send([])
    assert am.received == []


def test_big_lists_are_split_in_bounded_batches_to_every_alertmanager(
    am: WebhookReceiver, am2: WebhookReceiver
) -> None:
    alerts = [alert(turn_server=f"turn-{i}") for i in range(1201)]
    AlertmanagerNotifier([am.url, am2.url], max_batch=500).send(alerts)
    for rx in (am, am2):
        sizes = [len(p) for p in rx.payloads()]
        assert sizes == [500, 500, 201]
        sent = [a["labels"]["turn_server"] for p in rx.payloads() for a in p]
        assert sent == [f"turn-{i}" for i in range(1201)]


def test_the_default_batch_is_bounded(am: WebhookReceiver) -> None:
    AlertmanagerNotifier([am.url]).send([alert(turn_server=f"t{i}") for i in range(501)])
    assert [len(p) for p in am.payloads()] == [500, 1]


# -- Alertmanager: what it would refuse is refused before anything is sent


@pytest.mark.parametrize(
    ("bad", "path", "words"),
    [
        (Alert({**LABELS, "turn-server": "x"}, {}, T0, None, URL), "alerts[1].labels", "'turn-server'"),
        (Alert({**LABELS, "1st": "x"}, {}, T0, None, URL), "alerts[1].labels", "'1st'"),
        (Alert({**LABELS, "": "x"}, {}, T0, None, URL), "alerts[1].labels", "''"),
        (Alert(LABELS, {"runbook-url": "x"}, T0, None, URL), "alerts[1].annotations", "'runbook-url'"),
        (Alert({**LABELS, "region": "eu-\udc80"}, {}, T0, None, URL), "alerts[1].labels", "not valid UTF-8"),
        (Alert(LABELS, {"summary": 3}, T0, None, URL), "alerts[1].annotations", "int value"),  # type: ignore[dict-item]
        (Alert({}, {}, T0, None, URL), "alerts[1].labels", "at least one label"),
        (Alert({"alertname": ""}, {}, T0, None, URL), "alerts[1].labels", "at least one label"),
        (Alert(LABELS, {}, T0.replace(tzinfo=None), None, URL), "alerts[1].starts_at", "timezone-aware"),
        (Alert(LABELS, {}, T0, T0 - timedelta(seconds=1), URL), "alerts[1].ends_at", "before starts_at"),
        (Alert(LABELS, {}, T0, None, "/alerts/x"), "alerts[1].generator_url", "absolute"),
        (Alert(LABELS, {}, T0, None, "http://h/a b"), "alerts[1].generator_url", "absolute"),
    ],
)
def test_invalid_alerts_raise_before_sending(am: WebhookReceiver, bad: Alert, path: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        AlertmanagerNotifier([am.url]).send([alert(), bad])
    assert info.value.path == path
    assert words in info.value.message
    assert am.received == []


def test_label_names_alertmanager_takes_are_accepted(am: WebhookReceiver) -> None:
    AlertmanagerNotifier([am.url]).send([Alert({"_x": "1", "a_B9": "", "Z": "z"}, {"_a1": "v"}, T0, T0, "")])
    assert am.payloads()[0][0]["labels"] == {"_x": "1", "a_B9": "", "Z": "z"}


# -- Alertmanager: failures


def test_no_alertmanager_accepting_raises_unavailable_with_each_reason(am: WebhookReceiver) -> None:
    am.status, am.answer = 500, b'"store\n failed"'
    down = refused_url()
    with pytest.raises(Unavailable) as info:
        AlertmanagerNotifier([down, am.url]).send([alert()])
    msg = str(info.value)
    assert msg.startswith("no Alertmanager accepted 1 alert(s): ")
    assert f"{down}/api/v2/alerts: connection refused" in msg
    assert f'{am.url}/api/v2/alerts: HTTP 500: "store failed"' in msg


def test_one_of_two_alertmanagers_down_still_delivers(am: WebhookReceiver, caplog: pytest.LogCaptureFixture) -> None:
    down = refused_url()
    with caplog.at_level(logging.WARNING, logger="alerts.notify.alertmanager"):
        AlertmanagerNotifier([down, am.url]).send([alert()])
    assert [p[0]["labels"] for p in am.payloads()] == [LABELS]
    assert f"{down}/api/v2/alerts: connection refused" in caplog.text
    assert "1 of 2 Alertmanagers" in caplog.text


def test_refusal_of_a_bad_request_is_a_reason(am: WebhookReceiver) -> None:
    am.status, am.answer = 400, b'"invalid label set"'
    with pytest.raises(Unavailable, match=r"HTTP 400: \"invalid label set\""):
        AlertmanagerNotifier([am.url]).send([alert()])


def test_a_batch_no_alertmanager_takes_fails_the_send(am: WebhookReceiver, am2: WebhookReceiver) -> None:
    am.statuses = [200, 503]
    am2.status = 500
    with pytest.raises(Unavailable) as info:
        AlertmanagerNotifier([am.url, am2.url], max_batch=2).send([alert(turn_server=f"t{i}") for i in range(5)])
    msg = str(info.value)
    assert "(batch 2 of 3)" in msg
    assert f"{am.url}/api/v2/alerts: HTTP 503" in msg and f"{am2.url}/api/v2/alerts: HTTP 500" in msg
    # the second AM failed batch 1 and was not asked again; batch 3 was not sent
    assert [len(p) for p in am.payloads()] == [2, 2]
    assert [len(p) for p in am2.payloads()] == [2]


def test_a_silent_alertmanager_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(Unavailable, match="timed out"):
            AlertmanagerNotifier([url], timeout=0.3).send([alert()])


def test_a_redirect_is_not_followed(am: WebhookReceiver) -> None:
    am.status = 302
    with pytest.raises(Unavailable, match=r"HTTP 302 redirect to .* \(not followed\)"):
        AlertmanagerNotifier([am.url]).send([alert()])
    assert len(am.received) == 1


@pytest.mark.parametrize(
    ("urls", "words"),
    [
        ([], "at least one"),
        (["ftp://am:9093"], "http:// or https://"),
        (["am:9093"], "http:// or https://"),
        (["http://user:pw@am:9093"], "credentials"),
        (["http://am:9093", "http://am:9093/"], "duplicates"),
        ("http://am:9093", "one string"),
    ],
)
def test_bad_alertmanager_urls_are_config_errors(urls: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        AlertmanagerNotifier(urls)
    assert "pw" not in str(info.value)


def test_endpoint_keeps_a_route_prefix() -> None:
    assert alerts_endpoint("http://am:9093") == "http://am:9093/api/v2/alerts"
    assert alerts_endpoint("https://h/alertmanager/") == "https://h/alertmanager/api/v2/alerts"
    assert alerts_endpoint("http://am:9093/api/v2/alerts") == "http://am:9093/api/v2/alerts"


# -- webhook


def test_webhook_posts_the_signed_envelope(am: WebhookReceiver) -> None:
    hook = WebhookNotifier(am.url + "/hooks/icewatch", SECRET, clock=lambda: 1_795_000_000.9)
    hook.send([alert(), alert(T0 + timedelta(minutes=5), turn_server="turn-eu-2")])
    (req,) = am.received
    assert req.path == "/hooks/icewatch"
    assert req.headers["x-icewatch-timestamp"] == "1795000000"
    expected = hmac.new(SECRET.encode(), b"1795000000." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-icewatch-signature"] == f"sha256={expected}"
    body = req.json()
    assert list(body) == ["version", "alerts"] and body["version"] == "1"
    assert body["alerts"] == [
        {
            "labels": LABELS,
            "annotations": ANNOTATIONS,
            "startsAt": "2026-11-26T04:05:06.789Z",
            "generatorURL": URL,
        },
        {
            "labels": {**LABELS, "turn_server": "turn-eu-2"},
            "annotations": ANNOTATIONS,
            "startsAt": "2026-11-26T04:05:06.789Z",
            "endsAt": "2026-11-26T04:10:06.789Z",
            "generatorURL": URL,
        },
    ]
    assert verify_signature(SECRET, "1795000000", req.body, req.headers["x-icewatch-signature"], now=1_795_000_100)


def test_webhook_batches_are_each_signed(am: WebhookReceiver) -> None:
    WebhookNotifier(am.url, SECRET, max_batch=2).send([alert(turn_server=f"t{i}") for i in range(3)])
    assert [len(p["alerts"]) for p in am.payloads()] == [2, 1]
    for req in am.received:
        ts = req.headers["x-icewatch-timestamp"]
        assert verify_signature(SECRET, ts, req.body, req.headers["x-icewatch-signature"], now=float(ts))


BODY = b'{"version":"1","alerts":[]}'
TS = "1795000000"
GOOD = sign(SECRET, TS, BODY)


def test_signature_good() -> None:
    assert "sha256=" + hmac.new(SECRET.encode(), TS.encode() + b"." + BODY, hashlib.sha256).hexdigest() == GOOD
    assert verify_signature(SECRET, TS, BODY, GOOD, now=1_795_000_000)
    assert verify_signature(SECRET.encode(), TS, BODY, GOOD, now=1_795_000_300)  # at the edge of the window
    assert verify_signature(SECRET, TS, BODY, GOOD, now=1_794_999_700)  # sender clock ahead, within tolerance


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "signature", "now"),
    [
        (SECRET, TS, BODY.replace(b"[]", b"[{}]"), GOOD, 1_795_000_000),  # tampered body
        ("another-secret-0123456789", TS, BODY, GOOD, 1_795_000_000),  # wrong secret
        (SECRET, TS, BODY, GOOD, 1_795_000_301),  # old: replayed after the window
        (SECRET, TS, BODY, GOOD, 1_794_999_699),  # from too far in the future
        (SECRET, "1795000001", BODY, GOOD, 1_795_000_000),  # timestamp changed
        (SECRET, TS, BODY, GOOD.replace("sha256=", "sha1="), 1_795_000_000),
        (SECRET, TS, BODY, GOOD[:-1], 1_795_000_000),
        (SECRET, TS, BODY, GOOD.upper(), 1_795_000_000),
        (SECRET, TS, BODY, "", 1_795_000_000),
        (SECRET, TS, BODY, GOOD + "é", 1_795_000_000),
        (SECRET, "-1", BODY, GOOD, 1_795_000_000),
        (SECRET, "1.5e9", BODY, GOOD, 1_795_000_000),
        (SECRET, "", BODY, GOOD, 1_795_000_000),
        ("", TS, BODY, sign("", TS, BODY), 1_795_000_000),  # a receiver without a secret accepts nothing
    ],
)
def test_signature_refused(secret: str, timestamp: str, body: bytes, signature: str, now: float) -> None:
    assert not verify_signature(secret, timestamp, body, signature, now=now)


def test_signature_tolerance_is_a_parameter() -> None:
    assert not verify_signature(SECRET, TS, BODY, GOOD, now=1_795_000_061, tolerance_s=60)
    assert verify_signature(SECRET, TS, BODY, GOOD, now=1_795_000_060, tolerance_s=60)


def test_webhook_failure_is_unavailable_without_the_secret(
    am: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    am.status, am.answer = 401, b"bad signature"
    hook = WebhookNotifier(am.url, SECRET)
    with caplog.at_level(logging.DEBUG), pytest.raises(Unavailable) as info:
        hook.send([alert()])
    assert str(info.value) == f"webhook {am.url} did not take 1 alert(s): HTTP 401: bad signature"
    assert SECRET not in repr(hook) and SECRET not in caplog.text and SECRET not in str(info.value)
    with pytest.raises(Unavailable, match="connection refused"):
        WebhookNotifier(refused_url(), SECRET).send([alert()])


def test_webhook_config_errors() -> None:
    with pytest.raises(ConfigError, match="16 bytes"):
        WebhookNotifier("http://h/x", "short")
    with pytest.raises(ConfigError, match="http:// or https://"):
        WebhookNotifier("file:///etc/passwd", SECRET)
    with pytest.raises(ConfigError, match="query"):
        WebhookNotifier("http://h/x?token=abc", SECRET)


# -- settings and the notifiers they build


def test_settings_build_both_notifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEWATCH_ALERTS__ALERTMANAGER_URLS", '["http://am-a:9093", "http://am-b:9093"]')
    monkeypatch.setenv("ICEWATCH_ALERTS__WEBHOOK_URL", "https://hooks.example/icewatch")
    monkeypatch.setenv("ICEWATCH_ALERTS__WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ICEWATCH_ALERTS__RESEND_S", "15")
    settings = load_settings()
    assert settings.alerts.resend_s == 15.0
    assert settings.alerts.external_url == "http://127.0.0.1:8080"
    assert settings.alerts.state_path is None
    assert SECRET not in repr(settings)
    am, hook = notifiers_from(settings)
    assert isinstance(am, AlertmanagerNotifier) and am.name == "alertmanager"
    assert am.endpoints == ("http://am-a:9093/api/v2/alerts", "http://am-b:9093/api/v2/alerts")
    assert isinstance(hook, WebhookNotifier) and hook.name == "webhook"
    assert hook.url == "https://hooks.example/icewatch"


def test_settings_take_comma_separated_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEWATCH_ALERTS__ALERTMANAGER_URLS", "http://am-a:9093, http://am-b:9093,")
    assert load_settings().alerts.alertmanager_urls == ["http://am-a:9093", "http://am-b:9093"]


def test_no_alert_settings_no_notifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALERTMANAGER_URLS", "WEBHOOK_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(f"ICEWATCH_ALERTS__{name}", raising=False)
    assert notifiers_from(load_settings()) == []


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"ICEWATCH_ALERTS__ALERTMANAGER_URLS": "am-a:9093"}, "ICEWATCH_ALERTS__ALERTMANAGER_URLS"),
        ({"ICEWATCH_ALERTS__ALERTMANAGER_URLS": '["http://a"'}, "ICEWATCH_ALERTS__ALERTMANAGER_URLS"),
        ({"ICEWATCH_ALERTS__WEBHOOK_URL": "https://h/x"}, "set both ICEWATCH_ALERTS__WEBHOOK_URL"),
        ({"ICEWATCH_ALERTS__WEBHOOK_URL": "https://h/x", "ICEWATCH_ALERTS__WEBHOOK_SECRET": "tiny"}, "shorter"),
        ({"ICEWATCH_ALERTS__EXTERNAL_URL": "localhost:8080"}, "ICEWATCH_ALERTS__EXTERNAL_URL"),
        ({"ICEWATCH_ALERTS__RESEND_S": "0"}, "ICEWATCH_ALERTS__RESEND_S"),
    ],
)
def test_bad_alert_settings_are_config_errors(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=words) as info:
        load_settings()
    assert "tiny" not in str(info.value)
