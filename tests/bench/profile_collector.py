"""Where the collector's CPU goes for one 300-interval Telnyx segment, stage by stage, in one
process (no HTTP, no Kafka): each stage's CPU time per segment beside an orjson parse of the same
body (the floor of bench_collector), with the serving process's GC setting. Each figure is the
best of 3 passes over the same bodies.

    .venv/bin/python -m tests.bench.profile_collector [segments]

The stages the HTTP server and the Kafka producer add are not here: bench_collector measures the
whole path, and a sampling profiler (py-spy --gil on the collector process) splits it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date, datetime

import orjson

from collector.contract import CallReport, utcnow
from collector.gc_tuning import raise_young_gc_threshold
from collector.reports import UploadContext, parse_upload
from collector.reports.sniff import sniff
from collector.reports.window import check_queryable
from collector.wire import encode
from tests.bench.workload import telnyx_segment

SEGMENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 40
CTX = UploadContext(format_hint="telnyx", hash_key=b"k" * 32, max_bytes=8 << 20, client_address="127.0.0.1")


def best_ms(n: int, run: Callable[[], object], passes: int = 3) -> float:
    """CPU milliseconds per item of ``run`` (which handles ``n`` items), best of ``passes``."""
    best = float("inf")
    for _ in range(passes):
        t = time.process_time()
        run()
        best = min(best, (time.process_time() - t) / n)
    return best * 1000


def parse_all(bodies: list[bytes]) -> list[CallReport]:
    return [r for b in bodies for r in parse_upload(b, CTX)]


def parse_each(bodies: list[bytes]) -> None:
    """parse_upload of each body, its reports dropped at once (as the server does after publishing)."""
    for b in bodies:
        parse_upload(b, CTX)


def loads_each(bodies: list[bytes]) -> None:
    """orjson.loads of each body, its document dropped at once (as bench_collector's floor)."""
    for b in bodies:
        orjson.loads(b)


def check_each(reports: list[CallReport], now: datetime) -> None:
    for r in reports:
        check_queryable(r, now)


def sniff_each(bodies: list[bytes]) -> None:
    for b in bodies:
        sniff(b, "telnyx", CTX.max_bytes)


def free_documents(bodies: list[bytes]) -> float:
    """CPU milliseconds per body to free its parsed document (the parse itself not counted)."""
    best = float("inf")
    for _ in range(3):
        docs = [orjson.loads(b) for b in bodies]
        t = time.process_time()
        del docs
        best = min(best, (time.process_time() - t) / len(bodies))
    return best * 1000


def main() -> None:
    raise_young_gc_threshold()  # as the serving process does
    bodies = [telnyx_segment(f"seg-{i}", seed=i) for i in range(SEGMENTS)]
    reports = parse_all(bodies)
    assert len(reports) == len(bodies) and all(len(r.samples) == 300 for r in reports)
    n = len(bodies)
    now = utcnow()
    floor = best_ms(n, lambda: loads_each(bodies))
    stages = {
        "sniff (orjson parse, detection, freeing)": best_ms(n, lambda: sniff_each(bodies)),
        "parse_upload (sniff, Telnyx reader, freeing the document)": best_ms(n, lambda: parse_each(bodies)),
        "  of it freeing the parsed document": free_documents(bodies),
        "check_queryable (time window)": best_ms(n, lambda: check_each(reports, now)),
        "wire.encode (envelope)": best_ms(n, lambda: [encode(r, source_host="h", tenant="default") for r in reports]),
    }
    reader = stages["parse_upload (sniff, Telnyx reader, freeing the document)"] \
        - stages["sniff (orjson parse, detection, freeing)"]  # both free their documents
    print(f"# collector stages per 300-interval Telnyx segment ({len(bodies[0]) / 1e6:.2f} MB), {date.today()}, "
          f"CPU ms, best of 3")
    print(f"{'orjson.loads (floor)':<60} {floor:6.2f}")
    for name, ms in stages.items():
        print(f"{name:<60} {ms:6.2f}  {ms / floor:4.1f}x floor")
    label = "  of it the Telnyx reader (parse_upload - sniff)"
    print(f"{label:<60} {reader:6.2f}  {reader / floor:4.1f}x floor")
    total = stages["parse_upload (sniff, Telnyx reader, freeing the document)"] \
        + stages["check_queryable (time window)"] + stages["wire.encode (envelope)"]
    print(f"{'in-process total (without HTTP and Kafka)':<60} {total:6.2f}  {total / floor:4.1f}x floor")


if __name__ == "__main__":
    main()
