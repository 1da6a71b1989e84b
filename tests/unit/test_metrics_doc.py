"""docs/metrics.md is the one list of metrics: every metric the components register is in it with
its type and labels, and it lists none that no component has."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from alerts.evaluator import Evaluator
from alerts.metrics import EvaluatorCollector
from alerts.rules import load_rules
from collector.http_app import IngestConfig, build_app
from collector.inventory import Inventory
from collector.probes.scheduler import ProbeScheduler
from collector.settings import ProbeSettings
from collector.source_metrics import SourcesCollector
from collector.turn.coturn import CoturnParser
from collector.turn.syslog_server import SyslogServer
from collector.turn.tailer import FileTailer
from processors.service.metrics import ProcessorMetrics
from processors.store.chdb import ChdbSink
from tests.http_server import serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `(icewatch_\w+)` \| (\w+) \|([^|]*)\| ([^|]+) \| ([^|]+) \|$")


class _Nowhere:
    def publish(self, payloads: object, tenant: str = "default") -> None:
        raise AssertionError("nothing is published here")

    def close(self) -> None:
        pass


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for line in DOC.read_text().splitlines():
        m = ROW.match(line)
        if m:
            assert m.group(1) not in out, f"{m.group(1)} twice in docs/metrics.md"
            labels = frozenset(re.findall(r"`(\w+)`", m.group(3)))
            out[m.group(1)] = (m.group(2), labels)
    return out


def exposed(collectors: list[Collector]) -> dict[str, tuple[str, frozenset[str]]]:
    """name as scraped (counters with ``_total``) -> (type, label names of its samples)."""
    registry = CollectorRegistry()
    for c in collectors:
        registry.register(c)
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for s in family.samples if not s.name.endswith("_created") for k in s.labels if k != "le"}
        assert family.samples, f"{name} has no sample: its labels cannot be checked"
        out[name] = (family.type, frozenset(labels))
    return out


def every_component(tmp_path: Path, sink: ChdbSink) -> list[Collector]:
    """The registries as the processes build them, each metric exercised once so it has samples."""
    app = build_app(_Nowhere(), IngestConfig(api_keys={}, max_body_bytes=1000, hash_key=b"k"))
    with serve(app) as base:  # one refused upload gives the request counter its status label
        assert httpx.post(f"{base}/v1/call-reports", content=b"x", timeout=30).status_code == 415
    collector_registry = app.state.metrics_registry
    processor = ProcessorMetrics()
    processor.observe_batch(1, {"calls": [{}]}, 0, 0.01, None)
    log = tmp_path / "turn.log"
    log.write_text("")
    tailer = FileTailer(log, _Nowhere(), CoturnParser("turn-1", b"k" * 32), tmp_path / "cp.json")
    syslog = SyslogServer(_Nowhere(), lambda sender: CoturnParser(sender, b"k" * 32))
    probes = ProbeScheduler(Inventory(servers=[]), ProbeSettings(), _Nowhere())
    evaluator = Evaluator(sink, load_rules(), [], tmp_path / "state.json", "http://icewatch")
    return [collector_registry, processor.registry,
            SourcesCollector([("turn-1", tailer)], syslog, probes), EvaluatorCollector(evaluator)]


def test_every_metric_in_the_code_is_documented_with_its_type_and_labels_and_none_else(tmp_path: Path) -> None:
    sink = ChdbSink(tmp_path / "store")
    try:
        components = every_component(tmp_path, sink)
        in_code = exposed(components)
    finally:
        sink.close()
    doc = documented()
    assert len(doc) >= 20
    assert sorted(set(in_code) - set(doc)) == [], "in the code, not in docs/metrics.md"
    assert sorted(set(doc) - set(in_code)) == [], "in docs/metrics.md, not in the code"
    for name, (kind, labels) in in_code.items():
        assert doc[name] == (kind, labels), name
