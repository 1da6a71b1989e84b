"""A simulated day of a 1,000-call fleet in the embedded store, for the dashboard page benchmark.

1,000 concurrent calls all day with the simulator's call durations (20-60 s drawn, 40 s on average)
is, by Little's law, 1,000 / 40 s = 25 calls a second: 2.16 million calls and 86.4 million call
seconds (one stats sample each) a day. Building each of them through the simulator and the parser
costs about 2.3 ms of CPU per call (render 0.6, parse 1.0, rows 0.5): 80 minutes of CPU. So:

1. A pool of ``POOL`` planned calls (collector.simulator Fleet, normal conditions) goes the real way
   up to the store: the report the SDK would upload (``run.upload``), parsed (``parse_upload``),
   rows built by the real RowBuilder (processors/rows/builder.py, facts with the demo GeoIP), and the
   configured server's coturn lines parsed by collector/turn/coturn.py; all inserted through the
   real sink (ChdbSink.insert, big batches) into staging tables ``tpl_<table>`` (the same columns,
   no materialized view).
2. The day is the pool repeated: call k of the day is pool call k % POOL, ending at
   day start + k / 25 s, with its own call id, report id, TURN session and event ids; ClickHouse
   copies the staging rows with the times shifted (INSERT ... SELECT) into the real tables, so the
   real materialized views build the rollups (call_minute, rtt_band_minute, turn_sessions, ...).
3. Probe rounds every 30 s all day, each round's results (``probes.probe_results``) and its coturn
   lines (``coturn_log.probe_lines``) built and inserted the real way, not copied.

The HTTP ingest path is not what this measures (the collector benchmark does): rows go straight in.
The store is cached under var/bench/pages-<VERSION>; it is rebuilt when VERSION changes or the
day ended more than ``MAX_AGE`` ago (the dashboards read "now-24h": an old day slides out).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.contract import TurnEvent
from collector.inventory import load_inventory
from collector.reports import UploadContext, parse_upload
from collector.simulator.coturn_log import call_lines, probe_lines
from collector.simulator.geoip import write_demo_geoip
from collector.simulator.incidents import Conditions
from collector.simulator.plan import Fleet
from collector.simulator.probes import probe_results
from collector.simulator.run import upload
from collector.turn.coturn import CoturnParser
from processors.facts.call_facts import FactsEnv
from processors.facts.geo import MaxMindLocator
from processors.rows.batch import Rows, merge_rows
from processors.rows.builder import RowBuilder
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate

REPO = Path(__file__).resolve().parents[2]
INVENTORY_PATH = REPO / "deploy" / "inventory.example.yaml"
VERSION = "1"  # change when the generation changes: the cached store is rebuilt
CACHE = REPO / "var" / "bench" / f"pages-{VERSION}"
TENANT = "default"
SEED = 11
CONCURRENT = 1000
MEAN_CALL_S = 40.0  # the simulator draws 20-60 s (plan.py)
CALLS_PER_S = CONCURRENT / MEAN_CALL_S
DAY = timedelta(hours=24)
POOL = 4000  # distinct calls built through the real path
PROBE_EVERY = timedelta(seconds=30)
MAX_AGE = timedelta(hours=3)
COPIES_PER_INSERT = 20
# time columns of the copied tables: shifted by the copy's offset
SHIFTED = {"event_time", "ingested_at", "started_at", "ended_at", "at"}
_INDEX = re.compile(r"(\d{7})$")


@dataclass
class Day:
    path: Path
    end: datetime
    calls: int
    rows: dict[str, int]
    turn_lines: int
    probe_rounds: int
    generation_s: float | None  # None: taken from the cache

    def describe(self) -> str:
        rows = ", ".join(f"{t} {n:,}" for t, n in sorted(self.rows.items()))
        how = f"generated in {self.generation_s:.0f} s" if self.generation_s is not None else "cached"
        return (f"simulated day ({how}, {self.path.relative_to(REPO)}): {self.calls:,} calls "
                f"({CONCURRENT:,} concurrent, {CALLS_PER_S:g} calls/s), {self.turn_lines:,} coturn lines, "
                f"{self.probe_rounds:,} probe rounds; ending {self.end:%Y-%m-%d %H:%M} UTC; rows: {rows}")


def _columns(sink: ChdbSink, table: str) -> list[str]:
    return [str(r["name"]) for r in sink.query(f"DESCRIBE TABLE {table}")
            if r.get("default_type") not in ("ALIAS", "MATERIALIZED")]


def _copy_sql(sink: ChdbSink, table: str, day_start_ms: int, pool_end_ms: int, first: int, count: int,
              calls: int) -> str:
    """INSERT INTO table SELECT the staging rows, once per copy n in [first, first + count): call k =
    n * POOL + i (i: the pool index at the end of the call id) ends at day start + k / rate."""
    interval_ms = 1000.0 / CALLS_PER_S
    offset = f"toInt64({day_start_ms} + (n * {POOL} + pool_i) * {interval_ms} - {pool_end_ms})"
    select = []
    for c in _columns(sink, table):
        if c in SHIFTED:
            select.append(f"{c} + toIntervalMillisecond({offset}) AS {c}")
        elif c in ("call_id", "report_id"):
            select.append(f"if({c} = '', '', concat({c}, '-', toString(n))) AS {c}")
        elif c == "event_id":
            select.append("concat(event_id, '/', toString(n)) AS event_id")
        elif c == "session_id":
            select.append(f"if(session_id = '', '', toString(toUInt64(session_id) + n * {POOL})) AS session_id")
        else:
            select.append(c)
    source = f"tpl_{table}"
    # the pool index: from the coturn session id (100...000 + index), else the end of the call id
    pool_i = "toUInt64OrZero(session_id) % 100000000" if table == "turn_events" else "toUInt64OrZero(right(call_id, 7))"
    return (f"INSERT INTO {table} ({', '.join(_columns(sink, table))}) SETTINGS max_insert_threads = 2 "
            f"SELECT {', '.join(select)} FROM (SELECT *, {pool_i} AS pool_i FROM {source}) AS t, "
            f"(SELECT number AS n FROM numbers({first}, {count})) AS c WHERE n * {POOL} + pool_i < {calls}")


# One pool call in 20 under each of three incidents, so a day has candidate errors, rejected
# credentials and distant relays spread over it (about 15 % of the calls).
INCIDENTS = (Conditions(regions_stun_blocked=frozenset({"apac"})),
             Conditions(servers_auth_broken=frozenset({"turn-us-east-1"})),
             Conditions(misroutes=(("eu", "turn-apac-1"),)))


def _conditions(i: int) -> Conditions:
    return INCIDENTS[i % 20] if i % 20 < len(INCIDENTS) else Conditions()


def _build(path: Path, end: datetime) -> Day:
    t0 = time.monotonic()
    inventory = load_inventory(INVENTORY_PATH)
    path.mkdir(parents=True)
    geo = MaxMindLocator(str(write_demo_geoip(inventory, path / "demo.mmdb")))
    builder = RowBuilder(FactsEnv(inventory=inventory, geo=geo))
    fleet = Fleet(inventory, SEED)
    start = end - DAY
    calls = int(DAY.total_seconds() * CALLS_PER_S)
    sink = ChdbSink(path / "store")
    try:
        migrate(sink)
        # 1. the pool, the real way, into staging tables
        pool_end = end - timedelta(minutes=5)
        pool: Rows = {}
        lines: dict[str, list[str]] = {}
        for i in range(POOL):
            plan = fleet.plan(i, pool_end, _conditions(i))
            route, body, headers = upload(plan)
            ctx = UploadContext(client_address=plan.client_ip, user_agent=headers.get("user-agent"),
                                format_hint="telnyx" if route == "/call_report" else None,
                                call_id_hint=headers.get("x-call-id"), report_id_hint=headers.get("x-call-report-id"),
                                hash_key=b"bench")
            for report in parse_upload(body, ctx):
                merge_rows(pool, builder.rows(report, TENANT, pool_end))
            lines.setdefault(plan.configured.id, []).extend(call_lines(plan))
        turn_lines_per_pool = sum(len(v) for v in lines.values())
        for server_id, server_lines in lines.items():
            server = inventory.server(server_id)
            parser = CoturnParser(server_id, b"bench", region=server.region if server else "")
            for n, line in enumerate(server_lines):
                event = parser.parse(line, source=f"bench-{server_id}", offset=n * 200, received_at=pool_end)
                if isinstance(event, TurnEvent):
                    merge_rows(pool, builder.rows(event, TENANT, pool_end))
        for table, rows in pool.items():
            sink.execute(f"CREATE TABLE tpl_{table} AS {table}")
            for k in range(0, len(rows), 20_000):
                sink.insert(f"tpl_{table}", rows[k:k + 20_000])
        print(f"  pool of {POOL} calls built the real way: {time.monotonic() - t0:.0f} s", flush=True)

        # 2. the day: copies of the pool, times shifted, through the real materialized views
        copies = -(-calls // POOL)
        start_ms, pool_end_ms = int(start.timestamp() * 1000), int(pool_end.timestamp() * 1000)
        tables = sorted(pool, key=lambda t: t == "calls")  # calls last, as the publisher writes them
        for first in range(0, copies, COPIES_PER_INSERT):
            count = min(COPIES_PER_INSERT, copies - first)
            for table in tables:
                sink.execute(_copy_sql(sink, table, start_ms, pool_end_ms, first, count, calls))
            print(f"  copies {first + count}/{copies}: {time.monotonic() - t0:.0f} s", flush=True)
        for table in pool:
            sink.execute(f"DROP TABLE tpl_{table}")

        # 3. probe rounds every 30 s, the real way
        rounds = int(DAY / PROBE_EVERY)
        batch: Rows = {}
        probe_line_count = 0
        parsers = {s.id: CoturnParser(s.id, b"bench", region=s.region) for s in fleet.turn_servers}
        offsets: Counter[str] = Counter()
        for r in range(rounds):
            at = start + PROBE_EVERY * (r + 1)
            for result in probe_results(inventory, at, Conditions(), r, SEED):
                merge_rows(batch, builder.rows(result, TENANT, at))
            for server in fleet.turn_servers:
                for line in probe_lines(server, at, r, False):
                    offsets[server.id] += 1
                    event = parsers[server.id].parse(line, source=f"bench-probe-{server.id}",
                                                     offset=offsets[server.id] * 200, received_at=at)
                    probe_line_count += 1
                    if isinstance(event, TurnEvent):
                        merge_rows(batch, builder.rows(event, TENANT, at))
            if (r + 1) % 480 == 0 or r == rounds - 1:
                for table, rows in batch.items():
                    sink.insert(table, rows)
                batch = {}
        sink.execute("OPTIMIZE TABLE calls FINAL")  # as a day-old store would be: merged
        counts = {t: int(sink.query(f"SELECT count() AS n FROM {t}")[0]["n"])
                  for t in ("calls", "call_samples", "candidates", "candidate_errors", "turn_events", "probes",
                            "call_minute", "rtt_band_minute")}
    finally:
        sink.close()
    day = Day(path, end, calls, counts, turn_lines_per_pool * copies + probe_line_count, rounds,
              time.monotonic() - t0)
    (path / "day.json").write_text(json.dumps({
        "version": VERSION, "end": end.isoformat(), "calls": calls, "rows": counts,
        "turn_lines": day.turn_lines, "probe_rounds": rounds, "generation_s": day.generation_s}))
    return day


def simulated_day(now: datetime | None = None) -> Day:
    """The cached day when it is recent enough, else a new one ending now."""
    now = now or datetime.now(UTC)
    meta = CACHE / "day.json"
    if meta.is_file():
        doc = json.loads(meta.read_text())
        end = datetime.fromisoformat(doc["end"])
        if doc.get("version") == VERSION and now - end < MAX_AGE:
            return Day(CACHE, end, int(doc["calls"]), dict(doc["rows"]), int(doc["turn_lines"]),
                       int(doc["probe_rounds"]), None)
    if CACHE.exists():
        shutil.rmtree(CACHE)
    try:
        return _build(CACHE, now.replace(microsecond=0))
    except BaseException:
        shutil.rmtree(CACHE, ignore_errors=True)
        raise
