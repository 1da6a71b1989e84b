"""The ``icewatch`` command: the composition root. It sets up logging and adds every package's
commands; it owns no command itself. (The one module of collector/ allowed to import processors.)"""

from __future__ import annotations

import click

from alerts.cli import alerts
from collector import cli as collector_cli
from collector.cli_base import SettingsHolder, setup_logging
from collector.probes.cli import probe
from collector.simulator.cli import simulate
from collector.turn.cli import turn
from dashboards.cli import dashboards
from processors import cli as processors_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="INFO", show_default=True, help="Log level (logs are JSON lines).")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """icewatch: WebRTC call-quality monitoring (call reports + TURN logs -> Kafka -> ClickHouse).

    Settings come from ICEWATCH_* environment variables (see README); nested ones use
    double underscores, e.g. ICEWATCH_KAFKA__BOOTSTRAP=127.0.0.1:9092.

    Example: icewatch run   (then open http://127.0.0.1:8080/)
    """
    setup_logging(log_level)
    ctx.ensure_object(SettingsHolder)


for command in (
    processors_cli.run,
    collector_cli.collector,
    processors_cli.processor,
    processors_cli.migrate,
    processors_cli.query,
    processors_cli.sql,
    collector_cli.import_,
    processors_cli.explain,
    turn,
    probe,
    simulate,
    dashboards,
    alerts,
):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    main()
