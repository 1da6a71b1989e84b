"""``icewatch probe``: run the active STUN/TURN probes once (and print them) or on a schedule.

Wire into the ``icewatch`` group with ``main.add_command(probe)``.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click
from prometheus_client import CollectorRegistry

from collector.cli_base import current_settings
from collector.contract import ProbeResult
from collector.errors import IcewatchError
from collector.metrics_server import serve_metrics
from collector.probes.scheduler import ProbeScheduler
from collector.publisher import Publisher
from collector.settings import Settings
from collector.source_metrics import SourcesCollector

log = logging.getLogger(__name__)


def build_publisher(settings: Settings) -> Publisher:
    """The Kafka publisher of the settings (ICEWATCH_KAFKA__BOOTSTRAP)."""
    from collector.kafka_publisher import KafkaPublisher

    if settings.kafka is None:
        raise click.ClickException(
            "ICEWATCH_KAFKA__BOOTSTRAP is not set: scheduled probes publish to Kafka (use --once to just print)"
        )
    return KafkaPublisher(settings.kafka, settings.topics, settings.source_host)


def format_table(results: list[ProbeResult]) -> str:
    header = ("server", "kind", "transport", "target", "result", "code", "latency_ms", "error")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.server_id,
                r.kind,
                r.transport,
                r.target,
                "ok" if r.success else "FAIL",
                "" if r.error_code is None else str(r.error_code),
                "" if r.latency_ms is None else f"{r.latency_ms:.1f}",
                r.error or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


@click.command("probe")
@click.option(
    "--inventory",
    "inventory_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Fleet inventory YAML (servers to probe).",
)
@click.option("--once", is_flag=True, help="Probe every target once, print the results and exit (publishes nothing).")
@click.option("--json", "as_json", is_flag=True, help="With --once: print JSON lines (ProbeResult objects).")
def probe(inventory_path: Path, once: bool, as_json: bool) -> None:
    """Active STUN Binding / TURN Allocate probes against every server of the fleet inventory.

    Settings: ICEWATCH_PROBES_* (interval, timeout, TURN credentials or REST secret, vantage).
    With --once the exit status is 1 when any probe failed. Without it, probe rounds run every
    ICEWATCH_PROBES_INTERVAL_S seconds and are published to Kafka until interrupted (/metrics
    on ICEWATCH_METRICS_PORT).

    Example: ICEWATCH_PROBES_TURN_SECRET=... icewatch probe --once --inventory deploy/inventory.example.yaml
    """
    from collector.inventory import load_inventory

    root = current_settings()
    settings = root.probes
    try:
        inventory = load_inventory(inventory_path)
    except IcewatchError as exc:
        raise click.ClickException(str(exc)) from exc

    if once:
        scheduler = ProbeScheduler(inventory, settings, _NoPublisher())
        results = scheduler.probe_all()
        if as_json:
            for r in results:
                click.echo(r.model_dump_json())
        else:
            click.echo(format_table(results))
        if any(not r.success for r in results):
            sys.exit(1)
        return

    publisher = build_publisher(root)
    scheduler = ProbeScheduler(inventory, settings, publisher)
    registry = CollectorRegistry()
    registry.register(SourcesCollector(probes=scheduler))
    try:
        stop_metrics = serve_metrics(root.host, root.metrics_port, registry)
    except IcewatchError as exc:
        publisher.close()
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_scheduled(scheduler, stop)
    finally:
        stop_metrics()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        publisher.close()


def run_scheduled(scheduler: ProbeScheduler, stop: threading.Event) -> None:
    """Run probe rounds in the background until ``stop`` is set, then publish what is pending."""
    scheduler.start()
    try:
        stop.wait()
    finally:
        scheduler.shutdown()
        if scheduler.pending:
            log.warning("%d probe result(s) were not published before exit", scheduler.pending)


class _NoPublisher:
    """--once prints instead of publishing."""

    def publish(self, payloads: object, tenant: str = "default") -> None:
        raise AssertionError("--once does not publish")

    def close(self) -> None:
        pass
