"""`make bench`: every benchmark of the suite, one after the other (each prints its numbers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = ["bench_collector", "bench_processor", "bench_turn_parse", "bench_turn_tailer", "bench_simulator",
           "bench_pages", "bench_paging"]


def main() -> int:
    failed = 0
    for name in BENCHES:
        if not (HERE / f"{name}.py").exists():
            print(f"# {name}: missing")
            failed += 1
            continue
        print(f"\n## {name}", flush=True)
        failed += subprocess.call([sys.executable, "-W", "ignore", "-m", f"tests.bench.{name}"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
