"""collector.gc_tuning.raise_young_gc_threshold: fewer young collections in the collector serving
uploads and in the processor, and cyclic garbage is still collected without an explicit gc.collect()."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from collector.gc_tuning import GC_YOUNG_THRESHOLD, raise_young_gc_threshold


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None
        self.payload = bytearray(1 << 20)


def test_young_threshold_raised_older_ones_kept(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    raise_young_gc_threshold()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    gc.set_threshold(50_000, 5, 7)  # a higher setting of the deployment is kept
    raise_young_gc_threshold()
    assert gc.get_threshold() == (50_000, 5, 7)


def test_a_dropped_cycle_is_collected_by_allocation_alone(restore_gc: None) -> None:
    gc.collect()
    gc.set_threshold(700, 10, 10)
    raise_young_gc_threshold()
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # a cycle: reference counting alone does not free it
    kept = [{"i": i} for i in range(2 * GC_YOUNG_THRESHOLD)]  # what one upload's document allocates, and more
    assert gone() is None
    assert len(kept) == 2 * GC_YOUNG_THRESHOLD


def test_the_processor_raises_it_before_it_starts(restore_gc: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.settings import KafkaSettings, Settings
    from processors.service import processor

    class Started(Exception):
        pass

    def first_step(*_: object) -> None:
        raise Started

    monkeypatch.setattr(processor, "ensure_topics", first_step)  # stop where Kafka would be needed
    gc.set_threshold(700, 10, 10)
    with pytest.raises(Started):
        processor.run_processor(Settings(kafka=KafkaSettings(bootstrap="127.0.0.1:9")), ("call_reports",))
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
