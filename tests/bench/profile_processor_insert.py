"""Where the processor's CPU goes per report, below Kafka: derivation (facts + rows), serialisation for
chDB, and chDB itself per table and per materialized view.

Same workload as bench_processor (300-interval W3C reports, batches of 200). CPU is process CPU time
(chDB runs in this process). Per view: the same rows inserted into the real tables with that one view
detached, in this scratch store; the view's cost is the difference to the insert with every view.
Run: ``.venv/bin/python -m tests.bench.profile_processor_insert [reports]``.
"""
# ruff: noqa: B023  (every lambda here runs at once, inside its loop iteration)

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from processors.store.chdb import ChdbSink, arrow_columns, encode_rows
from processors.store.migrate import migrate
from tests.bench.floors import PREFIX, plain_copies
from tests.bench.processor_workload import BATCH, INTERVALS, processor_workload, report_count

N = report_count()
VIEWS = {"call_minute_mv": "calls", "ingest_minute_mv": "calls", "rtt_band_minute_mv": "call_samples"}


def each(fn: Callable[[Any], object], items: Sequence[Any]) -> None:
    for item in items:
        fn(item)


def cpu(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    print(f"# processor insert profile, {datetime.now().date()}, {N} reports x {INTERVALS} intervals, "
          f"batches of {BATCH}")
    work = processor_workload(N, "prof")
    all_rows, batches = work.rows, work.batches
    ms = 1000 / N
    print(f"derive (facts + rows): {work.derive_cpu * ms:.2f} ms CPU per report")

    tables = sorted({t for rows in all_rows for t, trs in rows.items() if trs})
    per_table = {t: sum(len(r.get(t, [])) for r in all_rows) for t in tables}
    print("rows per report: " + ", ".join(f"{t} {n / N:.1f}" for t, n in per_table.items()))

    with tempfile.TemporaryDirectory() as tmp:
        sink = ChdbSink(Path(tmp) / "store")
        try:
            migrate(sink)
            plain_copies(sink, tables)
            for table in tables:
                bs = [b[table] for b in batches("json") if b.get(table)]
                enc = cpu(lambda: each(encode_rows, bs))
                bodies = [encode_rows(rows).decode() for rows in bs]
                plain = cpu(lambda: each(lambda body: sink.execute(
                    f"INSERT INTO {PREFIX}{table} SETTINGS date_time_input_format = 'best_effort' "
                    f"FORMAT JSONEachRow\n{body}"), bodies))
                types = {c: "" for c in bs[0][0]}
                arrow = cpu(lambda: each(lambda rows: arrow_columns(rows, types), bs))
                sink_plain = cpu(lambda: each(lambda rows: sink.insert(PREFIX + table, rows), bs))
                bs = [b[table] for b in batches("real") if b.get(table)]
                real = cpu(lambda: each(lambda rows: sink.insert(table, rows), bs))
                print(f"{table}: JSON encode {enc * ms:.2f} ms/report, chDB JSON insert into the plain copy "
                      f"{plain * ms:.2f} (the floor's path); Arrow columns built {arrow * ms:.2f}, icewatch sink "
                      f"insert (Arrow when it can) into the plain copy {sink_plain * ms:.2f}, into the real table "
                      f"(dedup settings, its views run) {real * ms:.2f}")
            for view, source in VIEWS.items():
                bs = [b[source] for b in batches("all-" + view) if b.get(source)]
                with_all = cpu(lambda: each(lambda rows: sink.insert(source, rows), bs))
                sink.execute(f"DETACH TABLE {view}")
                try:
                    bs = [b[source] for b in batches("no-" + view) if b.get(source)]
                    without = cpu(lambda: each(lambda rows: sink.insert(source, rows), bs))
                finally:
                    sink.execute(f"ATTACH TABLE {view}")
                print(f"view {view} (on {source}): {(with_all - without) * ms:.2f} ms/report "
                      f"({with_all * ms:.2f} with it, {without * ms:.2f} detached)")
        finally:
            sink.close()


if __name__ == "__main__":
    main()
