"""Floors for the benchmarks' ratios: a bare chDB insert of the same rows into plain MergeTree
tables without materialized views (same columns, sort and partition keys; no views, no TTL, no
deduplication), timed in CPU seconds of this process."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from processors.rows.batch import Rows
from processors.store.chdb import ChdbSink, check_identifier, encode_rows

PREFIX = "plain_"


def plain_copies(sink: ChdbSink, tables: Iterable[str]) -> None:
    """``plain_<table>`` beside each table: its columns and keys, nothing that runs on insert."""
    for table in sorted(set(tables)):
        info = sink.query("SELECT sorting_key, partition_key FROM system.tables "
                          "WHERE database = currentDatabase() AND name = {t:String}", {"t": table})
        if not info:
            raise ValueError(f"no table {table!r} in the store")
        order = str(info[0]["sorting_key"]) or "tuple()"
        partition = str(info[0]["partition_key"])
        sink.execute(f"CREATE TABLE IF NOT EXISTS {PREFIX}{check_identifier(table)} AS {table} ENGINE = MergeTree"
                     + (f" PARTITION BY {partition}" if partition else "") + f" ORDER BY ({order})")


def bare_insert_cpu(sink: ChdbSink, batches: Sequence[Rows]) -> float:
    """CPU seconds to insert ``batches`` (one INSERT per table per batch) into the plain copies.
    The JSON bodies are encoded before the clock starts: the floor is the store's work alone."""
    plain_copies(sink, {t for b in batches for t in b})
    statements = [f"INSERT INTO {PREFIX}{table} SETTINGS date_time_input_format = 'best_effort' "
                  f"FORMAT JSONEachRow\n" + encode_rows(rows).decode()
                  for batch in batches for table, rows in sorted(batch.items()) if rows]
    t = time.process_time()
    for sql in statements:
        sink.execute(sql)
    return time.process_time() - t
