"""Prometheus metrics of the alert evaluator, read from its state book at scrape time.

docs/metrics.md documents every metric; tests/unit/test_metrics_doc.py keeps the two equal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.evaluator import Evaluator

PHASES = ("pending", "firing")


class EvaluatorCollector(Collector):
    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def collect(self) -> Iterator[Metric]:
        ev = self.evaluator
        with ev._lock:
            counts: Counter[tuple[str, str]] = Counter(
                (i.rule_id, str(i.phase)) for i in ev.book.instances.values() if i.phase in PHASES)
            undelivered = sum(1 for i in ev.book.to_send() if not i.delivered)
        alerts = GaugeMetricFamily("icewatch_alerts", "Alert instances pending or firing, by rule",
                                   labels=["rule", "phase"])
        for rule_id in sorted(ev.rules):
            for phase in PHASES:
                alerts.add_metric([rule_id, phase], counts.get((rule_id, phase), 0))
        yield alerts
        yield GaugeMetricFamily("icewatch_alerts_rules", "Alert rules loaded", value=len(ev.rules))
        failing = GaugeMetricFamily("icewatch_alerts_rule_failing",
                                    "1 when the rule's last evaluation failed (the store did not answer)",
                                    labels=["rule"])
        for rule_id in sorted(ev.rules):
            failing.add_metric([rule_id], 1 if rule_id in ev.errors else 0)
        yield failing
        yield GaugeMetricFamily("icewatch_alerts_undelivered",
                                "Alert changes no notifier has taken yet (sent again next round)", value=undelivered)
