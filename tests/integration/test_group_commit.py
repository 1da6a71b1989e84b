"""Embedded group commit (processors/service/group_commit.py) over HTTP on the real chDB store:
concurrent uploads share writes; each upload still gets its own answer, 202 only after its rows
are written; a store failure fails its whole batch (5xx, none acknowledged); a full queue answers
503 with Retry-After. Every test reads back what the store holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.errors import ConflictingReport, StorageUnavailable, StoreError
from collector.http_app import IngestConfig, build_app
from collector.reports import UploadContext, parse_upload
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from processors.store.sink import Row, Table
from tests.bench.workload import telnyx_segment, w3c_report
from tests.http_server import serve


class GatedStore:
    """The real store, with a gate before every insert (the test holds a write in progress while
    others queue up) and faults injected for rows of chosen calls."""

    def __init__(self, inner: ChdbSink) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.in_insert = threading.Event()
        self.unavailable_for: set[str] = set()  # inserts holding these calls: StorageUnavailable
        self.refused_for: set[str] = set()  # inserts holding these calls: StoreError (the store refuses)
        self.inserts = 0

    def insert(self, table: str, rows: Sequence[Row], dedup_token: str | None = None) -> None:
        self.in_insert.set()
        assert self.gate.wait(60), "the test never opened the gate"
        self.inserts += 1
        calls = {str(r.get("call_id")) for r in rows}
        if calls & self.unavailable_for:
            raise StorageUnavailable("injected: the store is short of disk", retry_after=2)
        if calls & self.refused_for:
            raise StoreError("injected: Code: 53. a value the column cannot hold")
        self.inner.insert(table, rows, dedup_token)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.inner.query(sql, params)

    def query_table(self, sql: str, settings: Mapping[str, int | str]) -> Table:
        return self.inner.query_table(sql, settings)

    def execute(self, sql: str) -> None:
        self.inner.execute(sql)

    def close(self) -> None:
        self.inner.close()


class Harness:
    def __init__(self, store: GatedStore, publisher: EmbeddedPublisher, base: str) -> None:
        self.store = store
        self.publisher = publisher
        self.base = base
        self.pool = ThreadPoolExecutor(48)

    def post(self, body: bytes, path: str = "/v1/call-reports") -> httpx.Response:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            return client.post(path, content=body, headers={"Content-Type": "application/json"})

    def post_async(self, body: bytes, path: str = "/v1/call-reports") -> Future[httpx.Response]:
        return self.pool.submit(self.post, body, path)

    def wait_until(self, what: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)

    def hold_a_write(self, call_id: str) -> Future[httpx.Response]:
        """Start an upload whose write stops at the gate; what is posted next queues behind it."""
        self.store.gate.clear()
        self.store.in_insert.clear()
        first = self.post_async(w3c_report(call_id, snapshots=3, seed=1))
        assert self.store.in_insert.wait(30)
        return first

    def stored_calls(self, prefix: str) -> dict[str, str]:
        rows = self.store.query("SELECT call_id, source_format FROM calls FINAL WHERE startsWith(call_id, {p:String})",
                                {"p": prefix})
        return {str(r["call_id"]): str(r["source_format"]) for r in rows}

    def count(self, table: str, prefix: str) -> int:
        rows = self.store.query(f"SELECT count() AS n FROM {table} WHERE startsWith(call_id, {{p:String}})",
                                {"p": prefix})
        return int(rows[0]["n"])


@contextmanager
def harness_on(tmp_path: Path, **publisher_args: Any) -> Iterator[Harness]:
    inner = ChdbSink(tmp_path / "store")
    try:
        migrate(inner)
        store = GatedStore(inner)
        publisher = EmbeddedPublisher(store, RowBuilder(FactsEnv()), **publisher_args)
        app = build_app(publisher, IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k"))
        with serve(app) as base:
            h = Harness(store, publisher, base)
            try:
                yield h
            finally:
                store.gate.set()
                h.pool.shutdown(wait=True)
                publisher.close()  # writes what is queued, stops the writer, closes the store
    finally:
        inner.close()


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    with harness_on(tmp_path) as h:
        yield h


def test_concurrent_uploads_share_writes_and_every_one_is_stored(harness: Harness) -> None:
    n = 40
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: harness.post(w3c_report(f"gc-many-{i}", snapshots=3, seed=i)), range(n)))
    assert [a.status_code for a in answers] == [202] * n
    assert sorted(a.json()["call_ids"][0] for a in answers) == sorted(f"gc-many-{i}" for i in range(n))
    assert harness.stored_calls("gc-many-") == {f"gc-many-{i}": "w3c" for i in range(n)}
    assert harness.count("call_samples", "gc-many-") == 3 * n  # every sample once, none twice
    stats = harness.publisher.stats()
    assert stats.uploads >= n and stats.batches < stats.uploads and stats.largest_batch > 1, stats


def test_uploads_queued_behind_a_write_go_in_one_batch(harness: Harness) -> None:
    first = harness.hold_a_write("gc-one-0")
    rest = [harness.post_async(w3c_report(f"gc-one-{i}", snapshots=3, seed=i)) for i in range(1, 11)]
    harness.wait_until(lambda: harness.publisher.waiting() == 10)
    assert harness.stored_calls("gc-one-") == {}  # nothing acknowledged yet, nothing written
    assert not first.done() and not any(f.done() for f in rest)
    before = harness.publisher.stats()
    harness.store.gate.set()
    assert [f.result().status_code for f in [first, *rest]] == [202] * 11
    after = harness.publisher.stats()
    assert after.batches - before.batches == 1 and after.largest_batch >= 10
    assert len(harness.stored_calls("gc-one-")) == 11


def test_a_conflicting_report_fails_alone_with_409(harness: Harness) -> None:
    assert harness.post(w3c_report("gc-conf-taken", snapshots=3, seed=9)).status_code == 202
    first = harness.hold_a_write("gc-conf-0")
    others = [harness.post_async(w3c_report(f"gc-conf-{i}", snapshots=3, seed=i)) for i in (1, 2)]
    # the same call id in another format: refused (the call belongs to the format it was stored from)
    clash = harness.post_async(telnyx_segment("gc-conf-taken", intervals=5, seed=3), path="/call_report")
    more = [harness.post_async(w3c_report(f"gc-conf-{i}", snapshots=3, seed=i)) for i in (3, 4)]
    harness.wait_until(lambda: harness.publisher.waiting() == 5)
    harness.store.gate.set()
    assert clash.result().status_code == 409, clash.result().text
    assert [f.result().status_code for f in [first, *others, *more]] == [202] * 5
    assert harness.stored_calls("gc-conf-") == {**{f"gc-conf-{i}": "w3c" for i in range(5)}, "gc-conf-taken": "w3c"}
    assert harness.count("call_samples", "gc-conf-taken") == 3  # none of the refused upload's rows
    letters = harness.store.query("SELECT count() AS n FROM dead_letters WHERE position(raw, 'gc-conf-taken') > 0")
    assert int(letters[0]["n"]) == 1  # the refused body is kept as a dead letter


def test_a_report_the_store_refuses_fails_alone_with_422(harness: Harness) -> None:
    first = harness.hold_a_write("gc-ref-0")
    batch = [harness.post_async(w3c_report(f"gc-ref-{i}", snapshots=3, seed=i)) for i in range(1, 6)]
    harness.wait_until(lambda: harness.publisher.waiting() == 5)
    harness.store.refused_for = {"gc-ref-3"}
    harness.store.gate.set()
    statuses = {f"gc-ref-{i}": f.result().status_code for i, f in enumerate([first, *batch])}
    assert statuses == {**{f"gc-ref-{i}": 202 for i in range(6)}, "gc-ref-3": 422}
    assert set(harness.stored_calls("gc-ref-")) == {f"gc-ref-{i}" for i in (0, 1, 2, 4, 5)}


def test_a_store_failure_fails_the_whole_batch_and_nothing_acknowledged_is_missing(harness: Harness) -> None:
    first = harness.hold_a_write("gc-fail-0")
    batch = [harness.post_async(w3c_report(f"gc-fail-{i}", snapshots=3, seed=i)) for i in range(1, 7)]
    harness.wait_until(lambda: harness.publisher.waiting() == 6)
    harness.store.unavailable_for = {"gc-fail-4"}  # one call's rows make the whole batch's insert fail
    harness.store.gate.set()
    assert first.result().status_code == 202
    answers = [f.result() for f in batch]
    assert [a.status_code for a in answers] == [503] * 6
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers)
    acknowledged = {"gc-fail-0"}
    assert set(harness.stored_calls("gc-fail-")) == acknowledged  # calls are written last: none of the batch
    # the clients retry once the store is back: every call is stored once
    harness.store.unavailable_for = set()
    assert [harness.post(w3c_report(f"gc-fail-{i}", snapshots=3, seed=i)).status_code for i in range(1, 7)] == [202] * 6
    assert set(harness.stored_calls("gc-fail-")) == {f"gc-fail-{i}" for i in range(7)}


# A small W3C report of 3 snapshots is one message of 7 rows (the call, 3 samples, 3 candidates):
# three of them fit either bound, a fourth does not.
@pytest.mark.parametrize("bound", [{"max_queued_messages": 3}, {"max_queued_rows": 24}], ids=["messages", "rows"])
def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path, bound: dict[str, int]) -> None:
    with harness_on(tmp_path, **bound) as h:
        first = h.hold_a_write("gc-full-0")
        queued = [h.post_async(w3c_report(f"gc-full-{i}", snapshots=3, seed=i)) for i in (1, 2, 3)]
        h.wait_until(lambda: h.publisher.waiting() == 3)
        refused = h.post(w3c_report("gc-full-4", snapshots=3, seed=4))
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1, refused.text
        assert "queue" in refused.json()["error"]
        assert h.publisher.stats().refused_full >= 1
        h.store.gate.set()
        assert [f.result().status_code for f in [first, *queued]] == [202] * 4
        assert set(h.stored_calls("gc-full-")) == {f"gc-full-{i}" for i in range(4)}  # not the refused one
        assert h.post(w3c_report("gc-full-4", snapshots=3, seed=4)).status_code == 202  # room again
        assert "gc-full-4" in h.stored_calls("gc-full-")


def test_an_upload_refused_in_a_batch_does_not_take_a_later_uploads_report_with_it(harness: Harness) -> None:
    """Convergence decides a batch in order: a poorer report of a call is skipped when an earlier
    upload in the batch carries a fuller one. When that earlier upload is refused whole (409), the
    batch is decided again without it, so the later report is written, not lost behind a 202."""
    assert harness.post(w3c_report("gc-re-x", snapshots=3, seed=1)).status_code == 202
    fuller_y = parse_upload(w3c_report("gc-re-y", snapshots=5, seed=2), UploadContext())
    clash_x = parse_upload(telnyx_segment("gc-re-x", intervals=5, seed=3), UploadContext(format_hint="telnyx"))
    poorer_y = parse_upload(w3c_report("gc-re-y", snapshots=2, seed=4), UploadContext())
    first = harness.hold_a_write("gc-re-0")
    refused = harness.pool.submit(harness.publisher.publish, [*fuller_y, *clash_x])
    harness.wait_until(lambda: harness.publisher.waiting() == 1)
    later = harness.pool.submit(harness.publisher.publish, poorer_y)
    harness.wait_until(lambda: harness.publisher.waiting() == 2)
    harness.store.gate.set()
    assert first.result().status_code == 202
    with pytest.raises(ConflictingReport):
        refused.result()
    later.result()  # acknowledged: so it must be in the store
    assert harness.stored_calls("gc-re-") == {"gc-re-0": "w3c", "gc-re-x": "w3c", "gc-re-y": "w3c"}
    assert harness.count("call_samples", "gc-re-y") == 2  # the later, poorer report: the fuller one was refused
