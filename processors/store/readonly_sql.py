"""One analyst's SQL statement, read-only, under ClickHouse's own limits (``icewatch sql``, ``POST /v1/sql``).

The embedded store admits one process and one chDB session, and that session also does the
pipeline's inserts. So nothing here changes a session setting: every limit is a per-query
``SETTINGS`` clause written by this module, and ``readonly = 1`` in that clause makes the engine
itself refuse writes, DDL and setting changes for that one statement.

How a statement is run (every step is ClickHouse's own parser or engine, never a regex on SQL):

1. The text is bounded (``max_sql_bytes``) and handed to ``formatQuerySingleLine`` as a *bound
   parameter*: ClickHouse parses it without running it, refuses several statements ("Multi-statements
   are not allowed") and answers the one statement in canonical form. (chDB's ``query`` runs every
   statement of ``SELECT 1; DROP TABLE calls``, so raw user text is never sent as a statement.)
2. ``EXPLAIN AST`` of the canonical text (parsing only) decides: one SELECT (``WITH``, ``UNION``,
   ``INTERSECT`` included), no ``SETTINGS`` clause of its own anywhere (the limits are the server's),
   table functions only from ``TABLE_FUNCTIONS`` (readonly = 1 still admits ``merge()``, which reads
   any table), no function in ``DENIED_FUNCTIONS`` (readonly = 1 still admits ``file()``, which reads
   any file the process can).
3. The statement runs wrapped, ``SELECT * FROM (<statement>) SETTINGS <limits>, readonly = 1``:
   result rows and bytes, rows and bytes read, execution time, all with overflow mode ``throw``.
4. With a tenant (an API key's app), the statement first goes through ``EXPLAIN QUERY TREE`` under the
   same settings: every table it reads must be a table or view of the store's database with a
   ``tenant`` column (no system tables, no materialized views), and ``additional_table_filters``
   adds ``tenant = '<app>'`` to the read of each of those tables and views, including the tables a
   view reads. readonly = 1 keeps a statement from changing that setting.

An engine refusal is mapped from its error code to a message naming the limit; the raw error is logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson

from collector.auth import check_tenant
from collector.errors import IcewatchError, InvalidInput, NotPermitted, StoreError, Unavailable
from collector.settings import SqlLimits
from processors.store.sink import Sink

log = logging.getLogger(__name__)

# Table functions that read no table, file or address.
TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries"})
# Scalar functions readonly = 1 admits but that read outside the store (files, models).
DENIED_FUNCTIONS = frozenset({"file", "catboostevaluate", "naivebayesclassifier", "filesystemavailable",
                              "filesystemcapacity", "filesystemunreserved"})

# AST root -> the statement kind named in the refusal (else the root's name without "Query").
_KINDS = {
    "DropQuery": "DROP / DETACH", "CreateQuery": "CREATE / ATTACH", "Set": "SET", "Explain": "EXPLAIN",
    "ShowTables": "SHOW", "DescribeQuery": "DESCRIBE", "KillQueryQuery": "KILL", "GrantQuery": "GRANT / REVOKE",
}

_CODE = re.compile(r"Code: (\d+)\.")
_DETAIL = re.compile(r"DB::Exception: (.*?)(?: \([A-Z_]+\))?(?:\s*$|\.\s*\(|\s*Stack trace)", re.S)
_TABLE = re.compile(r"^\s*TABLE id: \d+, (?:alias: [^,]+, )?table_name: ([A-Za-z0-9_]+\.[A-Za-z0-9_]+)(?:,|\s*$)")
_TABLE_FUNCTION = re.compile(r"^\s*TABLE_FUNCTION id: \d+, (?:alias: [^,]+, )?table_function_name: ([A-Za-z0-9_]+)")
# Tables a tenant's statement may read though they have no tenant column: SELECT without FROM reads system.one.
NO_TENANT_TABLES = frozenset({"system.one"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SqlResult:
    """Rows as dicts; ``columns`` in the statement's order (empty when there are no rows)."""

    columns: list[str]
    rows: list[dict[str, Any]]


