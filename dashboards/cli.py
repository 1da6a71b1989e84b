"""``icewatch dashboards build|push``: the Grafana rendering of the dashboards, as files or pushed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from collector.cli_base import fail
from collector.errors import IcewatchError

DEFAULT_OUT = Path("deploy/grafana")


def write_bundle(out: Path) -> list[Path]:
    """Every file of the Grafana bundle under ``out``; stale dashboard files are removed."""
    from dashboards.grafana import ClickHouseConnection, dashboard_provisioning, datasource_provisioning, render_all

    written: list[Path] = []
    boards = out / "dashboards"
    boards.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for old in boards.glob("*.json"):
        if old.stem not in rendered:
            old.unlink()
    for uid, doc in rendered.items():
        path = boards / f"{uid}.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        written.append(path)
    files: dict[str, dict[str, Any]] = {
        "provisioning/datasources/icewatch.yaml": datasource_provisioning(ClickHouseConnection()),
        "provisioning/dashboards/icewatch.yaml": dashboard_provisioning(),
    }
    for rel, doc in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        header = "# Written by `icewatch dashboards build`: edit dashboards/ and rebuild instead.\n"
        path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
        written.append(path)
    return written


@click.group()
def dashboards() -> None:
    """Grafana dashboards (the same ones `icewatch run` serves at /).

    Example: icewatch dashboards build --out deploy/grafana
    """


@dashboards.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Directory for dashboards/*.json and provisioning/{datasources,dashboards}/icewatch.yaml.")
def build(out: Path) -> None:
    """Write the Grafana dashboards and provisioning files.

    Example: icewatch dashboards build --out deploy/grafana
    (mount OUT/provisioning at /etc/grafana/provisioning and OUT/dashboards at
    /var/lib/grafana/dashboards/icewatch).
    """
    for path in write_bundle(out):
        click.echo(str(path))


@dashboards.command()
@click.option("--url", required=True, help="Grafana's base URL, e.g. https://grafana.example.com")
@click.option("--token", required=True, envvar="GRAFANA_TOKEN", show_envvar=True,
              help="A service-account token (Admin creates the datasource; Editor is enough afterwards).")
@click.option("--clickhouse-host", default="clickhouse", show_default=True, help="ClickHouse host as Grafana sees it.")
@click.option("--clickhouse-port", default=9000, show_default=True, type=click.IntRange(1, 65535),
              help="Port of --clickhouse-host as Grafana reaches it (native protocol 9000, HTTP 8123).")
@click.option("--clickhouse-protocol", type=click.Choice(["native", "http"]), default="native", show_default=True,
              help="Protocol of the Grafana ClickHouse datasource.")
@click.option("--clickhouse-user", default="default", show_default=True,
              help="ClickHouse user of the datasource (read-only is enough).")
@click.option("--clickhouse-database", default="default", show_default=True,
              help="Database holding icewatch's tables.")
@click.option("--clickhouse-password", envvar="ICEWATCH_CLICKHOUSE_PASSWORD", default=None, show_envvar=True,
              help="Sent once in secureJsonData; Grafana never returns it.")
@click.option("--clickhouse-secure/--no-clickhouse-secure", default=False, show_default=True,
              help="TLS between Grafana and ClickHouse.")
def push(url: str, token: str, clickhouse_host: str, clickhouse_port: int, clickhouse_protocol: str,
         clickhouse_user: str, clickhouse_database: str, clickhouse_password: str | None,
         clickhouse_secure: bool) -> None:
    """Create or update the folder, the ClickHouse datasource and the dashboards in Grafana.

    Idempotent: what Grafana already holds is compared first; a second push changes nothing.

    Example: GRAFANA_TOKEN=glsa_... icewatch dashboards push --url https://grafana.example.com
    """
    from dashboards import push as pushing
    from dashboards.grafana import FOLDER_TITLE, FOLDER_UID, ClickHouseConnection, render_all

    conn = ClickHouseConnection(host=clickhouse_host, port=clickhouse_port,
                                protocol="http" if clickhouse_protocol == "http" else "native",
                                secure=clickhouse_secure, username=clickhouse_user, database=clickhouse_database)
    try:
        report = pushing.push(url, token, folder_uid=FOLDER_UID, folder_title=FOLDER_TITLE,
                              datasource=conn.datasource(clickhouse_password),
                              dashboards=list(render_all().values()))
    except IcewatchError as exc:
        fail(exc)
    for line in report.lines():
        click.echo(line)
