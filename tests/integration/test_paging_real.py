"""Acceptance (issue 12): paging end to end with real services. Debian's coturn on 127.0.0.1, an
inventory naming it (turn-eu-1, region eu, stun:/turn: URLs on its port, udp + tcp), ``icewatch run``
as a subprocess probing it with the prober's credentials and evaluating the shipped rules on its
embedded store, delivering to Debian's real Alertmanager whose one page receiver is a
``WebhookReceiver`` (path /page); the watchdog is routed to /watchdog so it never counts as a page.

What the receiver got is what is asserted: coturn stopped pages turn-server-down (and nothing else),
coturn started again resolves it; wrong probe credentials page turn-auth-failures and never
turn-server-down; ``kill -9`` of icewatch while the page fires, restarted on the same data dir, sends
no second page and still delivers the resolve.

Timings: the rules' own (turn-server-down: every 10 s, delay 2 s, for 10 s, keep_firing_for 45 s;
turn-auth-failures: every 15 s, delay 5 s, for 15 s); only the probe interval (2 s instead of 30 s),
the evaluator's re-send (5 s instead of 30 s) and Alertmanager's group_wait/group_interval (1 s)
are shortened here. tests/bench/bench_paging.py measures with every default. A missing coturn or
Alertmanager fails these tests (never a skip).
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.alertmanager import Received, WebhookReceiver, get_alerts, start_alertmanager
from tests.integration.test_probes_coturn import PASSWORD, Coturn
from tests.paging import (
    PAGE_PATH,
    REGION,
    SERVER_ID,
    TENANT,
    WATCHDOG_PATH,
    IcewatchRun,
    alertnames,
    is_alert,
    new_coturn,
    paging_am_config,
    start_coturn,
    write_inventory,
)

pytestmark = [pytest.mark.coturn, pytest.mark.alertmanager]

DOWN, AUTH = "turn-server-down", "turn-auth-failures"
FAST = {"ICEWATCH_PROBES_INTERVAL_S": "2", "ICEWATCH_ALERTS__RESEND_S": "5"}
# turn-server-down: a probe round (2 s) + delay 2 s + up to one interval (10 s) to see it, for 10 s,
# group_wait 1 s; generous for a loaded 2-core machine.
FIRE_TIMEOUT = 60.0
# coturn back: a probe round + up to one interval + keep_firing_for 45 s + group_interval 1 s.
RESOLVE_TIMEOUT = 100.0


@dataclass
class Stack:
    coturn: Coturn
    receiver: WebhookReceiver
    alertmanager: str
    run: IcewatchRun

    def pages(self) -> list[Received]:
        return [r for r in self.receiver.received if r.path == PAGE_PATH]

    def wait_page(self, alertname: str, status: str, timeout: float) -> Received:
        """The first notification at /page of ``status`` carrying ``alertname``."""
        match = is_alert(alertname, status)
        deadline = time.monotonic() + timeout
        while True:
            for r in self.pages():
                if match(r.json()):
                    return r
            if time.monotonic() > deadline:
                got = [(r.path, r.json().get("status"), sorted(alertnames(r.json()))) for r in self.receiver.received]
                raise AssertionError(f"no {status} {alertname} at {PAGE_PATH} within {timeout}s; received: {got}")
            time.sleep(0.1)

    def wait_transports(self, status: str, timeout: float = 25.0) -> dict[str, dict[str, Any]]:
        """turn-server-down alerts of ``status`` at /page by transport, once both udp and tcp came
        (the two fail or recover in the same probe round; a straggler gets one more evaluation)."""
        deadline = time.monotonic() + timeout
        while True:
            got = {a["labels"].get("transport", ""): a for r in self.pages() for a in r.json()["alerts"]
                   if r.json()["status"] == status and a["labels"]["alertname"] == DOWN}
            if set(got) == {"udp", "tcp"} or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def firing_pages(self) -> list[Received]:
        return [r for r in self.pages() if r.json()["status"] == "firing"]


@pytest.fixture()
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make(password=...)`` -> a running Stack; everything started is stopped by its PID at the end."""
    with contextlib.ExitStack() as started:

        def make(password: str = PASSWORD) -> Stack:
            coturn = new_coturn(tmp_path / "coturn")
            start_coturn(coturn)
            started.callback(coturn.stop)
            receiver = started.enter_context(WebhookReceiver())
            config = paging_am_config(receiver.url, repeat_interval="1h")
            am = started.enter_context(start_alertmanager(tmp_path, receiver.url, config=config))
            inventory = write_inventory(tmp_path, coturn.port)
            run = IcewatchRun.configure(tmp_path, inventory, am, password=password, extra=FAST)
            started.callback(run.stop)
            print(f"icewatch run healthy after {run.start():.1f} s")
            return Stack(coturn, receiver, am, run)

        yield make


