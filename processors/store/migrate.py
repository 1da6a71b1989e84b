"""Numbered, immutable, forwards-only schema migrations, recorded in ``schema_migrations``.

Files: processors/store/migrations/NNNN_name.sql; each statement ends with ';' at the end of a line.
An applied file whose checksum changed stops the run: write a new file instead of editing one.
The cluster variant (Replicated engines + Distributed tables) is generated from the same files and
applied by ``migrate_cluster`` (``icewatch migrate`` with ICEWATCH_CLICKHOUSE__CLUSTER or --cluster),
which records each version in a ``schema_migrations`` table replicated to every node; services with a
cluster configured never migrate, ``check_cluster_schema`` refuses a schema that is behind.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collector.errors import ConfigError, StoreError
from processors.store.sink import Sink

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = MergeTree ORDER BY version"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        return split_statements(self.sql)


def split_statements(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    out: list[str] = []
    buf: list[str] = []
    for ln in lines:
        buf.append(ln)
        if ln.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        raise ConfigError(f"migration text after the last ';': {rest[:60]!r}")
    return out


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ConfigError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"duplicate migration numbers in {directory}")
    return found


def _applied(sink: Sink) -> dict[int, str]:
    """version -> checksum of what ``schema_migrations`` records (``max(checksum)``: a version
    recorded twice, e.g. by two runs racing, counts once)."""
    rows = sink.query("SELECT version, max(checksum) AS checksum FROM schema_migrations GROUP BY version")
    return {int(r["version"]): str(r["checksum"]) for r in rows}


def _pending(applied: dict[int, str], migrations: list[Migration]) -> list[Migration]:
    """The migrations not recorded yet; an applied one whose file changed stops the run first."""
    for mig in migrations:
        if mig.version in applied and applied[mig.version] != mig.checksum:
            raise ConfigError(
                f"migration {mig.version:04d}_{mig.name} was edited after it was applied; "
                "migrations are immutable: restore it and add a new numbered file"
            )
    return [mig for mig in migrations if mig.version not in applied]


def migrate(sink: Sink, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations in order; return those applied now."""
    sink.execute(MIGRATIONS_TABLE)
    return _apply_pending(sink, directory, Migration.statements)


def _apply_pending(sink: Sink, directory: Path, statements: Callable[[Migration], list[str]]) -> list[Migration]:
    """Send each pending migration's ``statements`` in order, recording its version after its last."""
    done: list[Migration] = []
    for mig in _pending(_applied(sink), load_migrations(directory)):
        for stmt in statements(mig):
            sink.execute(stmt)
        sink.insert(
            "schema_migrations",
            [{"version": mig.version, "name": mig.name, "checksum": mig.checksum}],
        )
        done.append(mig)
    return done


_ENGINE = re.compile(r"ENGINE\s*=\s*(Replacing|Aggregating|Summing)?MergeTree(\(([^)]*)\))?")
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")
_REPLACE_TABLE = re.compile(r"^CREATE OR REPLACE TABLE (\w+)")
_AS_SELECT = re.compile(r"^AS SELECT\b", re.MULTILINE)
_INSERT_SELECT = re.compile(r"^INSERT INTO (\w+)\s*(\([^)]*\))?\s*(?=SELECT\b)")
# A table a query reads (not a database-qualified one such as system.macros).
_READS = re.compile(r"\b(FROM|JOIN) (\w+)(?![\w.])")
_ORDER_BY = re.compile(r"^ORDER BY \(?([^)\n]*)\)?\s*$", re.MULTILINE)
# Column commands are the only ALTERs a Distributed table takes; the others change the local table.
_COLUMN_ALTER = re.compile(r"^ALTER TABLE \w+ (ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b")
# The columns that place a row on a shard, first found in the table's sorting key wins: a call's
# rows on one shard; a TURN server's lines, sessions and minutes (and a server's probes) on one shard.
SHARD_COLUMNS = ("call_id", "server_id")


def _shard_key(create_stmt: str) -> str:
    """Rows that must converge (same sorting key) land on one shard: the key is a column of the
    sorting key, so a replayed row goes where its first copy went; and a materialized view writes
    on the node of its source row, so a target keyed by the same column agrees with its source."""
    order = _ORDER_BY.search(create_stmt)
    columns = [c.strip() for c in order.group(1).split(",")] if order else []
    for column in SHARD_COLUMNS:
        if column in columns:
            return f"cityHash64({column})"
    return "rand()"


