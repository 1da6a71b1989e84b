"""Numbered, immutable, forwards-only schema migrations, recorded in ``schema_migrations``.

Files: processors/store/migrations/NNNN_name.sql; each statement ends with ';' at the end of a line.
An applied file whose checksum changed stops the run: write a new file instead of editing one.
The cluster variant (Replicated engines + Distributed tables) is generated from the same files.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from collector.errors import ConfigError
from processors.store.sink import Sink

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


def migrate(sink: Sink, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations in order; return those applied now."""
    sink.execute(MIGRATIONS_TABLE)
    applied = {
        int(r["version"]): str(r["checksum"])
        for r in sink.query("SELECT version, checksum FROM schema_migrations")
    }
    done: list[Migration] = []
    for mig in load_migrations(directory):
        if mig.version in applied:
            if applied[mig.version] != mig.checksum:
                raise ConfigError(
                    f"migration {mig.version:04d}_{mig.name} was edited after it was applied; "
                    "migrations are immutable: restore it and add a new numbered file"
                )
            continue
        for stmt in mig.statements():
            sink.execute(stmt)
        sink.insert(
            "schema_migrations",
            [{"version": mig.version, "name": mig.name, "checksum": mig.checksum}],
        )
        done.append(mig)
    return done


_ENGINE = re.compile(r"ENGINE\s*=\s*(Replacing|Aggregating|Summing)?MergeTree(\(([^)]*)\))?")
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


def _shard_key(create_stmt: str) -> str:
    """Rows that must converge (one call, one TURN session) must land on one shard."""
    for column in ("call_id", "session_id", "server_id"):
        if re.search(rf"^\s*{column}\s", create_stmt, re.MULTILINE):
            return f"cityHash64({column})"
    return "rand()"


def cluster_statements(sql: str, cluster: str, database: str = "icewatch") -> list[str]:
    """The cluster variant of one migration: tables become ``<name>_local`` with a Replicated
    engine ON CLUSTER plus a Distributed ``<name>`` in front; views read the Distributed tables,
    materialized views write the local tables of their node."""
    out: list[str] = []
    for stmt in split_statements(sql):
        table = _CREATE_TABLE.search(stmt)
        engine = _ENGINE.search(stmt)
        if table and engine:
            name = table.group(1)
            kind = engine.group(1) or ""
            args = engine.group(3) or ""
            zk = f"'/clickhouse/tables/{{shard}}/{database}/{name}', '{{replica}}'"
            new_engine = f"ENGINE = Replicated{kind}MergeTree({zk}{', ' + args if args else ''})"
            local = (
                stmt[: table.start()]
                + f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER {cluster}"
                + stmt[table.end() : engine.start()]
                + new_engine
                + stmt[engine.end() :]
            )
            local = local.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
            out.append(local)
            out.append(
                f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {cluster} AS {name}_local "
                f"ENGINE = Distributed({cluster}, {database}, {name}_local, {_shard_key(stmt)})"
            )
        elif stmt.startswith("CREATE MATERIALIZED VIEW"):
            mv = re.sub(r"(MATERIALIZED VIEW IF NOT EXISTS \w+)", rf"\1 ON CLUSTER {cluster}", stmt, count=1)
            mv = re.sub(r"\bTO (\w+)", r"TO \1_local", mv, count=1)
            mv = re.sub(r"\bFROM (\w+)", r"FROM \1_local", mv)
            out.append(mv)
        elif stmt.startswith("CREATE VIEW"):
            out.append(re.sub(r"(VIEW IF NOT EXISTS \w+)", rf"\1 ON CLUSTER {cluster}", stmt, count=1))
        elif stmt.startswith("ALTER TABLE"):
            alter = re.sub(r"^ALTER TABLE (\w+)", rf"ALTER TABLE \1_local ON CLUSTER {cluster}", stmt, count=1)
            out.append(alter)
            out.append(re.sub(r"^ALTER TABLE (\w+)", rf"ALTER TABLE \1 ON CLUSTER {cluster}", stmt, count=1))
        elif stmt.startswith("DROP VIEW"):
            out.append(re.sub(r"(VIEW IF EXISTS \w+)", rf"\1 ON CLUSTER {cluster}", stmt, count=1))
        else:
            out.append(stmt)
    return out
