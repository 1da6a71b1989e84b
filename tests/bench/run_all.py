"""`make bench`: every benchmark of the suite, one after the other (each prints its numbers), then
issue 15's throughput table: each row a ratio to a floor measured in the same run, with both
absolute figures and the machine.

    .venv/bin/python -m tests.bench.run_all [bench_embedded bench_turn_parse ...]   (default: all)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.bench.table import Row, markdown, parse

HERE = Path(__file__).parent
BENCHES = ["bench_collector", "bench_processor", "bench_turn_parse", "bench_turn_tailer", "bench_embedded",
           "bench_simulator", "bench_pages", "bench_paging", "bench_hostile_parse"]


def run(name: str, rows: list[Row]) -> int:
    """Run one benchmark, echoing its output; its table rows go to ``rows``. Its exit status."""
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", f"tests.bench.{name}"], stdout=subprocess.PIPE,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        row = parse(line)
        if row is None:
            print(line, end="", flush=True)
        else:
            rows.append(row)
    return proc.wait()


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}")
        return 2
    failed = 0
    rows: list[Row] = []
    for name in names or BENCHES:
        if not (HERE / f"{name}.py").exists():
            print(f"# {name}: missing")
            failed += 1
            continue
        print(f"\n## {name}", flush=True)
        if run(name, rows) != 0:
            failed += 1
            print(f"# {name}: FAILED", flush=True)
    if rows:
        print("\n## throughput table (issue 15): ratio to a floor measured in the same run\n")
        print(markdown(rows), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
