"""The ``icewatch`` command: one entry point with a subcommand per component."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from collector.errors import ConfigError, IcewatchError, InvalidInput


def _setup_logging(level: str) -> None:
    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            out = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                   "msg": record.getMessage()}
            if record.exc_info:
                out["exc"] = self.formatException(record.exc_info)
            return json.dumps(out)

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _settings_or_exit(factory: Any) -> Any:
    try:
        return factory()
    except ValidationError as exc:
        msgs = "; ".join(f"ICEWATCH_{'__'.join(str(p).upper() for p in e['loc'])}: {e['msg']}"
                         for e in exc.errors())
        raise click.ClickException(f"invalid settings: {msgs}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="INFO", show_default=True, help="Log level (logs are JSON lines).")
def main(log_level: str) -> None:
    """icewatch: WebRTC call-quality monitoring (call reports + TURN logs -> Kafka -> ClickHouse).

    Settings come from ICEWATCH_* environment variables (see README); nested ones use
    double underscores, e.g. ICEWATCH_KAFKA__BOOTSTRAP=127.0.0.1:9092.
    """
    _setup_logging(log_level)


@main.command()
def run() -> None:
    """Run the pipeline in one process.

    Without ICEWATCH_KAFKA__BOOTSTRAP: HTTP ingest writes straight into the embedded store
    (chDB in ICEWATCH_DATA_DIR) and answers 202 only after the write. With Kafka: the collector
    publishes to Kafka and a processor thread consumes into the store.
    """
    from collector.settings import CollectorSettings
    from processors.settings import ProcessorSettings

    cs = _settings_or_exit(CollectorSettings)
    ps = _settings_or_exit(ProcessorSettings)
    try:
        from collector.runtime import serve

        serve(cs, ps)
    except IcewatchError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
def collector() -> None:
    """Run only the HTTP collector, publishing to Kafka (ICEWATCH_KAFKA__BOOTSTRAP required)."""
    from collector.settings import CollectorSettings

    cs = _settings_or_exit(CollectorSettings)
    if cs.kafka is None:
        raise click.ClickException("ICEWATCH_KAFKA__BOOTSTRAP is not set (use `icewatch run` for embedded mode)")
    from collector.runtime import serve

    serve(cs, None)


@main.command()
@click.option("--stream", "streams", multiple=True, type=click.Choice(["call_reports", "turn_events", "probe_results"]),
              help="Input stream(s) to consume (repeatable; default: all three, one consumer group each).")
def processor(streams: tuple[str, ...]) -> None:
    """Run a processor: consume call reports, TURN events and probes into ClickHouse.

    Each stream has its own consumer group (<ICEWATCH_GROUP_ID>.<stream>); scale out by starting
    more processors, up to the partition count of each topic. /healthz and /metrics are served on
    ICEWATCH_METRICS_PORT (127.0.0.1).
    """
    import threading

    from collector.kafka_publisher import KafkaPublisher
    from processors.service.assembly import STREAMS, build_loop, open_store
    from processors.service.health import serve_health
    from processors.service.metrics import ProcessorMetrics
    from processors.settings import ProcessorSettings

    ps = _settings_or_exit(ProcessorSettings)
    if ps.kafka is None:
        raise click.ClickException("ICEWATCH_KAFKA__BOOTSTRAP is not set: a processor consumes from Kafka")
    try:
        from collector.kafka_topics import ensure_topics

        ensure_topics(ps.kafka, ps.topics)
        sink = open_store(ps)
        dlq = KafkaPublisher(ps.kafka, ps.topics, source_host="processor")
        metrics = ProcessorMetrics()
        loops = [build_loop(ps, sink, dlq, metrics, (s,)) for s in (streams or STREAMS)]
    except IcewatchError as exc:
        raise click.ClickException(str(exc)) from exc
    threads = [threading.Thread(target=loop.run, name=f"loop-{i}") for i, loop in enumerate(loops)]
    if ps.metrics_port:
        serve_health(ps.metrics_port, metrics.registry, lambda: all(t.is_alive() for t in threads))

    def stop(*_: object) -> None:
        for loop in loops:
            loop.stop()

    import signal

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.5)
    dlq.close()
    sink.close()


@main.command()
@click.option("--cluster", default=None, help="Print the cluster variant (ON CLUSTER, Replicated, Distributed).")
@click.option("--database", default="icewatch", show_default=True, help="Database name for the cluster variant.")
def migrate(cluster: str | None, database: str) -> None:
    """Apply pending schema migrations (or print the cluster variant with --cluster)."""
    from processors.service.assembly import open_store
    from processors.settings import ProcessorSettings
    from processors.store.migrate import cluster_statements, load_migrations
    from processors.store.migrate import migrate as apply

    if cluster:
        for mig in load_migrations():
            click.echo(f"-- {mig.version:04d}_{mig.name}")
            for stmt in cluster_statements(mig.sql, cluster, database):
                click.echo(stmt + ";\n")
        return
    ps = _settings_or_exit(ProcessorSettings)
    try:
        sink = open_store(ps, apply_migrations=False)
        done = apply(sink)
    except IcewatchError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"applied {len(done)} migration(s)" + "".join(f"\n  {m.version:04d}_{m.name}" for m in done))
    sink.close()


def _render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if not rows:
        return "(no rows)" if fmt == "table" else ""
    cols = list(rows[0])
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue().rstrip("\n")
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _default_url() -> str:
    from collector.settings import CollectorSettings

    cs = _settings_or_exit(CollectorSettings)
    return f"http://{cs.host}:{cs.port}"


@main.command()
@click.argument("name", required=False)
@click.option("--since", default="7d", show_default=True, help="Look-back window: 30m, 12h, 7d, 4w.")
@click.option("--by", "by", default=None, help="Comma-separated dimensions (region,turn-region,protocol,...).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--tenant", default="default", show_default=True)
@click.option("--url", default=None, help="A running `icewatch run` (default: its configured address); "
              "used first because the embedded store admits one process.")
@click.option("--api-key", envvar="ICEWATCH_API_KEY", default=None, help="API key for --url.")
@click.option("--list", "list_", is_flag=True, help="List the named queries and dimensions.")
def query(name: str | None, since: str, by: str | None, fmt: str, tenant: str, url: str | None,
          api_key: str | None, list_: bool) -> None:
    """Run a named analyst query (relay-usage, path-mix, relay-distance, ...)."""
    from processors.store.queries import DIMENSIONS, QUERIES, run_named

    if list_ or not name:
        for n, q in sorted(QUERIES.items()):
            click.echo(f"{n:22} {q.description} (default --by {','.join(q.default_by)})")
        click.echo(f"\ndimensions: {', '.join(sorted(DIMENSIONS))}")
        return
    dims = tuple(d.strip() for d in by.split(",") if d.strip()) if by else None
    base = url or _default_url()
    params = {"name": name, "since": since, "tenant": tenant}
    if dims:
        params["by"] = ",".join(dims)
    req = urllib.request.Request(f"{base}/v1/query?{urllib.parse.urlencode(params)}")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            rows = json.loads(resp.read())["rows"]
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code}: {exc.read().decode(errors='replace')}") from exc
    except (urllib.error.URLError, ConnectionError):
        if url:
            raise click.ClickException(f"cannot reach {url}") from None
        # Nothing running: open the store directly.
        from processors.service.assembly import open_store
        from processors.settings import ProcessorSettings

        try:
            sink = open_store(_settings_or_exit(ProcessorSettings))
            rows = run_named(sink, name, since, dims, tenant)
            sink.close()
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from exc
        except IcewatchError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(_render(rows, fmt))


@main.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default=None, help="Collector to send to (default: the configured address).")
@click.option("--api-key", envvar="ICEWATCH_API_KEY", default=None)
@click.option("--format", "fmt", default=None, help="Force a format instead of detecting it.")
def import_(files: tuple[Path, ...], url: str | None, api_key: str | None, fmt: str | None) -> None:
    """Send dumps (webrtc-internals, rtcstats, Telnyx, W3C) through the collector's HTTP path."""
    base = url or _default_url()
    failed = 0
    for path in files:
        q = f"?format={urllib.parse.quote(fmt)}" if fmt else ""
        req = urllib.request.Request(f"{base}/v1/call-reports{q}", data=path.read_bytes(), method="POST",
                                     headers={"Content-Type": "application/json"})
        if api_key:
            req.add_header("Authorization", f"Bearer {api_key}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = json.loads(resp.read())
            click.echo(f"{path}: accepted {body['accepted']} report(s)")
        except urllib.error.HTTPError as exc:
            failed += 1
            click.echo(f"{path}: {exc.code} {exc.read().decode(errors='replace')}", err=True)
        except urllib.error.URLError as exc:
            raise click.ClickException(f"cannot reach the collector at {base}: {exc.reason}") from exc
    if failed:
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
@click.option("--inventory", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Fleet inventory YAML (default: ICEWATCH_INVENTORY or none).")
def explain(files: tuple[Path, ...], as_json: bool, inventory: Path | None) -> None:
    """Print the derived facts for every call / peer connection in each file."""
    from collector.reports import parse_file
    from processors.facts.call_facts import derive_call_facts
    from processors.service.assembly import facts_env
    from processors.settings import ProcessorSettings

    ps = _settings_or_exit(ProcessorSettings)
    if inventory is not None:
        ps = ps.model_copy(update={"inventory": inventory})
    try:
        env = facts_env(ps)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
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
            facts = derive_call_facts(rep, env).model_dump(mode="json")
            facts["file"] = str(path)
            out.append(facts)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        for f in out:
            click.echo(_explain_text(f))
    if failed:
        sys.exit(1)


def _explain_text(f: dict[str, Any]) -> str:
    def v(x: Any) -> str:
        return "-" if x is None or x == "" else str(x)

    lines = [
        f"call {f['call_id']}  ({f['file']}, {f['source_format']})",
        f"  diagnosis        {f['diagnosis']}  labels: {', '.join(f['labels']) or '-'}",
        f"  path             {v(f['path_class'])}  local {v(f['local_candidate_type'])} -> "
        f"remote {v(f['remote_candidate_type'])}  relay {v(f['relay_protocol'])}  turn {v(f['turn_url'])}",
        f"  gathered         {', '.join(f['gathered_types']) or '-'}  pair changes {f['pair_changes']}",
        f"  ICE              connected {f['ice_connected']}  failed {f['ice_failed']}  "
        f"connect {v(f['ice_connect_ms'])} ms  reconnects {f['reconnects']}",
        f"  DTLS             connected {f['dtls_connected']}  after {v(f['dtls_connect_ms'])} ms  "
        f"stall {f['dtls_stall']} ({v(f['dtls_stall_ms'])} ms)",
        f"  RTT              median {v(f['rtt_median_ms'])} ms  p95 {v(f['rtt_p95_ms'])}  max {v(f['rtt_max_ms'])}"
        f"  band {v(f['rtt_band'])}  source {v(f['rtt_source'])}  samples {f['rtt_samples']}",
        f"  quality          jitter {v(f['jitter_ms'])} ms  loss {v(f['loss_pct'])} %  MOS {v(f['mos'])}",
        f"  relay distance   {v(f['relay_distance_km'])} km  nearest {v(f['nearest_server_id'])} "
        f"({v(f['nearest_distance_km'])} km)  distant {f['distant_relay']}",
    ]
    errs = f.get("candidate_errors") or []
    if errs:
        lines.append("  candidate errors " + "; ".join(f"{e['url']} {e['error_code']} x{e['count']}" for e in errs))
    return "\n".join(lines)


def _add_component_commands() -> None:
    from collector.probes.cli import probe
    from collector.turn.cli import turn

    main.add_command(turn)
    main.add_command(probe)


_add_component_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
