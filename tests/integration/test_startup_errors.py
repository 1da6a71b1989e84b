"""Every start-up error of the long-running commands tells the operator what to set: the command
exits non-zero at once, with one line naming the variable, and no Python traceback."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.test_delivery import unique_topics
from tests.paging import ICEWATCH
from tests.services import HOST, REPO_ROOT, KafkaService, free_ports

CASES: dict[str, tuple[list[str], dict[str, str], str]] = {
    # name: (command, settings, what the message must name)
    "port not a number": (["run"], {"ICEWATCH_PORT": "abc"}, "ICEWATCH_PORT"),
    "API keys not JSON": (["run"], {"ICEWATCH_API_KEYS": "tenant-a=key"}, "ICEWATCH_API_KEYS must be JSON"),
    "bad Kafka address": (["collector"], {"ICEWATCH_KAFKA__BOOTSTRAP": "kafka"}, "ICEWATCH_KAFKA__BOOTSTRAP"),
    "Kafka unreachable": (["collector"], {"ICEWATCH_KAFKA__BOOTSTRAP": "127.0.0.1:{closed}"},
                          "check ICEWATCH_KAFKA__BOOTSTRAP"),  # about 30 s: the client's bootstrap timeout
    "collector without Kafka": (["collector"], {}, "ICEWATCH_KAFKA__BOOTSTRAP is not set"),
    "processor without Kafka": (["processor"], {}, "ICEWATCH_KAFKA__BOOTSTRAP is not set"),
    "evaluator without ClickHouse": (["alerts", "run"], {}, "set ICEWATCH_CLICKHOUSE__HOST"),
    "probes without inventory": (["run"], {"ICEWATCH_PROBES_ENABLED": "true"}, "needs ICEWATCH_INVENTORY"),
    "inventory missing": (["run"], {"ICEWATCH_INVENTORY": "/nonexistent/inventory.yaml"}, "ICEWATCH_INVENTORY"),
    "half the TURN credentials": (["run"], {"ICEWATCH_PROBES_TURN_USERNAME": "u"}, "ICEWATCH_PROBES_TURN_PASSWORD"),
    "short webhook secret": (["run"], {"ICEWATCH_ALERTS__WEBHOOK_URL": "http://127.0.0.1:9/hook",
                                       "ICEWATCH_ALERTS__WEBHOOK_SECRET": "short"}, "ICEWATCH_ALERTS__WEBHOOK_SECRET"),
    "data dir not writable": (["run"], {"ICEWATCH_DATA_DIR": "{file}/data"}, "set ICEWATCH_DATA_DIR"),
    "port in use": (["run"], {"ICEWATCH_PORT": "{busy}"}, "set ICEWATCH_PORT"),
    "ClickHouse unreachable": (["alerts", "run"], {"ICEWATCH_CLICKHOUSE__HOST": HOST,
                                                   "ICEWATCH_CLICKHOUSE__PORT": "{closed}"},
                               "check ICEWATCH_CLICKHOUSE__HOST and ICEWATCH_CLICKHOUSE__PORT"),
}


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def start_up(case: str, directory: Path, busy_port: int) -> subprocess.CompletedProcess[str]:
    command, settings, _ = CASES[case]
    directory.mkdir()
    a_file = directory / "a-file"
    a_file.write_text("")
    closed, port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
    env.update({"ICEWATCH_DATA_DIR": str(directory / "data"), "ICEWATCH_PORT": str(port),
                "ICEWATCH_METRICS_PORT": "0"})
    env.update({k: v.format(file=a_file, busy=busy_port, closed=closed) for k, v in settings.items()})
    return subprocess.run([*ICEWATCH, "--log-level", "WARNING", *command], env=env, cwd=REPO_ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, busy_port: int) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case started at once (each is a short-lived process, mostly waiting on imports)."""
    base = tmp_path_factory.mktemp("startup")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case: pool.submit(start_up, case, base / f"case-{i}", busy_port) for i, case in enumerate(CASES)}
        return {case: f.result() for case, f in futures.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_start_up_error_names_what_to_set(case: str, outcomes: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out, named = outcomes[case], CASES[case][2]
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-2000:]
    # a raw traceback (the JSON log lines of a library may carry one inside, as data)
    assert not any(line.startswith("Traceback") for line in text.splitlines()), text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, text[-2000:]
    assert named in errors[0], errors[0]


@pytest.mark.kafka
def test_processor_with_its_metrics_port_taken_names_the_setting(kafka: KafkaService, tmp_path: Path,
                                                                 busy_port: int) -> None:
    topics = unique_topics(partitions=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
    env.update({"ICEWATCH_KAFKA__BOOTSTRAP": kafka.bootstrap, "ICEWATCH_DATA_DIR": str(tmp_path / "data"),
                "ICEWATCH_METRICS_PORT": str(busy_port), "ICEWATCH_TOPICS__CALL_REPORTS": topics.call_reports,
                "ICEWATCH_TOPICS__TURN_EVENTS": topics.turn_events,
                "ICEWATCH_TOPICS__PROBE_RESULTS": topics.probe_results,
                "ICEWATCH_TOPICS__DEAD_LETTERS": topics.dead_letters})
    out = subprocess.run([*ICEWATCH, "--log-level", "WARNING", "processor"], env=env, cwd=REPO_ROOT,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-2000:]
    assert not any(line.startswith("Traceback") for line in text.splitlines()), text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "set ICEWATCH_METRICS_PORT" in errors[0], text[-2000:]