def run_readonly(sink: Sink, sql: str, limits: SqlLimits, tenant: str | None = None) -> SqlResult:
    """Run one read-only SELECT under ``limits``; with ``tenant``, only that tenant's rows are seen.

    InvalidInput: refused (not one SELECT, a SETTINGS clause, a limit exceeded: the message names it);
    NotPermitted: a tenant's statement reads a table without a tenant column; Unavailable: the store."""
    if tenant is not None:
        check_tenant(tenant, "tenant")
    text = _bounded(sql, limits)
    canonical = _canonical(sink, text, limits)
    _check_ast(_explain(sink, f"EXPLAIN AST {canonical}", limits))
    wrapped = f"SELECT * FROM (\n{canonical}\n)"
    filters = _tenant_filters(sink, tenant, limits) if tenant is not None else None
    settings = _settings(limits, filters)
    if tenant is not None and filters is not None:
        # Analysis runs scalar subqueries: under the same settings, but the tree itself is no result.
        tree = _explain(sink, f"EXPLAIN QUERY TREE {wrapped}{_settings(limits, filters, result=False)}", limits)
        _check_tables(tree, tenant, {*filters, *NO_TENANT_TABLES})
    log.info("sql (tenant %s): %s", tenant or "*", canonical[:2000])
    try:
        rows = sink.query(wrapped + settings)
    except (StoreError, Unavailable) as exc:
        raise _refusal(exc, limits) from None
    size = len(orjson.dumps(rows, default=str))
    if size > limits.max_output_bytes:
        raise InvalidInput(f"max_output_bytes ({limits.max_output_bytes}) exceeded: the answer is {size} bytes; "
                           "select fewer columns or rows", "sql")
    return SqlResult(list(rows[0]) if rows else [], rows)


def _bounded(sql: str, limits: SqlLimits) -> str:
    text = sql.strip()
    size = len(text.encode())
    if size > limits.max_sql_bytes:
        raise InvalidInput(f"the SQL text is {size} bytes; at most max_sql_bytes ({limits.max_sql_bytes})", "sql")
    while text.endswith(";"):  # one trailing semicolon is a habit, not a second statement
        text = text[:-1].rstrip()
    if not text:
        raise InvalidInput("no SQL statement given", "sql")
    return text


def _canonical(sink: Sink, text: str, limits: SqlLimits) -> str:
    """ClickHouse's parser on the text as a bound parameter: one statement, in canonical form."""
    try:
        [row] = sink.query("SELECT formatQuerySingleLine({q:String}) AS q SETTINGS readonly = 1", {"q": text})
    except (StoreError, Unavailable) as exc:
        raise _refusal(exc, limits) from None
    return str(row["q"])


def _explain(sink: Sink, statement: str, limits: SqlLimits) -> list[str]:
    try:
        rows = sink.query(statement)
    except (StoreError, Unavailable) as exc:
        raise _refusal(exc, limits) from None
    return [str(next(iter(r.values()))) for r in rows]


def _check_ast(lines: list[str]) -> None:
    """Refuse anything but one SELECT without SETTINGS, foreign table functions and denied functions."""
    if not lines:
        raise InvalidInput("ClickHouse did not parse the statement", "sql")
    root = lines[0].split()[0]
    if root != "SelectWithUnionQuery":
        kind = _KINDS.get(root) or root.removesuffix("Query").upper()
        raise InvalidInput(f"{kind} statements are refused: this is read-only SQL, one SELECT", "sql")
    if lines[0].strip() != "SelectWithUnionQuery (children 1)":
        raise InvalidInput("FORMAT and INTO OUTFILE clauses are refused: the caller chooses the answer's format", "sql")
    parents: list[tuple[int, str]] = []  # (depth, node kind) of the nodes enclosing the current line
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        words = line.split()
        if not words:
            continue
        while parents and parents[-1][0] >= depth:
            parents.pop()
        kind = words[0]
        if kind == "Set":
            raise InvalidInput("SETTINGS clauses are refused: the server sets the limits of this read-only SQL", "sql")
        if kind == "Function" and len(words) > 1:
            name = words[1].lower()
            if parents and parents[-1][1] == "TableExpression":
                if name not in TABLE_FUNCTIONS:
                    raise InvalidInput(f"table function {words[1]}() is refused; read the store's tables "
                                       f"(allowed table functions: {', '.join(sorted(TABLE_FUNCTIONS))})", "sql")
            elif name in DENIED_FUNCTIONS:
                raise InvalidInput(f"function {words[1]}() is refused: it reads outside the store", "sql")
        parents.append((depth, kind))


