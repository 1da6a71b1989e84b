"""The embedded store: chDB (ClickHouse in process) on a local directory."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from collector.errors import StorageUnavailable, StoreError
from processors.store.sink import Row, Table

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_TOKEN = re.compile(r"^[A-Za-z0-9_./:-]{1,256}$")
_SETTING = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_SETTING_WORD = re.compile(r"^[A-Za-z0-9_]{0,64}$")

INSERT_SETTINGS = (
    "date_time_input_format = 'best_effort', "
    "deduplicate_blocks_in_dependent_materialized_views = 1, "
    "input_format_skip_unknown_fields = 0"
)


def _param_text(value: Any) -> Any:
    """chDB binds parameters from their escaped text: strings with backslash escapes, arrays of
    strings as quoted ClickHouse literals."""
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    if isinstance(value, list | tuple):
        quoted = ("'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'" for v in value)
        return "[" + ",".join(quoted) + "]"
    return value


# ClickHouse error codes that pass: memory, disk, parts, timeouts, too many queries.
_TRANSIENT_CODES = {159, 202, 209, 210, 241, 242, 243, 252, 425}
_CODE = re.compile(r"Code: (\d+)")


def _transient(message: str) -> bool:
    m = _CODE.search(message)
    return m is not None and int(m.group(1)) in _TRANSIENT_CODES


NO_SPACE = (
    "the embedded store is out of disk space: free space on the filesystem of ICEWATCH_DATA_DIR or set it "
    "to a larger one; nothing of this write was acknowledged, retry it"
)


def _out_of_space(message: str) -> bool:
    """NOT_ENOUGH_SPACE (ClickHouse could not reserve room for a part), or a write that hit ENOSPC
    (any code: ClickHouse reports it from the file it was writing)."""
    m = _CODE.search(message)
    return (m is not None and int(m.group(1)) == 243) or "No space left on device" in message or "errno: 28," in message


def check_identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a valid table name: {name!r}")
    return name


def settings_clause(settings: Mapping[str, int | str]) -> str:
    """`` SETTINGS a = 1, b = 'word'`` for names and values that cannot break out of the clause."""
    parts = []
    for name, value in settings.items():
        if not _SETTING.match(name):
            raise ValueError(f"not a setting name: {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"setting {name}: an int or a word, not {value!r}")
        if isinstance(value, str) and not _SETTING_WORD.match(value):
            raise ValueError(f"setting {name}: not a plain word: {value!r}")
        parts.append(f"{name} = {value}" if isinstance(value, int) else f"{name} = '{value}'")
    return " SETTINGS " + ", ".join(parts) if parts else ""


def encode_rows(rows: Sequence[Row]) -> bytes:
    return b"\n".join(orjson.dumps(r, option=orjson.OPT_NAIVE_UTC) for r in rows)


# Below this many rows an insert goes as JSON: handing chDB Arrow columns costs a fixed ~11 ms more per
# insert (measured 2026-11-26, 2-core AMD EPYC: 10-100 rows into call_samples 23 ms vs 12 ms as JSON,
# even at 600, 30 vs 52 ms at 3,000, 102 vs 276 ms at 20,000).
ARROW_MIN_ROWS = 1000


def _plain_arrow_type(t: Any) -> bool:
    """Arrow types whose cast into the table's column ClickHouse does as its JSON reader would."""
    import pyarrow as pa

    if pa.types.is_list(t):
        return bool(pa.types.is_string(t.value_type) or pa.types.is_null(t.value_type))
    return bool(pa.types.is_string(t) or pa.types.is_boolean(t) or pa.types.is_int64(t)
                or pa.types.is_float64(t) or pa.types.is_timestamp(t))


@runtime_checkable
class Columnar(Protocol):
    """Rows already held as columns (processors/rows/batch.py ColumnRows): read column by column."""

    def column_lists(self) -> Mapping[str, Sequence[Any]]: ...


def arrow_columns(rows: Sequence[Row], column_types: Mapping[str, str]) -> Any | None:
    """The rows (dicts, or ``Columnar`` rows: their columns are taken as they are) as one Arrow table
    (columns chDB reads in place, no text to parse), or None when the JSON path must take them, so
    that every refusal and conversion stays the JSON reader's: a key the table lacks, a value Arrow
    cannot type (mixed types, integers beyond Int64, nested objects), text bound for a date column
    (parsed best effort as JSON). Columns with no value in any row are left out: the column's
    default, as a missing JSON key. NaN becomes NULL, as orjson writes it. Naive datetimes are UTC
    (OPT_NAIVE_UTC)."""
    import pyarrow as pa

    lists = rows.column_lists() if isinstance(rows, Columnar) else None
    if lists is not None:
        keys: Mapping[str, object] = lists
    else:
        keys = dict.fromkeys(rows[0])
        first = rows[0].keys()
        if not all(r.keys() == first for r in rows):
            for r in rows:
                keys.update(dict.fromkeys(r))
    arrays = {}
    try:
        for key in keys:
            target = column_types.get(key)
            if target is None:
                return None
            values = lists[key] if lists is not None else [r.get(key) for r in rows]
            arr = pa.array(values, from_pandas=True)
            if pa.types.is_null(arr.type):
                continue
            if not _plain_arrow_type(arr.type) or ("DateTime" in target and not pa.types.is_timestamp(arr.type)):
                return None
            if pa.types.is_list(arr.type):
                if arr.flatten().null_count:
                    return None  # NULL inside an array: the JSON reader's defaults decide
                if arr.null_count:  # a NULL array is the column's default (empty), as in JSON
                    arr = pa.array([[] if v is None else v for v in values], type=arr.type)
                if pa.types.is_null(arr.type.value_type):  # only empty arrays: typed as text arrays
                    arr = arr.cast(pa.list_(pa.string()))
            if pa.types.is_timestamp(arr.type) and arr.type.tz is None:
                arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC"))
            arrays[key] = arr
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None
    return pa.table(arrays) if arrays else None


