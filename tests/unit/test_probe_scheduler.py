"""The probe scheduler: rounds, probe ids, publishing with a bounded backlog, APScheduler job."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from collector import contract
from collector.contract import Model, ProbeResult
from collector.errors import BrokerUnavailable
from collector.inventory import Inventory
from collector.probes.client import Credentials, Outcome, ProbeOptions
from collector.probes.scheduler import ProbeScheduler, probe_id
from collector.probes.targets import ProbeTarget
from collector.settings import ProbeSettings

INVENTORY = Inventory.from_yaml_text(
    """
servers:
  - id: a
    region: eu
    lat: 50
    lon: 8
    urls: ["stun:a.example.net", "turn:a.example.net?transport=udp", "turn:a.example.net?transport=tcp"]
    transports: [udp, tcp]
  - id: b
    region: us-east
    lat: 39
    lon: -77
    urls: ["stun:b.example.net", "turn:b.example.net?transport=udp", "turn:b.example.net?transport=tcp"]
    transports: [udp, tcp]
"""
)


class RecordingPublisher:
    def __init__(self) -> None:
        self.batches: list[tuple[list[Model], str]] = []
        self.fail = False
        self.lock = threading.Lock()

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        if self.fail:
            raise BrokerUnavailable("kafka is down")
        with self.lock:
            self.batches.append((list(payloads), tenant))

    def close(self) -> None:
        pass

    @property
    def results(self) -> list[ProbeResult]:
        return [p for batch, _ in self.batches for p in batch if isinstance(p, ProbeResult)]


class FakeProber:
    def __init__(self) -> None:
        self.calls: list[tuple[ProbeTarget, Credentials | None, ProbeOptions]] = []
        self.lock = threading.Lock()

    def __call__(self, target: ProbeTarget, credentials: Credentials | None, options: ProbeOptions) -> Outcome:
        with self.lock:
            self.calls.append((target, credentials, options))
        if target.server_id == "b" and target.transport == "tcp":
            return Outcome(False, error="connection refused")
        if target.kind == "turn_allocate" and credentials is not None and credentials.password != "P":
            return Outcome(False, error_code=401, error="Unauthorized", latency_ms=2.0)
        return Outcome(True, latency_ms=1.5)


def settings(**kw: object) -> ProbeSettings:
    base: dict[str, object] = {"vantage": "v1", "turn_username": "U", "turn_password": SecretStr("P"), "interval_s": 30}
    base.update(kw)
    return ProbeSettings(**base)


SLOT = datetime(2026, 11, 23, 0, 0, 30, tzinfo=UTC)


def test_one_round_publishes_one_result_per_server_transport_kind() -> None:
    pub, prober = RecordingPublisher(), FakeProber()
    sched = ProbeScheduler(INVENTORY, settings(), pub, probe_fn=prober)
    results = sched.run_once(SLOT)
    keys = {(r.server_id, r.transport, r.kind) for r in results}
    assert len(results) == len(keys) == 2 * 2 * 2
    assert pub.results == results and pub.batches[0][1] == "default"
    assert sched.pending == 0
    for r in results:
        target = next(
            t for t in sched.targets if (t.server_id, t.kind, t.transport) == (r.server_id, r.kind, r.transport)
        )
        assert r.probe_id == contract.stable_id("v1", r.server_id, r.kind, r.transport, SLOT.isoformat())
        assert r.probe_id == probe_id("v1", target, SLOT)
        assert r.vantage == "v1" and r.target == target.target
        assert r.region == {"a": "eu", "b": "us-east"}[r.server_id]
    failed = [r for r in results if not r.success]
    assert {(r.server_id, r.transport) for r in failed} == {("b", "tcp")}
    assert all(r.error == "connection refused" and r.error_code is None for r in failed)
    creds = [c for t, c, _ in prober.calls if t.kind == "turn_allocate"]
    assert creds and all(c == Credentials("U", "P") for c in creds)
    assert all(c is None for t, c, _ in prober.calls if t.kind == "stun_binding")


def test_probe_ids_differ_between_rounds_and_vantages() -> None:
    pub = RecordingPublisher()
    sched = ProbeScheduler(INVENTORY, settings(), pub, probe_fn=FakeProber())
    first = {r.probe_id for r in sched.run_once(SLOT)}
    again = {r.probe_id for r in sched.run_once(SLOT)}
    later = {r.probe_id for r in sched.run_once(datetime(2026, 11, 23, 0, 1, tzinfo=UTC))}
    other = ProbeScheduler(INVENTORY, settings(vantage="v2"), pub, probe_fn=FakeProber())
    elsewhere = {r.probe_id for r in other.run_once(SLOT)}
    assert first == again  # a replayed round converges
    assert not first & later and not first & elsewhere


def test_publisher_down_keeps_results_then_sends_them() -> None:
    pub = RecordingPublisher()
    sched = ProbeScheduler(INVENTORY, settings(), pub, probe_fn=FakeProber())
    pub.fail = True
    sched.run_once(SLOT)
    sched.run_once(datetime(2026, 11, 23, 0, 1, tzinfo=UTC))
    assert pub.batches == [] and sched.pending == 16
    pub.fail = False
    sched.run_once(datetime(2026, 11, 23, 0, 1, 30, tzinfo=UTC))
    assert len(pub.batches) == 1 and len(pub.results) == 24 and sched.pending == 0
    assert len({r.probe_id for r in pub.results}) == 24


def test_backlog_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    pub = RecordingPublisher()
    pub.fail = True
    sched = ProbeScheduler(INVENTORY, settings(max_pending=10), pub, probe_fn=FakeProber())
    first = sched.run_once(SLOT)
    second = sched.run_once(datetime(2026, 11, 23, 0, 1, tzinfo=UTC))
    assert sched.pending == 10 and sched.dropped == 6
    assert "dropped the 6 oldest" in caplog.text
    pub.fail = False
    assert sched.flush()
    assert pub.results == (first + second)[-10:]


def test_unexpected_publisher_error_is_logged_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(RecordingPublisher):
        def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
            raise RuntimeError("boom")

    sched = ProbeScheduler(INVENTORY, settings(), Broken(), probe_fn=FakeProber())
    sched.run_once(SLOT)
    assert sched.pending == 8 and "boom" in caplog.text


def test_without_credentials_only_binding(caplog: pytest.LogCaptureFixture) -> None:
    pub = RecordingPublisher()
    with caplog.at_level(logging.WARNING):
        sched = ProbeScheduler(INVENTORY, settings(turn_username=None, turn_password=None), pub, probe_fn=FakeProber())
    assert {t.kind for t in sched.targets} == {"stun_binding"}
    assert "no TURN credentials" in caplog.text
    assert len(sched.run_once(SLOT)) == 4


def test_turn_rest_credentials_are_minted_per_probe() -> None:
    prober = FakeProber()
    sched = ProbeScheduler(
        INVENTORY, settings(turn_username=None, turn_password=None, turn_secret=SecretStr("S")),
        RecordingPublisher(), probe_fn=prober,
    )  # fmt: skip
    sched.run_once(SLOT)
    creds = [c for t, c, _ in prober.calls if t.kind == "turn_allocate"]
    assert creds and all(c is not None and c.username.endswith(":icewatch-probe") for c in creds)


def test_secrets_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(FakeProber):
        def __call__(self, target: ProbeTarget, credentials: Credentials | None, options: ProbeOptions) -> Outcome:
            return Outcome(False, error_code=401, error="Unauthorized")

    with caplog.at_level(logging.DEBUG):
        pub = RecordingPublisher()
        pub.fail = True
        sched = ProbeScheduler(INVENTORY, settings(turn_password=SecretStr("sup3r-s3cret")), pub, probe_fn=Failing())
        sched.run_once(SLOT)
    assert caplog.text and "sup3r-s3cret" not in caplog.text


def test_a_crashing_probe_becomes_a_failed_result() -> None:
    def crash(target: ProbeTarget, credentials: Credentials | None, options: ProbeOptions) -> Outcome:
        raise ValueError("bug")

    results = ProbeScheduler(INVENTORY, settings(), RecordingPublisher(), probe_fn=crash).run_once(SLOT)
    assert results and all(r.error == "internal: ValueError" and not r.success for r in results)


def test_slot_is_on_the_interval_grid() -> None:
    sched = ProbeScheduler(INVENTORY, settings(interval_s=30), RecordingPublisher(), probe_fn=FakeProber())
    base = SLOT.timestamp()
    assert sched.slot(base) == SLOT
    assert sched.slot(base + 29.9) == SLOT
    assert sched.slot(base + 30) == datetime(2026, 11, 23, 0, 1, tzinfo=UTC)


def test_probes_run_in_parallel() -> None:
    """Counted, not timed: how many probes were inside the probe function at once."""
    lock = threading.Lock()
    inside = 0
    most = 0

    def slow(target: ProbeTarget, credentials: Credentials | None, options: ProbeOptions) -> Outcome:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.3)
        with lock:
            inside -= 1
        return Outcome(True, latency_ms=300)

    sched = ProbeScheduler(INVENTORY, settings(max_workers=8), RecordingPublisher(), probe_fn=slow)
    assert len(sched.run_once(SLOT)) == 8
    assert most > 1


def test_background_scheduler_runs_rounds() -> None:
    pub = RecordingPublisher()
    sched = ProbeScheduler(INVENTORY, settings(interval_s=1), pub, probe_fn=FakeProber())
    sched.start()
    try:
        assert sched.running
        with pytest.raises(RuntimeError):
            sched.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(pub.batches) < 3:
            time.sleep(0.05)
    finally:
        sched.shutdown()
    assert not sched.running
    assert len(pub.batches) >= 3
    rounds = [{r.probe_id for r in batch} for batch, _ in pub.batches]
    assert all(len(r) == 8 for r in rounds)
    assert len(set().union(*rounds)) >= 2 * 8  # distinct scheduled times
