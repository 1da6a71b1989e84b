"""The collector's commands: ``icewatch collector`` (HTTP ingest into Kafka) and ``icewatch import``."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import click

from collector.cli_base import current_settings, fail, local_url
from collector.errors import IcewatchError


@click.command()
def collector() -> None:
    """Run only the HTTP collector, publishing to Kafka (ICEWATCH_KAFKA__BOOTSTRAP required).

    With ICEWATCH_TURN_LOGS it also tails coturn logs (the TURN log tailer beside coturn), with
    ICEWATCH_SYSLOG_UDP_PORT it receives coturn's syslog, with ICEWATCH_PROBES_ENABLED it probes.

    Example: ICEWATCH_KAFKA__BOOTSTRAP=kafka:9092 ICEWATCH_HOST=0.0.0.0 icewatch collector
    """
    settings = current_settings()
    if settings.kafka is None:
        raise click.ClickException("ICEWATCH_KAFKA__BOOTSTRAP is not set (use `icewatch run` for embedded mode)")
    from collector.kafka_publisher import KafkaPublisher
    from collector.kafka_topics import ensure_topics
    from collector.serve import serve_http

    try:
        ensure_topics(settings.kafka, settings.topics)
        publisher = KafkaPublisher(settings.kafka, settings.topics, settings.source_host)
    except IcewatchError as exc:
        fail(exc)
    try:
        serve_http(settings, publisher)
    except IcewatchError as exc:
        fail(exc)
    finally:
        publisher.close()


@click.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default=None, help="Collector to send to (default: the configured address).")
@click.option("--api-key", envvar="ICEWATCH_API_KEY", default=None, help="API key, when the collector has keys.")
@click.option("--format", "fmt", default=None, help="Force a format instead of detecting it.")
def import_(files: tuple[Path, ...], url: str | None, api_key: str | None, fmt: str | None) -> None:
    """Send dumps (webrtc-internals, rtcstats, Telnyx, W3C) through the collector's HTTP path.

    Each file's result goes to stdout (accepted) or stderr (rejected); progress (files, reports
    accepted, files rejected) goes to stderr, one line redrawn in place on a terminal, a line every
    few seconds otherwise, and a summary at the end. Exit status 1 when a file was rejected.

    Example: icewatch import --url http://127.0.0.1:8080 webrtc_internals_dump.txt
    """
    from collector.import_progress import ImportProgress

    base = url or local_url(current_settings())
    progress = ImportProgress(len(files), sys.stderr, tty=sys.stderr.isatty())
    for path in files:
        q = f"?format={urllib.parse.quote(fmt)}" if fmt else ""
        req = urllib.request.Request(f"{base}/v1/call-reports{q}", data=path.read_bytes(), method="POST",
                                     headers={"Content-Type": "application/json"})
        if api_key:
            req.add_header("Authorization", f"Bearer {api_key}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = json.loads(resp.read())
            progress.clear()
            click.echo(f"{path}: accepted {body['accepted']} report(s)")
            progress.accepted(int(body["accepted"]))
        except urllib.error.HTTPError as exc:
            progress.clear()
            click.echo(f"{path}: {exc.code} {exc.read().decode(errors='replace')}", err=True)
            progress.rejected_file()
        except urllib.error.URLError as exc:
            progress.finish(stopped=f"cannot reach the collector at {base}")
            raise click.ClickException(f"cannot reach the collector at {base}: {exc.reason}") from exc
    progress.finish()
    if progress.rejected:
        sys.exit(1)
