"""The cluster variant of the schema (``icewatch migrate --cluster``), read by ClickHouse's own parser.

chDB parses each statement without running it: ``formatQuery`` gives the canonical text (ON CLUSTER,
TO, AS are in it) and ``EXPLAIN AST`` the tree (engine arguments, sorting key, columns, the tables a
SELECT reads). Every migration is covered, including ones added later. Not run here: the DDL
itself, which needs a ClickHouse cluster with Keeper (Replicated engines, ON CLUSTER, Distributed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from collector.errors import ConfigError
from processors.store.chdb import ChdbSink
from processors.store.migrate import (
    SHARD_COLUMNS,
    cluster_statements,
    create_database_statement,
    load_migrations,
    migrate_cluster,
    split_statements,
)

CLUSTER = "prod"
DATABASE = "icewatch"


@dataclass
class Node:
    """One line of ``EXPLAIN AST``: its kind (``Function``, ``Identifier`` ...), its text, children."""

    kind: str
    text: str
    children: list[Node] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def first(self, kind: str, text: str | None = None) -> Node:
        for node in self.walk():
            if node.kind == kind and (text is None or node.text == text):
                return node
        raise AssertionError(f"no {kind} {text or ''} in the tree")


_PARSER: list[ChdbSink] = []  # the module's one store (chDB admits one per process), see parser()


def formatted(sql: str) -> str:
    """ClickHouse's canonical one-line text of a statement: it parsed, or chDB raises."""
    rows = _PARSER[0].query("SELECT formatQuerySingleLine({sql:String}) AS text", {"sql": sql})
    return str(rows[0]["text"])


def ast(sql: str) -> Node:
    text = "\n".join(str(r["explain"]) for r in _PARSER[0].query(f"EXPLAIN AST {sql}"))
    root = Node("", "")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        body = re.sub(r" \(children \d+\)$", "", line.strip())
        kind, _, rest = body.partition(" ")
        if kind in ("Storage", "Columns"):  # "Storage definition", "Columns definition"
            kind, rest = body, ""
        node = Node(kind, rest.strip())
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((depth, node))
    assert len(root.children) == 1, text[:200]
    return root.children[0]


def args(fn: Node) -> list[Node]:
    """The arguments of a ``Function`` node."""
    return fn.children[0].children if fn.children else []


def engine(tree: Node) -> Node:
    return tree.first("Storage definition").children[0]


def sorting_key(tree: Node) -> list[str]:
    storage = tree.first("Storage definition")
    key = next(n for n in storage.children[1:] if n.kind == "Function" and n.text == "tuple")
    return [a.text for a in args(key)]


def columns(tree: Node) -> list[str]:
    return [n.text for n in tree.walk() if n.kind == "ColumnDeclaration"]


def tables_read(tree: Node) -> set[str]:
    return {n.text for n in tree.walk() if n.kind == "TableIdentifier"}


@dataclass
class Schema:
    """What the single-node schema creates, from all migrations (parsed the same way)."""

    tables: dict[str, Node]
    mv_targets: dict[str, str]  # materialized view -> its target table
    mv_sources: dict[str, set[str]]
    views: set[str]


def single_node_schema() -> Schema:
    schema = Schema({}, {}, {}, set())
    for mig in load_migrations():
        for stmt in split_statements(mig.sql):
            text = formatted(stmt)
            if m := re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS ", text):
                schema.mv_targets[m.group(1)] = m.group(2)
                schema.mv_sources[m.group(1)] = tables_read(ast(stmt))
            elif m := re.match(r"CREATE VIEW IF NOT EXISTS (\w+) AS ", text):
                schema.views.add(m.group(1))
            elif m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+) ", text):
                schema.tables[m.group(1)] = ast(stmt)
    return schema


