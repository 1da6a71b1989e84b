"""The embedded store: chDB (ClickHouse in process) on a local directory."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


class ChdbSink:
    """Sink on chDB. One process may open a data directory at a time (chDB's own rule)."""

    def __init__(self, path: str | Path) -> None:
        from chdb import session  # imported here: chDB starts an engine on import of a session

        Path(path).mkdir(parents=True, exist_ok=True)
        self._path = Path(path)
        self._lock = threading.Lock()
        self._out_of_space = False  # logged once per episode, not once per refused write
        try:
            self._session = session.Session(str(path))  # type: ignore[no-untyped-call]
        except Exception as exc:  # chDB raises its own types; all mean "cannot open the store"
            raise StorageUnavailable(f"cannot open the embedded store at {path}: {exc}") from exc
        self._run("SET output_format_json_quote_64bit_integers = 0")

    def _run(self, sql: str, fmt: str = "CSV", params: Mapping[str, Any] | None = None) -> bytes:
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
        sql = f"INSERT INTO {check_identifier(table)} SETTINGS {settings} FORMAT JSONEachRow\n"
        self._run(sql + encode_rows(rows).decode())
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

    def execute(self, sql: str) -> None:
        self._run(sql)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._session, "close", None)
            if close is not None:
                close()
