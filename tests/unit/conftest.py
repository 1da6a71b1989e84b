"""Fixtures of the unit tests. chDB admits one data directory per process at a time, so every
store a test opens is closed by its fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.http_app import IngestConfig, build_app
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.http_server import serve


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ChdbSink]:
    """A migrated embedded store (the real schema on the real engine)."""
    sink = ChdbSink(tmp_path / "store")
    migrate(sink)
    yield sink
    sink.close()


@pytest.fixture()
def ingest(store: ChdbSink) -> Iterator[httpx.Client]:
    """An HTTP client of the real ingest app, served on loopback, writing into ``store`` (no API keys;
    bodies up to 8 MiB, as a Telnyx SDK report can be)."""
    config = IngestConfig(api_keys={}, max_body_bytes=8 << 20, hash_key=b"k")
    with (
        serve(build_app(EmbeddedPublisher(store, RowBuilder(FactsEnv())), config)) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        yield client
