"""The processors' commands: ``run`` (all in one), ``processor``, ``migrate``, ``query``, ``sql``, ``explain``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from collector.cli_base import current_settings, fail, local_url
from collector.errors import ConfigError, IcewatchError, InvalidInput, StorageUnavailable
from collector.settings import Settings
from processors.service.assembly import STREAMS

if TYPE_CHECKING:
    from processors.store.sink import Sink

T = TypeVar("T")


@click.command()
def run() -> None:
    """Run the pipeline in one process.

    Without ICEWATCH_KAFKA__BOOTSTRAP: HTTP ingest writes straight into the embedded store
    (chDB in ICEWATCH_DATA_DIR) and answers 202 only after the write. With Kafka: the collector
    publishes to Kafka and a processor thread consumes into the store.

    Example: ICEWATCH_INVENTORY=deploy/inventory.example.yaml icewatch run
    """
    from processors.service.run import run_all_in_one

    settings = current_settings()
    try:
        run_all_in_one(settings)
    except IcewatchError as exc:
        fail(exc)


@click.command()
@click.option("--stream", "streams", multiple=True, type=click.Choice(STREAMS),
              help="Input stream(s) to consume (repeatable; default: all three, one consumer group each).")
def processor(streams: tuple[str, ...]) -> None:
    """Run a processor: consume call reports, TURN events and probes into ClickHouse.

    Each stream has its own consumer group (<ICEWATCH_GROUP_ID>.<stream>); scale out by starting
    more processors, up to the partition count of each topic. /healthz and /metrics are served on
    ICEWATCH_HOST:ICEWATCH_METRICS_PORT (127.0.0.1 unless ICEWATCH_HOST says otherwise; a Prometheus in
    another container needs ICEWATCH_HOST=0.0.0.0), and /v1/query too, so the embedded store it holds can be read.

    Example: ICEWATCH_KAFKA__BOOTSTRAP=kafka:9092 ICEWATCH_CLICKHOUSE__HOST=ch1 icewatch processor --stream call_reports
    """
    from processors.service.processor import run_processor

    settings = current_settings()
    if settings.kafka is None:
        raise click.ClickException("ICEWATCH_KAFKA__BOOTSTRAP is not set: a processor consumes from Kafka")
    try:
        run_processor(settings, streams or STREAMS)
    except IcewatchError as exc:
        fail(exc)


@click.command()
@click.option("--cluster", default=None,
              help="Apply the cluster variant ON CLUSTER NAME (default: ICEWATCH_CLICKHOUSE__CLUSTER).")
@click.option("--database", default=None,
              help="Database of the cluster variant (default: ICEWATCH_CLICKHOUSE__DATABASE; with --print: icewatch).")
@click.option("--print", "print_only", is_flag=True,
              help="Print the cluster variant's DDL instead of applying it (records nothing: a reference).")
def migrate(cluster: str | None, database: str | None, print_only: bool) -> None:
    """Apply pending schema migrations to the configured store, recording each in schema_migrations.

    On a ClickHouse cluster (--cluster NAME or ICEWATCH_CLICKHOUSE__CLUSTER) it sends, through the
    configured node, the cluster variant (ON CLUSTER, Replicated tables, Distributed tables over
    them) of the migrations not recorded yet, and records each in a schema_migrations table
    replicated to every node; services with the cluster set never migrate, they refuse to start
    while the schema is behind. Running it again applies nothing new.

    \b
    Examples:
      ICEWATCH_CLICKHOUSE__HOST=ch1 ICEWATCH_CLICKHOUSE__DATABASE=icewatch icewatch migrate --cluster prod
      icewatch migrate --cluster prod --print > cluster.sql
    """
    from processors.store.migrate import (
        check_identifier,
        cluster_migrations_table,
        cluster_statements,
        create_database_statement,
        load_migrations,
        migrate_cluster,
    )
    from processors.store.migrate import migrate as apply
    from processors.store.open import connect_server, open_store, unreachable

    if print_only:
        settings_cluster = None if cluster else _configured_cluster()
        name = cluster or settings_cluster
        if not name:
            fail(ConfigError("--print prints the cluster variant: give --cluster NAME "
                             "(or set ICEWATCH_CLICKHOUSE__CLUSTER)"))
        db = database or "icewatch"
        try:
            check_identifier(name, "--cluster")
            check_identifier(db, "--database")
            click.echo("-- The cluster variant, for reading: it records nothing in schema_migrations, so\n"
                       "-- apply it with `icewatch migrate --cluster NAME`, which sends only what is pending.")
            click.echo(create_database_statement(name, db) + ";\n")
            click.echo(cluster_migrations_table(name, db) + ";\n")
            for mig in load_migrations():
                click.echo(f"-- {mig.version:04d}_{mig.name}")
                for stmt in cluster_statements(mig.sql, name, db):
                    click.echo(stmt + ";\n")
        except IcewatchError as exc:
            fail(exc)
        return
    settings = current_settings()
    ch = settings.clickhouse
    name = cluster or (ch.cluster if ch else None)
    if name:
        if ch is None:
            fail(ConfigError("a cluster is migrated through one of its nodes: set ICEWATCH_CLICKHOUSE__HOST "
                             "(and __PORT, __USER, __PASSWORD, __DATABASE), or print the DDL with --print"))
        ch = ch.model_copy(update={"cluster": name, "database": database or ch.database})
        try:
            check_identifier(name, "--cluster")
            check_identifier(ch.database, "ICEWATCH_CLICKHOUSE__DATABASE")
            # ON CLUSTER DDL waits for every node (distributed_ddl_task_timeout, 180 s by default)
            boot = connect_server(ch, database="default", send_receive_timeout=600.0)
            try:
                boot.execute(create_database_statement(name, ch.database))
            finally:
                boot.close()
            sink = connect_server(ch, send_receive_timeout=600.0)
            try:
                done = migrate_cluster(sink, name, ch.database)
            finally:
                sink.close()
        except StorageUnavailable as exc:
            fail(unreachable(ch, exc))
        except IcewatchError as exc:
            fail(exc)
        click.echo(f"cluster {name}, database {ch.database}: applied {len(done)} migration(s)"
                   + "".join(f"\n  {m.version:04d}_{m.name}" for m in done))
        return
    if database:
        fail(ConfigError("--database names the cluster variant's database; for one server set "
                         "ICEWATCH_CLICKHOUSE__DATABASE"))
    try:
        sink = open_store(settings, apply_migrations=False)
        done = apply(sink)
    except IcewatchError as exc:
        fail(exc)
    click.echo(f"applied {len(done)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in done))
    sink.close()


def _configured_cluster() -> str | None:
    """ICEWATCH_CLICKHOUSE__CLUSTER when the settings load (--print needs no server)."""
    try:
        ch = current_settings().clickhouse
    except (IcewatchError, SystemExit, click.ClickException):
        return None
    return ch.cluster if ch else None


def _from_the_data(settings: Settings, url: str | None, ask: Callable[[str], T], read: Callable[[Sink], T]) -> T:
    """An answer from wherever the data is: ``ask(base URL)`` of --url; else, with no ClickHouse
    server configured, of the process holding the embedded store (`icewatch run`, then
    `icewatch processor`); else ``read(store)`` on the configured server, or on the embedded store
    itself when nothing holds it."""
    from processors.store.open import open_store
    from processors.store.query_client import NotServed

    if url:
        try:
            return ask(url)
        except NotServed as exc:
            raise click.ClickException(f"{exc}; is `icewatch run` or a processor running there?") from None
    if settings.clickhouse is None:
        holders = [local_url(settings)]
        if settings.metrics_port:
            holders.append(f"http://127.0.0.1:{settings.metrics_port}")
        for base in holders:
            try:
                return ask(base)
            except NotServed:
                continue
    # A ClickHouse server is migrated by `icewatch migrate`; an embedded store nobody holds is opened here.
    sink = open_store(settings, apply_migrations=settings.clickhouse is None)
    try:
        return read(sink)
    finally:
        sink.close()


def _query_rows(settings: Settings, url: str | None, api_key: str | None,
                name: str, since: str, dims: tuple[str, ...] | None, tenant: str | None) -> list[dict[str, Any]]:
    from processors.store.queries import run_named
    from processors.store.query_client import fetch_rows

    params = {"name": name, "since": since}
    if tenant:
        params["tenant"] = tenant
    if dims:
        params["by"] = ",".join(dims)
    return _from_the_data(settings, url, lambda base: fetch_rows(base, params, api_key),
                          lambda sink: run_named(sink, name, since, dims, tenant or "default"))


@click.command()
@click.argument("name", required=False)
@click.option("--since", default="7d", show_default=True, help="Look-back window: 30m, 12h, 7d, 4w.")
@click.option("--by", "by", default=None, help="Comma-separated dimensions (region,turn-region,protocol,...).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
@click.option("--tenant", default=None, help="Tenant to read (default: \"default\"; with API keys, the key's).")
@click.option("--url", default=None, help="Ask this process (`icewatch run` or a processor) instead of finding "
              "the data: a configured ClickHouse server, else the local process holding the embedded store.")
@click.option("--api-key", envvar="ICEWATCH_API_KEY", default=None, help="API key for the query route.")
@click.option("--list", "list_", is_flag=True, help="List the named queries and dimensions.")
def query(name: str | None, since: str, by: str | None, fmt: str, tenant: str | None, url: str | None,
          api_key: str | None, list_: bool) -> None:
    """Run a named analyst query (relay-usage, path-mix, relay-distance, ...).

    Example: icewatch query relay-usage --since 24h --by region,protocol --format csv
    """
    from processors.store.queries import DIMENSIONS, QUERIES
    from processors.store.render import render_rows

    if list_ or not name:
        for n, q in sorted(QUERIES.items()):
            known = ", ".join(sorted(q.dimensions or DIMENSIONS))
            click.echo(f"{n:22} {q.description}\n{'':22} --by {','.join(q.default_by)} (default); dimensions: {known}")
        return
    dims = tuple(d.strip() for d in by.split(",") if d.strip()) if by else None
    try:
        rows = _query_rows(current_settings(), url, api_key, name, since, dims, tenant)
    except IcewatchError as exc:
        fail(exc)
    click.echo(render_rows(rows, fmt))


def _sql_result(settings: Settings, url: str | None, api_key: str | None, statement: str) -> dict[str, Any]:
    """``{"columns", "rows"}`` found as `query` finds its rows; the same read-only checks and limits
    run wherever the statement runs."""
    from processors.store.readonly_sql import run_readonly
    from processors.store.sql_client import post_sql

    def read(sink: Sink) -> dict[str, Any]:
        result = run_readonly(sink, statement, settings.sql)
        return {"columns": result.columns, "rows": result.rows}

    return _from_the_data(settings, url, lambda base: post_sql(base, statement, api_key), read)


@click.command()
@click.argument("statement")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
@click.option("--url", default=None, help="Ask this process (`icewatch run` or a processor) instead of finding "
              "the store: the local process holding the embedded store, else the store itself.")
@click.option("--api-key", envvar="ICEWATCH_API_KEY", default=None,
              help="API key for POST /v1/sql; the statement then sees the key's tenant only.")
def sql(statement: str, fmt: str, url: str | None, api_key: str | None) -> None:
    """Run one read-only SQL statement (a SELECT) on the store; '-' reads it from stdin.

    \b
    Examples:
      icewatch sql "SELECT client_region, count() AS calls FROM calls FINAL
                    WHERE event_time > now() - INTERVAL 1 DAY GROUP BY client_region"
      icewatch sql - --format csv < report.sql

    Refused: writes, DDL, SET, SETTINGS and FORMAT clauses, several statements, table functions
    other than numbers()/zeros(). Limits (ICEWATCH_SQL__*): 100k result rows, 100M rows or 1 GiB
    read, 30 s; a statement over one stops with the limit named. With API keys, POST /v1/sql shows
    each key its own tenant's rows only.
    """
    from processors.store.render import render_rows

    if statement == "-":
        statement = sys.stdin.read()
    try:
        result = _sql_result(current_settings(), url, api_key, statement)
    except IcewatchError as exc:
        fail(exc)
    rows: list[dict[str, Any]] = result.get("rows", [])
    click.echo(render_rows(rows, fmt))


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@click.option("--inventory", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Fleet inventory YAML (default: ICEWATCH_INVENTORY or none).")
def explain(files: tuple[Path, ...], as_json: bool, inventory: Path | None) -> None:
    """Explain every call / peer connection in each file: its facts in words, the evidence behind
    the diagnosis (events, samples, thresholds), the runbook's "what to check", and the capture's
    own notes. --json prints the same as one JSON object per call.

    Example: icewatch explain --json webrtc_internals_dump.txt
    """
    from collector.reports import parse_file
    from processors.explain import explain_report, explanation_json, render_text
    from processors.service.assembly import facts_env

    settings = current_settings()
    if inventory is not None:
        settings = settings.model_copy(update={"inventory": inventory})
    try:
        env = facts_env(settings)
    except IcewatchError as exc:
        fail(exc)
    out: list[dict[str, Any]] = []
    failed = False
    for path in files:
        try:
            reports = parse_file(path)
        except InvalidInput as exc:
            click.echo(f"{path}: {exc}", err=True)
            failed = True
            continue
        for rep in reports:
            explained = explain_report(rep, env)
            if as_json:
                out.append(explanation_json(explained, str(path)))
            else:
                click.echo(render_text(explained, str(path)) + "\n")
    if as_json:
        click.echo(json.dumps(out, indent=2))
    if failed:
        sys.exit(1)