@pytest.fixture(scope="module", autouse=True)
def parser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An empty store: nothing is created in it, it only parses."""
    sink = ChdbSink(tmp_path_factory.mktemp("parser"))
    _PARSER.append(sink)
    try:
        yield
    finally:
        _PARSER.clear()
        sink.close()


@pytest.fixture(scope="module")
def schema(parser: None) -> Schema:
    return single_node_schema()


@pytest.fixture(scope="module")
def cluster(parser: None) -> list[tuple[str, str, str]]:
    """(migration, statement, canonical text) of every cluster statement of every migration."""
    out = []
    for mig in load_migrations():
        for stmt in cluster_statements(mig.sql, CLUSTER, DATABASE):
            out.append((f"{mig.version:04d}_{mig.name}", stmt, formatted(stmt)))
    return out


def test_every_cluster_statement_parses_and_runs_on_the_whole_cluster(cluster: list[tuple[str, str, str]]) -> None:
    assert len(cluster) >= 50
    for mig, stmt, text in cluster:
        if text.startswith("INSERT INTO"):
            assert_reaches_every_shard(stmt, text)
            continue
        head = re.match(r"(CREATE (?:MATERIALIZED )?VIEW IF NOT EXISTS|CREATE TABLE IF NOT EXISTS|ALTER TABLE"
                        r"|DROP VIEW IF EXISTS|CREATE OR REPLACE TABLE) (\w+) ON CLUSTER (\w+)", text)
        assert head, f"{mig}: {text[:100]}"
        assert head.group(3) == CLUSTER


def assert_reaches_every_shard(stmt: str, text: str) -> None:
    """An INSERT ... SELECT is sent once: it writes a Distributed table and reads Distributed tables
    (every shard), and returns only after every shard has its rows."""
    m = re.match(r"INSERT INTO (\w+) ", text)
    assert m and not m.group(1).endswith("_local"), text[:100]
    assert "ON CLUSTER" not in text
    insert_settings = r"INSERT INTO \w+ \([^)]*\) SETTINGS [\w =,]*\bdistributed_foreground_insert = 1\b"
    assert re.match(insert_settings, text), text[:200]
    read = tables_read(ast(stmt))
    assert read and not any(t.endswith("_local") for t in read), text[:100]


def test_a_rebuilt_table_is_rebuilt_on_every_node_from_its_local_tables_and_its_distributed_table_follows(
    cluster: list[tuple[str, str, str]],
) -> None:
    """CREATE OR REPLACE ... AS SELECT (0014): every node rebuilds its local table from its own local
    tables under a new Keeper path (the old table still holds its own until the swap), then the
    Distributed table in front is re-created from the new columns; views that write it come after."""
    rebuilt = [(i, stmt, text) for i, (_m, stmt, text) in enumerate(cluster)
               if text.startswith("CREATE OR REPLACE TABLE") and "_local ON CLUSTER" in text]
    assert rebuilt, "no migration rebuilds a table"
    for i, stmt, text in rebuilt:
        name = re.match(r"CREATE OR REPLACE TABLE (\w+)_local ON CLUSTER", text).group(1)  # type: ignore[union-attr]
        single = next(s for m in load_migrations() for s in split_statements(m.sql)
                      if s.startswith(f"CREATE OR REPLACE TABLE {name}\n"))
        tree = ast(stmt)
        fn = engine(tree)
        assert fn.text.startswith("Replicated"), name
        assert [a.text for a in args(fn)][:2] == [f"'/clickhouse/tables/{{shard}}/{DATABASE}/{name}/{{uuid}}'",
                                                  "'{replica}'"]
        assert columns(tree) == columns(ast(single))
        assert sorting_key(tree) == sorting_key(ast(single))
        assert "replicated_deduplication_window" in text and "non_replicated" not in text
        read = tables_read(tree) - {"system.macros"}
        assert read == {f"{t}_local" for t in tables_read(ast(single)) - {"system.macros"}}, read
        assert read and all(t.endswith("_local") for t in read)
        follow = cluster[i + 1][2]
        assert follow == (f"CREATE OR REPLACE TABLE {name} ON CLUSTER {CLUSTER} AS {name}_local "
                          f"ENGINE = Distributed({CLUSTER}, {DATABASE}, {name}_local, rand())")
        later_views = [t for _m, _s, t in cluster[i + 2:] if f" TO {name}_local " in t]
        assert later_views, f"no view writes {name} after it is rebuilt"


def test_every_table_becomes_a_replicated_local_table_with_the_same_columns_and_keys(
    schema: Schema, cluster: list[tuple[str, str, str]]
) -> None:
    local = {}
    for mig, stmt, text in cluster:
        if m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)_local ON CLUSTER", text):
            local[m.group(1)] = ast(stmt)
            assert "non_replicated_deduplication_window" not in text, mig
    assert set(local) == set(schema.tables)
    for name, tree in local.items():
        single = schema.tables[name]
        single_engine, replicated = engine(single), engine(tree)
        assert replicated.text == "Replicated" + single_engine.text, name
        zk_path, replica, *rest = args(replicated)
        assert zk_path.text == f"'/clickhouse/tables/{{shard}}/{DATABASE}/{name}'"
        assert replica.text == "'{replica}'"
        assert [a.text for a in rest] == [a.text for a in args(single_engine)], name
        assert columns(tree) == columns(single), name
        assert sorting_key(tree) == sorting_key(single), name


def test_every_distributed_table_points_at_its_local_table_and_a_sharding_key_that_keeps_rows_together(
    schema: Schema, cluster: list[tuple[str, str, str]]
) -> None:
    source_of = {
        target: next(t for t in schema.mv_sources[mv] if t in schema.tables)
        for mv, target in schema.mv_targets.items()
    }
    keys: dict[str, str] = {}
    for _mig, stmt, text in cluster:
        m = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER \w+ AS (\w+) ENGINE = Distributed", text)
        if not m:
            continue
        name = m.group(1)
        assert m.group(2) == f"{name}_local"
        dist = engine(ast(stmt))
        assert dist.text == "Distributed"
        on, database, table, key = args(dist)
        assert (on.text, database.text, table.text) == (CLUSTER, DATABASE, f"{name}_local")
        if key.text == "rand":
            keys[name] = "rand()"
        else:
            assert key.text == "cityHash64", name
            keys[name] = args(key)[0].text
    assert set(keys) == set(schema.tables)
    for name, shard_by in keys.items():
        sort = sorting_key(schema.tables[name])
        wanted = next((c for c in SHARD_COLUMNS if c in sort), "rand()")
        assert shard_by == wanted, name
        if shard_by != "rand()":
            # a replayed row has the same sorting key, so it goes to the shard its first copy went to
            assert shard_by in sort
        elif name not in source_of:
            # rows spread at random can only be rows that never converge
            assert engine(schema.tables[name]).text == "MergeTree", name
    for target, source in source_of.items():
        # a view writes on the node of its source row: a target sharded at all is sharded like it
        assert keys[target] in (keys[source], "rand()"), target
    assert keys["calls"] == keys["call_samples"] == keys["candidates"] == "call_id"
    assert keys["turn_events"] == keys["turn_sessions"] == keys["turn_server_minute"] == "server_id"


def test_materialized_views_read_and_write_the_local_tables_of_their_node(
    schema: Schema, cluster: list[tuple[str, str, str]]
) -> None:
    seen = {}
    for _mig, stmt, text in cluster:
        m = re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) ON CLUSTER \w+ TO (\w+) AS SELECT", text)
        if m:
            seen[m.group(1)] = m.group(2)
            assert tables_read(ast(stmt)) == {f"{t}_local" for t in schema.mv_sources[m.group(1)]}
    assert seen == {mv: f"{target}_local" for mv, target in schema.mv_targets.items()}
    assert all(target in schema.tables for target in schema.mv_targets.values())


def test_views_read_the_distributed_tables(schema: Schema, cluster: list[tuple[str, str, str]]) -> None:
    views = 0
    for _mig, stmt, text in cluster:
        if re.match(r"CREATE VIEW IF NOT EXISTS \w+ ON CLUSTER", text):
            views += 1
            read = tables_read(ast(stmt))
            assert not any(t.endswith("_local") for t in read), text[:80]
            assert read & set(schema.tables), text[:80]
    assert views >= len(schema.views)


def test_column_alters_change_both_tables_and_other_alters_only_the_local_one(
    cluster: list[tuple[str, str, str]],
) -> None:
    alters = [text for _m, _s, text in cluster if text.startswith("ALTER TABLE")]
    for text in alters:
        m = re.match(r"ALTER TABLE (\w+?)(_local)? ON CLUSTER \w+ (.*)$", text)
        assert m, text
        if not m.group(2):
            assert f"ALTER TABLE {m.group(1)}_local ON CLUSTER {CLUSTER} {m.group(3)}" in alters
    ttl = cluster_statements("ALTER TABLE calls MODIFY TTL toDateTime(event_time) + INTERVAL 1 DAY;\n", CLUSTER)
    assert [formatted(s).split(" ON CLUSTER")[0] for s in ttl] == ["ALTER TABLE calls_local"]
    add = cluster_statements("ALTER TABLE calls ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0;\n", CLUSTER)
    assert [formatted(s).split(" ON CLUSTER")[0] for s in add] == ["ALTER TABLE calls_local", "ALTER TABLE calls"]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO calls VALUES ('t');\n",
        "DROP TABLE IF EXISTS calls;\n",
        "TRUNCATE TABLE calls;\n",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS m TO t AS SELECT a FROM x JOIN y USING a;\n",
    ],
)
def test_a_statement_without_a_cluster_variant_stops_the_run(sql: str) -> None:
    with pytest.raises(ConfigError, match="no cluster variant"):
        cluster_statements(sql, CLUSTER)


def test_everything_icewatch_migrate_sends_to_a_cluster_parses_and_runs_on_every_node() -> None:
    """What `icewatch migrate --cluster` sends (tests/unit/test_cluster_migrate.py: which, in which
    order), through ClickHouse's parser: the database, the replicated schema_migrations, every
    migration's statements; the record is one table on every node (Replicated, no {shard})."""
    from tests.unit.test_cluster_migrate import RecordingSink

    sink = RecordingSink(table_exists=False)
    migrate_cluster(sink, CLUSTER, DATABASE)
    sent = [create_database_statement(CLUSTER, DATABASE), *sink.sent]
    assert len(sent) == 2 + sum(len(cluster_statements(m.sql, CLUSTER, DATABASE)) for m in load_migrations())
    for stmt in sent:
        text = formatted(stmt)
        if text.startswith("INSERT INTO"):
            assert_reaches_every_shard(stmt, text)
        else:
            assert f" ON CLUSTER {CLUSTER}" in text, stmt[:100]
    record = ast(sent[1])
    fn = engine(record)
    assert fn.text == "ReplicatedMergeTree"
    assert [a.text for a in args(fn)] == ["'/clickhouse/tables/icewatch/schema_migrations'", "'{replica}'"]
    assert sink.inserts and all(table == "schema_migrations" for table, _ in sink.inserts)