def _tenant_filters(sink: Sink, tenant: str, limits: SqlLimits) -> dict[str, str]:
    """``db.table`` -> ``tenant = '<app>'`` for every table and view of the store's database with a
    tenant column (materialized views excepted: their target tables are read instead)."""
    try:
        rows = sink.query(
            "SELECT c.database AS db, c.table AS name FROM system.columns AS c "
            "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
            "WHERE c.database = currentDatabase() AND c.name = 'tenant' AND t.engine != 'MaterializedView' "
            "SETTINGS readonly = 1")
    except (StoreError, Unavailable) as exc:
        raise _refusal(exc, limits) from None
    check_tenant(tenant, "tenant")  # the value goes into the setting: letters, digits, '.', '_', '-' only
    return {f"{r['db']}.{r['name']}": f"tenant = '{tenant}'" for r in rows
            if _IDENT.match(str(r["db"])) and _IDENT.match(str(r["name"]))}


def _settings(limits: SqlLimits, filters: dict[str, str] | None, result: bool = True) -> str:
    parts = [
        f"max_result_rows = {limits.max_result_rows}", f"max_result_bytes = {limits.max_result_bytes}",
        "result_overflow_mode = 'throw'",
    ] if result else []
    parts += [
        f"max_rows_to_read = {limits.max_rows_to_read}", f"max_bytes_to_read = {limits.max_bytes_to_read}",
        "read_overflow_mode = 'throw'",
        f"max_execution_time = {limits.max_execution_time_s}", "timeout_overflow_mode = 'throw'",
    ]
    if filters is not None:
        # Names are identifiers and the tenant an app id (checked above): nothing to escape but the quotes.
        pairs = ", ".join(f"'{table}': '{cond.replace(chr(39), chr(92) + chr(39))}'" for table, cond in filters.items())
        parts.append(f"additional_table_filters = {{{pairs}}}")
    parts.append("readonly = 1")  # last: the settings above are set with it, nothing after it can change them
    return "\nSETTINGS " + ", ".join(parts)


def _check_tables(tree: list[str], tenant: str, filtered: set[str]) -> None:
    """Every table a tenant's statement reads is filtered by tenant; anything else is refused."""
    for line in tree:
        stripped = line.strip()
        if stripped.startswith("TABLE_FUNCTION "):
            m = _TABLE_FUNCTION.match(line)
            if m is None or m.group(1).lower() not in TABLE_FUNCTIONS:
                raise NotPermitted(f"an API key reads its tenant's tables only ({stripped[:80]})", "sql")
        elif stripped.startswith("TABLE "):
            m = _TABLE.match(line)
            if m is None:
                raise NotPermitted(f"an API key reads its tenant's tables only ({stripped[:80]})", "sql")
            if m.group(1) not in filtered:
                raise NotPermitted(f"{m.group(1)} has no tenant column: an API key for {tenant!r} reads the "
                                   "tables and views of its own tenant only", "sql")


def _refusal(exc: IcewatchError, limits: SqlLimits) -> IcewatchError:
    """The engine's error as a refusal naming the limit; the raw error goes to the log."""
    raw = str(exc)
    log.warning("sql refused by the engine: %s", raw[:4000])
    m = _CODE.search(raw)
    code = int(m.group(1)) if m else None
    if code == 396:
        if "max bytes" in raw:
            return InvalidInput(f"max_result_bytes ({limits.max_result_bytes}) exceeded", "sql")
        return InvalidInput(f"max_result_rows ({limits.max_result_rows}) exceeded: add a LIMIT or aggregate", "sql")
    if code == 158:
        return InvalidInput(f"max_rows_to_read ({limits.max_rows_to_read}) exceeded: narrow the time range", "sql")
    if code == 307:
        return InvalidInput(f"max_bytes_to_read ({limits.max_bytes_to_read}) exceeded: narrow the time range "
                            "or read fewer columns", "sql")
    if code == 159:
        return InvalidInput(f"max_execution_time ({limits.max_execution_time_s} s) exceeded", "sql")
    if code == 241:
        return InvalidInput("the memory limit was exceeded: aggregate more or read less", "sql")
    if code == 164:
        return InvalidInput("the statement writes or changes a setting: this SQL is read-only", "sql")
    if code == 62 and "Multi-statements" in raw:
        return InvalidInput("one statement only (a ';' ends it)", "sql")
    if isinstance(exc, Unavailable) or code is None:
        return exc
    d = _DETAIL.search(raw)
    detail = (d.group(1) if d else raw).strip()
    detail = re.sub(r"\s*In scope .*$", "", detail, flags=re.S)
    return InvalidInput(f"ClickHouse refused the statement (code {code}): {detail[:500]}", "sql")
