"""ICEWATCH_KAFKA__SESSION_TIMEOUT_MS: how long a processor's consumer group waits for a member that
stopped heartbeating. Values outside what brokers accept by default are refused at start, naming
the variable and the broker's range; the heartbeat interval follows the session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
VAR = "ICEWATCH_KAFKA__SESSION_TIMEOUT_MS"


@pytest.fixture(autouse=True)
def kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEWATCH_KAFKA__BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.delenv(VAR, raising=False)


def test_default_is_kafka_pythons_45_s_with_its_3_s_heartbeat() -> None:
    kafka = load_settings().kafka
    assert kafka is not None
    assert (kafka.session_timeout_ms, kafka.heartbeat_interval_ms) == (45_000, 3000)


@pytest.mark.parametrize(
    ("value", "session", "heartbeat"),
    [
        ("6000", 6000, 2000),  # the broker's default minimum: a third of it
        ("7001", 7001, 2333),
        ("9000", 9000, 3000),
        ("120000", 120_000, 3000),  # long sessions keep the 3 s heartbeat (rebalances noticed as fast)
        ("1800000", 1_800_000, 3000),  # the broker's default maximum
    ],
)
def test_heartbeat_is_at_most_a_third_of_the_session(monkeypatch: pytest.MonkeyPatch, value: str, session: int,
                                                     heartbeat: int) -> None:
    monkeypatch.setenv(VAR, value)
    kafka = load_settings().kafka
    assert kafka is not None
    assert (kafka.session_timeout_ms, kafka.heartbeat_interval_ms) == (session, heartbeat)
    assert kafka.heartbeat_interval_ms * 3 <= kafka.session_timeout_ms


@pytest.mark.parametrize("value", ["5999", "0", "-45000", "1800001", "99999999999"])
def test_outside_the_brokers_range_is_refused_naming_the_variable_and_the_range(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert VAR in message
    assert "6000..1800000 ms" in message
    assert "group.min.session.timeout.ms" in message and "group.max.session.timeout.ms" in message
    assert not re.search(rf"(?<!\d){re.escape(value)}(?!\d)", message)  # not echoed, as no settings error does


@pytest.mark.parametrize("value", ["45s", "4.5e4", "6000.5", "0x1770", "", "9" * 5000])
def test_not_a_whole_number_of_milliseconds_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                                           value: str) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert VAR in str(info.value)
    assert len(str(info.value)) < 500


def test_a_processor_started_with_a_bad_value_stops_before_connecting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
    # nothing listens on port 9: the error must come from the settings, not from Kafka
    env.update({"ICEWATCH_KAFKA__BOOTSTRAP": "127.0.0.1:9", VAR: "3000"})
    out = subprocess.run([sys.executable, "-m", "processors"], env=env, capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.returncode != 0
    assert f"{VAR}: " in out.stderr and "6000..1800000 ms" in out.stderr, out.stderr[-2000:]
    assert "Kafka at" not in out.stderr  # it never tried the broker
