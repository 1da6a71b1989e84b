"""Fixtures of the unit tests. chDB admits one data directory per process at a time, so every
store a test opens is closed by its fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ChdbSink]:
    """A migrated embedded store (the real schema on the real engine)."""
    sink = ChdbSink(tmp_path / "store")
    migrate(sink)
    yield sink
    sink.close()
