"""The rows of issue 15's throughput table: every benchmark that measures one prints it as a ratio
to a floor measured in the same run, with both absolute figures; ``run_all`` collects the rows
and prints the table with the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import orjson

MARK = "@@table-row "


@dataclass(frozen=True)
class Row:
    figure: str  # what is compared with what
    ratio: str  # e.g. "4.1x" or "37 %"
    measured: str  # the absolute figure of the thing measured
    floor: str  # the absolute figure of the floor, from the same run
    goal: str
    met: bool


def emit(row: Row) -> None:
    """Print the row for a reader and, marked, for run_all."""
    print(f"TABLE {row.figure}: {row.ratio} ({row.measured} vs floor {row.floor}); goal {row.goal}: "
          f"{'met' if row.met else 'NOT met'}", flush=True)
    print(MARK + orjson.dumps(asdict(row)).decode(), flush=True)


def parse(line: str) -> Row | None:
    if not line.startswith(MARK):
        return None
    return Row(**orjson.loads(line[len(MARK):]))


def machine() -> str:
    """CPU model, cores this process may use, memory, and the load when asked (the machine is shared)."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    cores = len(os.sched_getaffinity(0))
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}, {cores} cores, {mem_gib:.0f} GiB, load average {load}"


def markdown(rows: list[Row]) -> str:
    head = (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}\n\n"
            "| figure | ratio | measured | floor (same run) | goal | met |\n|---|---|---|---|---|---|\n")
    return head + "".join(f"| {r.figure} | {r.ratio} | {r.measured} | {r.floor} | {r.goal} | "
                          f"{'yes' if r.met else '**no**'} |\n" for r in rows)