def cluster_statements(sql: str, cluster: str, database: str = "icewatch") -> list[str]:
    """The cluster variant of one migration: tables become ``<name>_local`` with a Replicated
    engine ON CLUSTER plus a Distributed ``<name>`` in front; views read the Distributed tables,
    materialized views write the local tables of their node. A table rebuilt by CREATE OR REPLACE
    ... AS SELECT is rebuilt on every node from that node's local tables, its Distributed table
    re-created; an INSERT ... SELECT is sent once, through the Distributed tables. A statement of
    another kind stops the run (run on one node only, it would leave the cluster's nodes different).

    tests/unit/test_cluster_schema.py reads every statement with ClickHouse's parser; none has run
    on a cluster (Keeper paths and macros, ON CLUSTER DDL, inserts through Distributed). Views that
    JOIN Distributed tables (call_turn_sessions) may need ``distributed_product_mode`` set on the
    cluster: unverified."""
    out: list[str] = []
    for stmt in split_statements(sql):
        table = _CREATE_TABLE.search(stmt)
        engine = _ENGINE.search(stmt)
        replace = _REPLACE_TABLE.match(stmt)
        select = _AS_SELECT.search(stmt)
        if table and engine:
            name = table.group(1)
            zk = f"'/clickhouse/tables/{{shard}}/{database}/{name}'"
            head = f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER {cluster}"
            out.append(_replicated(stmt, table, engine, head, zk))
            out.append(
                f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {cluster} AS {name}_local "
                f"ENGINE = Distributed({cluster}, {database}, {name}_local, {_shard_key(stmt)})"
            )
        elif replace and engine and select and engine.start() < select.start():
            # Every node rebuilds its own local table from its own local tables (a view writes on the
            # node of its source row, so they hold the same shard's rows); the new table is created
            # beside the old one before the swap, so its Keeper path carries the new table's uuid.
            # The Distributed table in front is re-created from the new columns. Unverified (no
            # cluster here): {uuid} in the path of a table created ON CLUSTER by REPLACE, and each
            # replica of a shard inserting the same rebuilt rows (uniqExact states then hold the same
            # identities twice, which counts once; a quantile state's weights would double).
            name = replace.group(1)
            zk = f"'/clickhouse/tables/{{shard}}/{database}/{name}/{{uuid}}'"
            head = f"CREATE OR REPLACE TABLE {name}_local ON CLUSTER {cluster}"
            local = _replicated(stmt[: select.start()], replace, engine, head, zk)
            out.append(local + _READS.sub(r"\1 \2_local", stmt[select.start() :]))
            out.append(
                f"CREATE OR REPLACE TABLE {name} ON CLUSTER {cluster} AS {name}_local "
                f"ENGINE = Distributed({cluster}, {database}, {name}_local, {_shard_key(stmt)})"
            )
        elif insert := _INSERT_SELECT.match(stmt):
            # Sent once, through the Distributed tables: it reads every shard and writes where the
            # target's sharding key says; it returns after every shard has its rows.
            out.append(stmt[: insert.end()] + "SETTINGS distributed_foreground_insert = 1\n" + stmt[insert.end() :])
        elif stmt.startswith("CREATE MATERIALIZED VIEW"):
            if re.search(r"\bJOIN\b", stmt):
                raise ConfigError(f"no cluster variant for a materialized view with a JOIN: {stmt[:60]!r}")
            mv = re.sub(r"(MATERIALIZED VIEW IF NOT EXISTS \w+)", rf"\1 ON CLUSTER {cluster}", stmt, count=1)
            mv = re.sub(r"\bTO (\w+)", r"TO \1_local", mv, count=1)
            mv = re.sub(r"\bFROM (\w+)", r"FROM \1_local", mv)
            out.append(mv)
        elif stmt.startswith("CREATE VIEW"):
            out.append(re.sub(r"(VIEW IF NOT EXISTS \w+)", rf"\1 ON CLUSTER {cluster}", stmt, count=1))
        elif stmt.startswith("ALTER TABLE"):
            alter = re.sub(r"^ALTER TABLE (\w+)", rf"ALTER TABLE \1_local ON CLUSTER {cluster}", stmt, count=1)
            out.append(alter)
            if _COLUMN_ALTER.match(stmt):
                out.append(re.sub(r"^ALTER TABLE (\w+)", rf"ALTER TABLE \1 ON CLUSTER {cluster}", stmt, count=1))
        elif stmt.startswith("DROP VIEW"):
            out.append(re.sub(r"(VIEW IF EXISTS \w+)", rf"\1 ON CLUSTER {cluster}", stmt, count=1))
        else:
            raise ConfigError(f"no cluster variant for this kind of statement: {stmt[:60]!r}")
    return out


