"""``icewatch alerts check|run``: the alert rules validated, and the evaluator against ClickHouse."""

from __future__ import annotations

import signal
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collector.cli_base import current_settings, fail
from collector.errors import ConfigError, IcewatchError
from collector.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from alerts.evaluator import Evaluator
    from processors.store.sink import Sink


@click.group()
def alerts() -> None:
    """Alert rules (alerts/rules/*.yaml): check them, run the evaluator, export them.

    Example: icewatch alerts check
    """


@alerts.command()
def check() -> None:
    """Validate every rule: schema, durations, labels, templates, runbook, and its SQL compiled
    against the real schema (a temporary embedded store migrated like production).

    Example: icewatch alerts check
    """
    from alerts.check import check_rules
    from alerts.rules import load_rules
    from processors.store.chdb import ChdbSink
    from processors.store.migrate import migrate

    try:
        rules = load_rules()
        with tempfile.TemporaryDirectory(prefix="icewatch-alerts-check-") as tmp:
            sink = ChdbSink(tmp)
            try:
                migrate(sink)
                problems = check_rules(sink, rules)
            finally:
                sink.close()
    except IcewatchError as exc:
        fail(exc)
    if problems:
        fail(ConfigError("; ".join(problems)))
    for rule in rules:
        click.echo(f"ok  {rule.id:<26} {rule.severity:<7} every {rule.interval:g}s  {rule.title}")


@alerts.command()
def run() -> None:
    """Evaluate the rules against the ClickHouse server (ICEWATCH_CLICKHOUSE__*) until SIGTERM,
    delivering to ICEWATCH_ALERTS__ALERTMANAGER_URLS and/or the signed webhook.

    On ICEWATCH_HOST:ICEWATCH_METRICS_PORT (0: none) it serves /metrics, /healthz and the built-in
    pages: /alerts (what it evaluates), /runbooks/{id} and the dashboards, where the links of its
    alerts lead (ICEWATCH_ALERTS__EXTERNAL_URL: the address users reach this port at). The pages'
    data need an API key when ICEWATCH_API_KEYS is set.

    With the embedded store, `icewatch run` evaluates the rules itself (the store admits one process).

    Example: ICEWATCH_CLICKHOUSE__HOST=ch1 ICEWATCH_ALERTS__ALERTMANAGER_URLS=http://am:9093 icewatch alerts run
    """
    from prometheus_client import CollectorRegistry

    from alerts.metrics import EvaluatorCollector
    from alerts.service import evaluator_for
    from processors.store.open import open_store

    settings = current_settings()
    if settings.clickhouse is None:
        fail(ConfigError("icewatch alerts run reads a ClickHouse server: set ICEWATCH_CLICKHOUSE__HOST "
                         "(with the embedded store, `icewatch run` evaluates the rules itself)"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        sink = open_store(settings)
        evaluator = evaluator_for(settings, sink)
        registry = CollectorRegistry()
        registry.register(EvaluatorCollector(evaluator))
        try:
            server = serve_evaluator(settings, sink, evaluator, registry)
        except ConfigError:
            sink.close()
            raise
    except IcewatchError as exc:
        fail(exc)
    if not evaluator.notifiers:
        click.echo("warning: no notifier configured (ICEWATCH_ALERTS__ALERTMANAGER_URLS or the webhook): "
                   "alerts are evaluated and logged only", err=True)
    evaluator.start()
    try:
        stop.wait()
    finally:
        evaluator.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        sink.close()


def serve_evaluator(settings: Settings, sink: Sink, evaluator: Evaluator,
                    registry: CollectorRegistry) -> ThreadingHTTPServer | None:
    """/metrics, /healthz and the built-in pages (with the evaluator's alerts and the runbooks) on
    ICEWATCH_HOST:ICEWATCH_METRICS_PORT; None when the port is 0."""
    from alerts.rules import RUNBOOKS_DIR
    from dashboards.pages.handler import Pages
    from processors.service.health import serve_health

    if not settings.metrics_port:
        return None
    pages = Pages(sink, settings.api_key_values(), registries=[registry], alerts=evaluator.snapshot,
                  runbooks=RUNBOOKS_DIR)
    try:
        return serve_health(settings.metrics_port, registry, lambda: True, host=settings.host,
                            pages=lambda path, query, headers: pages.answer(path, query, headers).parts())
    except OSError as exc:
        raise ConfigError(f"cannot serve /metrics and the pages on {settings.host}:{settings.metrics_port} "
                          f"({exc.strerror or exc}): set ICEWATCH_METRICS_PORT to a free port, or 0 for none") from exc


@alerts.command("export-grafana")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("deploy/grafana/provisioning/alerting/icewatch.yaml"), show_default=True,
              help="The Grafana alert-rule provisioning file to write.")
@click.option("--external-url", default="http://127.0.0.1:8080", show_default=True,
              help="icewatch's base URL as on-call reaches it (the runbook links).")
def export_grafana(out: Path, external_url: str) -> None:
    """Write the rules as Grafana alert-rule file provisioning (groups by interval, ClickHouse ->
    reduce -> threshold; see alerts/grafana_export.py for how templates translate).

    Example: icewatch alerts export-grafana --external-url https://icewatch.example.com
    (mount the directory at /etc/grafana/provisioning/alerting).
    """
    from alerts.grafana_export import write

    try:
        click.echo(str(write(out, external_url)))
    except (IcewatchError, ValueError) as exc:
        fail(exc if isinstance(exc, IcewatchError) else ConfigError(str(exc)))
