"""`icewatch probe` (scheduled, publishing to a real Kafka broker) serves /metrics on
ICEWATCH_METRICS_PORT: its probe results by outcome, what waits for the publisher, what was dropped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_delivery import create_topics, unique_topics
from tests.paging import ICEWATCH, write_inventory
from tests.services import HOST, REPO_ROOT, KafkaService, free_ports, log_tail

pytestmark = pytest.mark.kafka


def scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bytes(resp.read()).decode()
    except OSError:
        return ""


def test_scheduled_probes_serve_their_metrics(kafka: KafkaService, tmp_path: Path) -> None:
    topics = unique_topics(partitions=1)
    create_topics(kafka, topics)
    closed, metrics_port = free_ports(2)  # nothing listens on `closed`: every probe fails
    inventory = write_inventory(tmp_path, closed)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICEWATCH_")}
    env.update({"ICEWATCH_KAFKA__BOOTSTRAP": kafka.bootstrap, "ICEWATCH_TOPICS__PROBE_RESULTS": topics.probe_results,
                "ICEWATCH_TOPICS__DEAD_LETTERS": topics.dead_letters, "ICEWATCH_HOST": HOST,
                "ICEWATCH_METRICS_PORT": str(metrics_port), "ICEWATCH_PROBES_INTERVAL_S": "1",
                "ICEWATCH_PROBES_TIMEOUT_S": "0.5", "ICEWATCH_DATA_DIR": str(tmp_path / "data")})
    log = tmp_path / "probe.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*ICEWATCH, "probe", "--inventory", str(inventory)], env=env, cwd=REPO_ROOT,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            body = scrape(f"http://{HOST}:{metrics_port}/metrics")
            failed = re.search(r'^icewatch_probe_results_total\{outcome="failure"} (\S+)$', body, re.MULTILINE)
            if failed and float(failed.group(1)) >= 6:  # two rounds of the three targets (stun, turn udp/tcp)
                break
            assert proc.poll() is None and time.monotonic() < deadline, log_tail(log, 40)
            time.sleep(0.5)
        assert re.search(r'^icewatch_probe_results_total\{outcome="success"} 0\.0$', body, re.MULTILINE), body
        assert re.search(r"^icewatch_probe_pending 0\.0$", body, re.MULTILINE), body
        assert re.search(r"^icewatch_probe_dropped_total 0\.0$", body, re.MULTILINE), body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, log_tail(log, 40)
    assert scrape(f"http://{HOST}:{metrics_port}/metrics") == ""  # the endpoint stopped with the command
