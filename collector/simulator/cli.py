"""``icewatch simulate``: drive a running collector (``icewatch run`` or ``icewatch collector``) with
the simulated fleet."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from collector.cli_base import current_settings, fail, local_url
from collector.errors import IcewatchError
from collector.inventory import load_inventory
from collector.simulator.incidents import Incident, parse_incident


def _incident(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[Incident, ...]:
    try:
        return tuple(parse_incident(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option("--inventory", "inventory_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Fleet inventory YAML (default: ICEWATCH_INVENTORY).")
@click.option("--url", default=None, help="Collector to send to (default: the configured address).")
@click.option("--api-key", envvar="ICEWATCH_API_KEY", default=None, help="API key, when the collector has keys.")
@click.option("--seed", default=1, show_default=True, help="Same seed, same calls and lines (apart from times).")
@click.option("--rate", default=200.0, show_default=True, type=click.FloatRange(0.1, 100_000),
              help="Calls per minute (200: 1,000 concurrent calls reporting every 5 minutes).")
@click.option("--duration", default=None, type=click.FloatRange(1), help="Seconds to run (default: until Ctrl-C).")
@click.option("--incident", "incidents", multiple=True, callback=_incident,
              help="NAME:ARGS@START+DURATION (repeatable): turn-down:SERVER, turn-auth:SERVER, "
                   "turn-quota:SERVER, stun-blocked:REGION, misroute:REGION:SERVER, udp-block:REGION, "
                   "dtls-block:REGION; e.g. turn-down:turn-eu-1@60+90.")
@click.option("--turn-log-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write each TURN server's coturn log to DIR/<server>.log (point ICEWATCH_TURN_LOGS at them).")
@click.option("--probe-interval", default=30.0, show_default=True, type=click.FloatRange(1),
              help="Seconds between simulated probe rounds.")
@click.option("--write-geoip", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the demo GeoIP database for the simulated client ranges to this file and exit.")
def simulate(inventory_path: Path | None, url: str | None, api_key: str | None, seed: int, rate: float,
             duration: float | None, incidents: tuple[Incident, ...], turn_log_dir: Path | None,
             probe_interval: float, write_geoip: Path | None) -> None:
    """Simulate a fleet: SDK call reports (W3C and Telnyx) over HTTP, coturn logs, probe results.

    Seeded and reproducible; scripted incidents change only what they would change in reality.
    A progress line goes to stderr every 5 seconds.

    Example: icewatch simulate --duration 300 --incident turn-down:turn-eu-1@60+90
    """
    from collector.simulator.run import Simulator, SimulatorConfig

    settings = current_settings()
    path = inventory_path or settings.inventory
    if path is None:
        raise click.UsageError("give --inventory or set ICEWATCH_INVENTORY")
    try:
        inventory = load_inventory(path)
    except IcewatchError as exc:
        fail(exc)
    if write_geoip is not None:
        from collector.simulator.geoip import write_demo_geoip

        written = write_demo_geoip(inventory, write_geoip)
        click.echo(f"demo GeoIP database (simulated ranges, demo data only): {written}")
        return
    config = SimulatorConfig(url=url or local_url(settings), seed=seed, calls_per_minute=rate, duration_s=duration,
                             incidents=incidents, turn_log_dir=turn_log_dir, probe_interval_s=probe_interval,
                             api_key=api_key)
    try:
        sim = Simulator(inventory, config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stats = sim.run(stop)
    for err in stats.errors[:5]:
        click.echo(f"  not accepted: {err}", err=True)
    if stats.failed:
        sys.exit(1)