class ChdbSink:
    """Sink on chDB. One process may open a data directory at a time (chDB's own rule)."""

    def __init__(self, path: str | Path) -> None:
        from chdb import session  # imported here: chDB starts an engine on import of a session

        Path(path).mkdir(parents=True, exist_ok=True)
        self._path = Path(path)
        self._lock = threading.Lock()
        self._out_of_space = False  # logged once per episode, not once per refused write
        self._columns: dict[str, dict[str, str]] = {}
        try:
            self._session = session.Session(str(path))  # type: ignore[no-untyped-call]
        except Exception as exc:  # chDB raises its own types; all mean "cannot open the store"
            raise StorageUnavailable(f"cannot open the embedded store at {path}: {exc}") from exc
        self._run("SET output_format_json_quote_64bit_integers = 0")

    def _run(self, sql: str, fmt: str = "CSV", params: Mapping[str, Any] | None = None,
             icewatch_rows: Any = None) -> bytes:
        """``icewatch_rows``: an Arrow table the statement reads as ``Python(icewatch_rows)`` (chDB finds
        it by name among the caller's locals)."""
        with self._lock:
            try:
                bound = {k: _param_text(v) for k, v in params.items()} if params else None
                res = self._session.query(sql, fmt, params=bound)  # type: ignore[no-untyped-call]
            except Exception as exc:
                self._drain()
                if _out_of_space(str(exc)):
                    if not self._out_of_space:
                        log.error("%s (store: %s): %s", NO_SPACE, self._path.resolve(), exc)
                    self._out_of_space = True
                    raise StorageUnavailable(NO_SPACE) from exc
                if _transient(str(exc)):
                    raise StorageUnavailable(f"the embedded store is busy or short of resources: {exc}") from exc
                raise StoreError(str(exc)) from exc
        return bytes(res.bytes()) if res is not None else b""

    def _drain(self) -> None:
        """chDB (4.4) hands what a failed query had already written (a result limit exceeded after the
        first block) to the session's next query, ahead of its own rows: a throwaway query, under the
        same lock, takes it. Called with the lock held."""
        try:
            self._session.query("SELECT 1", "CSV")  # type: ignore[no-untyped-call]
        except Exception:  # the store is failing anyway: the caller raises the first error
            return

    def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
        if not rows:
            return
        settings = INSERT_SETTINGS
        if dedup_token is not None:
            if not _TOKEN.match(dedup_token):
                raise ValueError(f"invalid deduplication token: {dedup_token!r}")
            settings += f", insert_deduplication_token = '{dedup_token}'"
        check_identifier(table)
        columns = arrow_columns(rows, self._column_types(table)) if len(rows) >= ARROW_MIN_ROWS else None
        if columns is not None:
            names = ", ".join(f"`{name}`" for name in columns.column_names)
            self._run(f"INSERT INTO {table} ({names}) SETTINGS {settings} SELECT {names} FROM Python(icewatch_rows)",
                      icewatch_rows=columns)
        else:
            self._run(f"INSERT INTO {table} SETTINGS {settings} FORMAT JSONEachRow\n" + encode_rows(rows).decode())
        if self._out_of_space:
            log.warning("the embedded store at %s takes writes again", self._path.resolve())
            self._out_of_space = False

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        out = self._run(sql, "JSONEachRow", params)
        return [orjson.loads(line) for line in out.splitlines() if line.strip()]

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        # Text of DateTime columns without a zone of their own: UTC, whatever the host's zone.
        statement = sql.rstrip().rstrip(";") + "\n" + settings_clause({"session_timezone": "UTC", **settings})
        doc = orjson.loads(self._run(statement, "JSONCompact") or b"{}")
        columns = [(str(c["name"]), str(c["type"])) for c in doc.get("meta", [])]
        return Table(columns, [list(r) for r in doc.get("data", [])])

    def _column_types(self, table: str) -> dict[str, str]:
        """Column name -> ClickHouse type, read once per table (until the next statement through execute)."""
        found = self._columns.get(table)
        if found is None:
            database, _, name = table.rpartition(".")
            rows = self.query("SELECT name, type FROM system.columns WHERE database = "
                              + ("{d:String}" if database else "currentDatabase()") + " AND table = {t:String}",
                              {"d": database, "t": name} if database else {"t": name})
            found = {str(r["name"]): str(r["type"]) for r in rows}
            self._columns[table] = found
        return found

    def execute(self, sql: str) -> None:
        self._columns.clear()  # DDL may change a table's columns
        self._run(sql)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._session, "close", None)
            if close is not None:
                close()