def wait_probes_ok(run: IcewatchRun, timeout: float = 30.0) -> None:
    """Until the store holds a successful probe of every kind and transport (the baseline)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = run.sql("SELECT kind, transport FROM probes WHERE success GROUP BY kind, transport")
        if len(rows) == 4:
            return
        assert time.monotonic() < deadline, f"no successful probe round within {timeout}s: {rows}"
        time.sleep(0.5)


def assert_down_alert(alert: dict[str, Any], run: IcewatchRun, status: str) -> None:
    labels = alert["labels"]
    transport = labels["transport"]
    assert transport in ("udp", "tcp"), labels
    assert labels == {"alertname": DOWN, "severity": "page", "tenant": TENANT, "turn_server": SERVER_ID,
                      "region": REGION, "transport": transport}
    assert alert["status"] == status
    annotations = alert["annotations"]
    assert annotations["summary"] == (
        f"TURN {SERVER_ID} ({REGION}) unreachable over {transport}: 1 of 1 vantage points fail"
    ), annotations
    assert annotations["runbook_url"] == f"{run.base}/runbooks/turn-server-down"
    assert alert["generatorURL"] == f"{run.base}/alerts#turn-server-down"


def only_watchdog_elsewhere(stack: Stack) -> None:
    for r in stack.receiver.received:
        if r.path != PAGE_PATH:
            assert r.path == WATCHDOG_PATH and alertnames(r.json()) == {"watchdog"}, (r.path, r.json())


def test_coturn_down_pages_through_alertmanager_and_resolves(stack_factory: Callable[..., Stack]) -> None:
    began = time.monotonic()
    stack = stack_factory()
    run = stack.run
    wait_probes_ok(run)

    stopped = time.monotonic()
    stack.coturn.stop()  # by its PID
    firing = stack.wait_page(DOWN, "firing", FIRE_TIMEOUT)
    print(f"coturn stopped -> {DOWN} firing at the receiver: {firing.at - stopped:.1f} s")
    body = firing.json()
    assert body["receiver"] == "page"
    assert body["groupLabels"] == {"alertname": DOWN, "tenant": TENANT, "turn_server": SERVER_ID, "region": REGION}
    for alert in body["alerts"]:
        assert_down_alert(alert, run, "firing")
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert set(stack.wait_transports("firing")) == {"udp", "tcp"}

    # the generatorURL's page is icewatch's own and shows the alert
    with urllib.request.urlopen(f"{run.base}/alerts", timeout=10) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(f"{run.base}/api/alerts", timeout=10) as resp:
        assert DOWN.encode() in resp.read()

    restarted = time.monotonic()
    start_coturn(stack.coturn)
    resolved = stack.wait_page(DOWN, "resolved", RESOLVE_TIMEOUT)
    print(f"coturn started -> {DOWN} resolved at the receiver: {resolved.at - restarted:.1f} s")
    for alert in resolved.json()["alerts"]:
        assert_down_alert(alert, run, "resolved")
        assert alert["endsAt"] > alert["startsAt"]
    assert set(stack.wait_transports("resolved")) == {"udp", "tcp"}
    # Alertmanager holds nothing of it any more; nothing but turn-server-down was paged
    assert [a["labels"]["alertname"] for a in get_alerts(stack.alertmanager)] in ([], ["watchdog"])
    pages = stack.pages()
    assert all(alertnames(r.json()) == {DOWN} for r in pages), [(r.json()["status"], alertnames(r.json()))
                                                                 for r in pages]
    only_watchdog_elsewhere(stack)
    print(f"scenario took {time.monotonic() - began:.1f} s; pages: "
          f"{[(r.json()['status'], len(r.json()['alerts'])) for r in pages]}")


def test_wrong_probe_credentials_page_auth_failures_not_server_down(stack_factory: Callable[..., Stack]) -> None:
    began = time.monotonic()
    stack = stack_factory(password="not-the-password")
    run = stack.run
    auth = stack.wait_page(AUTH, "firing", FIRE_TIMEOUT)
    took = auth.at - began
    print(f"wrong credentials -> {AUTH} firing at the receiver {took:.1f} s after the start")
    (alert,) = auth.json()["alerts"]
    assert alert["labels"] == {"alertname": AUTH, "severity": "page", "tenant": TENANT, "turn_server": SERVER_ID,
                               "region": REGION}
    assert alert["annotations"]["summary"].startswith(f"TURN {SERVER_ID} ({REGION}) rejects credentials: ")
    assert alert["generatorURL"] == f"{run.base}/alerts#turn-auth-failures"
    # coturn was up all along: its Binding probes succeeded and Allocate got 401, nothing timed out
    rows = run.sql("SELECT kind, success, error_code, count() AS n FROM probes GROUP BY kind, success, error_code")
    assert {(r["kind"], r["success"], r["error_code"]) for r in rows} == {
        ("stun_binding", True, None), ("turn_allocate", False, 401)}, rows
    # The same budget again (at least turn-server-down's own worst case, 2 + 2 + 10 + 10 + 1 s, after
    # the first 401s, which came with the first probe round): turn-server-down never reached the
    # receiver, nor was it ever pending in the evaluator.
    time.sleep(max(took, 25.0) - (time.monotonic() - auth.at))
    pages = stack.pages()
    assert all(alertnames(r.json()) == {AUTH} for r in pages), [alertnames(r.json()) for r in pages]
    transitions = [line["msg"] for line in run.log_lines() if str(line.get("msg", "")).startswith("alert ")]
    assert not [m for m in transitions if m.startswith(f"alert {DOWN} ")], transitions
    assert all(i["rule_id"] in (AUTH, "watchdog") for i in run.state().values()), run.state()
    only_watchdog_elsewhere(stack)
    print(f"scenario took {time.monotonic() - began:.1f} s")


def test_kill9_while_firing_no_second_page_and_resolve_still_arrives(stack_factory: Callable[..., Stack]) -> None:
    began = time.monotonic()
    stack = stack_factory()
    run = stack.run
    wait_probes_ok(run)
    stack.coturn.stop()
    stack.wait_page(DOWN, "firing", FIRE_TIMEOUT)
    first = stack.wait_transports("firing")
    assert set(first) == {"udp", "tcp"}
    firing_pages = stack.firing_pages()
    before = {k: v for k, v in run.state().items() if v["rule_id"] == DOWN}
    assert len(before) == 2 and all(v["phase"] == "firing" and v["delivered"] for v in before.values()), before
    held = {a["labels"]["transport"]: a["startsAt"] for a in get_alerts(stack.alertmanager)
            if a["labels"]["alertname"] == DOWN}

    stored = run.sql("SELECT count() AS n, countIf(NOT success) AS failed FROM probes")[0]

    run.kill9()  # SIGKILL by PID: no shutdown code, the chDB store is left as a crash leaves it
    killed = time.time()
    took = run.start()  # the same data dir: the store and alerts/state.json
    print(f"icewatch run restarted after kill -9: healthy in {took:.1f} s (the embedded store reopened)")
    # the store reopened with every row it had acknowledged before the kill (and takes new ones)
    again = run.sql(f"SELECT count() AS n, countIf(NOT success) AS failed FROM probes "
                    f"WHERE toUnixTimestamp64Milli(stored_at) < {int(killed * 1000)}")[0]
    assert again["n"] >= stored["n"] and again["failed"] >= stored["failed"], (again, stored)
    # the restarted evaluator re-sends the firing alerts (resend 5 s) from its book ...
    deadline = time.monotonic() + 30
    while True:
        after = {k: v for k, v in run.state().items() if v["rule_id"] == DOWN}
        sent = [v["last_sent"] for v in after.values() if v["last_sent"]]
        if len(sent) == 2 and all(datetime.fromisoformat(s).timestamp() > killed for s in sent):
            break
        assert time.monotonic() < deadline, f"no re-send after the restart: {after}"
        time.sleep(0.5)
    for key, inst in after.items():  # ... under the same startsAt: the book survived the kill
        assert inst["phase"] == "firing" and inst["fired_at"] == before[key]["fired_at"], (inst, before[key])
    time.sleep(3)  # > group_interval (1 s): a notification for a changed group would be out by now
    assert {a["labels"]["transport"]: a["startsAt"] for a in get_alerts(stack.alertmanager)
            if a["labels"]["alertname"] == DOWN} == held
    assert stack.firing_pages() == firing_pages, "a second firing notification arrived after the restart"
    assert f"alert {DOWN} inactive -> pending" not in run.log.read_text()  # nothing started over

    start_coturn(stack.coturn)
    stack.wait_page(DOWN, "resolved", RESOLVE_TIMEOUT)
    resolved = stack.wait_transports("resolved")
    assert set(resolved) == {"udp", "tcp"}
    for transport, alert in resolved.items():
        assert_down_alert(alert, run, "resolved")
        assert alert["startsAt"] == first[transport]["startsAt"]
    assert stack.firing_pages() == firing_pages, "a second firing notification arrived"
    assert all(alertnames(r.json()) == {DOWN} for r in stack.pages())
    only_watchdog_elsewhere(stack)
    print(f"scenario took {time.monotonic() - began:.1f} s")