def _replicated(stmt: str, table: re.Match[str], engine: re.Match[str], head: str, zk_path: str) -> str:
    """``stmt``'s table as a Replicated local table: ``head`` instead of its CREATE, ``zk_path``."""
    kind = engine.group(1) or ""
    args = engine.group(3) or ""
    new_engine = f"ENGINE = Replicated{kind}MergeTree({zk_path}, '{{replica}}'{', ' + args if args else ''})"
    local = stmt[: table.start()] + head + stmt[table.end() : engine.start()] + new_engine + stmt[engine.end() :]
    return local.replace("non_replicated_deduplication_window", "replicated_deduplication_window")


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_identifier(value: str, what: str) -> str:
    """A cluster or database name goes into DDL text: letters, digits and '_' only."""
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{what} must be letters, digits and '_' (at most 64, not starting with a digit), "
                          f"got {value[:70]!r}")
    return value


def cluster_migrations_table(cluster: str, database: str) -> str:
    """``schema_migrations`` on a cluster: one replicated table on every node (one Keeper path, no
    ``{shard}`` in it), so whichever node a service connects to reads the same record. It needs the
    ``{replica}`` macro to be unique across the whole cluster (the usual hostname)."""
    check_identifier(cluster, "the cluster name")
    check_identifier(database, "the database name")
    return (
        f"CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER {cluster}\n"
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))\n"
        f"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{database}/schema_migrations', '{{replica}}') "
        "ORDER BY version"
    )


def create_database_statement(cluster: str, database: str) -> str:
    return (f"CREATE DATABASE IF NOT EXISTS {check_identifier(database, 'the database name')} "
            f"ON CLUSTER {check_identifier(cluster, 'the cluster name')}")


def migrate_cluster(sink: Sink, cluster: str, database: str,
                    directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply the cluster variant of the pending migrations through one node (every statement is ON
    CLUSTER), recording each version after its last statement; return those applied now.

    ``sink`` is connected to ``database`` (unqualified names land there on every node). A migration
    that stops half-way is not recorded: the next run sends it again whole, which its statements
    allow (IF [NOT] EXISTS everywhere, RENAME COLUMN IF EXISTS)."""
    sink.execute(cluster_migrations_table(cluster, database))
    return _apply_pending(sink, directory, lambda mig: cluster_statements(mig.sql, cluster, database))


def check_cluster_schema(sink: Sink, cluster: str, directory: Path = MIGRATIONS_DIR) -> None:
    """A service's start on a cluster: the recorded schema must hold every migration of this build.

    Behind (or never migrated), or a recorded migration that differs from this build's file: refuse,
    naming the command. Ahead (versions this build does not know, written by a newer release's
    migration Job while this one still runs during a rolling upgrade): start, with a warning."""
    command = f"icewatch migrate --cluster {cluster}"
    try:
        applied = _applied(sink)
    except StoreError as exc:
        raise ConfigError(f"the ClickHouse cluster {cluster!r} has no readable schema_migrations table "
                          f"({str(exc).splitlines()[0][:200]}): run `{command}` (the chart's migration Job "
                          "does) before starting this service") from exc
    migrations = load_migrations(directory)
    try:
        pending = _pending(applied, migrations)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; the cluster's schema was migrated by another build than this one "
                          f"(ICEWATCH_CLICKHOUSE__CLUSTER={cluster})") from exc
    if pending:
        have = max(applied, default=0)
        raise ConfigError(
            f"the schema on the ClickHouse cluster {cluster!r} is behind this build (recorded up to "
            f"{have:04d}, missing {', '.join(f'{m.version:04d}_{m.name}' for m in pending)}): run "
            f"`{command}` (the chart's migration Job does) before starting this service")
    known = {m.version for m in migrations}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        log.warning("the schema on the ClickHouse cluster %r is ahead of this build (migrations %s are not in "
                    "it): starting, as during a rolling upgrade; upgrade this service", cluster,
                    ", ".join(f"{v:04d}" for v in newer))
