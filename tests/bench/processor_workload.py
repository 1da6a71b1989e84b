"""The processor's benchmark workload, shared by bench_processor and profile_processor_insert: N W3C
reports of 300 one-second intervals, parsed as the collector does, their rows derived (facts + rows,
timed in CPU seconds of this process), and those rows regrouped into batches of the consumer loop's
size under a tenant of the caller's, so that every pass inserts rows no earlier pass inserted."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from collector.contract import CallReport, utcnow
from collector.reports import UploadContext, parse_upload
from processors.facts.call_facts import FactsEnv
from processors.rows.batch import Rows, merge_rows
from processors.rows.builder import RowBuilder
from tests.bench.workload import w3c_report

INTERVALS = 300
BATCH = 200  # the consumer loop's max_batch_messages in bench_processor, and the floor's batch size
DEFAULT_REPORTS = 400
MAX_REPORTS = 100_000  # ~40 MB of rows per 1,000 reports: more would only exhaust memory


def report_count(argv: list[str] | None = None) -> int:
    """The report count from the command line (``argv[1]``, sys.argv by default), DEFAULT_REPORTS without one."""
    argv = sys.argv if argv is None else argv
    if len(argv) < 2:
        return DEFAULT_REPORTS
    n = int(argv[1])
    if not 1 <= n <= MAX_REPORTS:
        raise SystemExit(f"the report count must be 1..{MAX_REPORTS}, not {n}")
    return n


@dataclass(frozen=True)
class ProcessorWorkload:
    builder: RowBuilder
    reports: list[CallReport]
    rows: list[Rows]  # rows[i] is what builder.rows made of reports[i]
    derive_cpu: float  # CPU seconds of deriving every report's rows

    def batches(self, tenant: str) -> list[Rows]:
        """The rows under ``tenant``, BATCH reports a batch, one list per table per batch."""
        out: list[Rows] = []
        for k in range(0, len(self.rows), BATCH):
            batch: Rows = {}
            for rows in self.rows[k:k + BATCH]:
                merge_rows(batch, {table: [dict(r, tenant=tenant) for r in trs] for table, trs in rows.items()})
            out.append(batch)
        return out


def processor_workload(n: int, call_prefix: str) -> ProcessorWorkload:
    """``n`` reports with call ids ``<call_prefix>-<i>`` (seed i), parsed and derived."""
    reports = [parse_upload(w3c_report(f"{call_prefix}-{i}", INTERVALS, seed=i), UploadContext())[0]
               for i in range(n)]
    builder = RowBuilder(FactsEnv.default())
    now = utcnow()
    t = time.process_time()
    rows = [builder.rows(r, "derive", now) for r in reports]
    return ProcessorWorkload(builder, reports, rows, time.process_time() - t)
