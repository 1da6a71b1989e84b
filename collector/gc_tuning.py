"""The garbage collector's young-generation threshold for processes that hold many short-lived
container objects at once: the collector serving uploads (a parsed document per request) and the
processor (a batch of decoded reports while it derives rows).

CPython collects the youngest generation after 700 new container objects. A 300-interval report
allocates thousands, and each young collection promotes what is still alive towards the older
generations, whose passes walk everything the process holds. Measured 2026-11-26 (2-core shared
machine, issue 15): ~2.5 ms of ~15 ms CPU per segment in the collector, most of it inside orjson's
allocations; in the processor bench, end to end 231-241 -> 296-324 reports per CPU-second (default
700 vs 10,000, alternating runs, load ~1). The older generations keep their multipliers, so cyclic
garbage is still collected."""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 10_000


def raise_young_gc_threshold() -> None:
    """Collect the young generation after GC_YOUNG_THRESHOLD new objects (a higher setting is kept)."""
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(GC_YOUNG_THRESHOLD, young), older, oldest)
