"""Group commit for the embedded store: concurrent uploads share one write.

Each caller hands in the rows of its upload (one ``Rows`` per message, derived in the caller's
thread) and blocks. One writer thread takes what has queued up (after the first arrival it waits
at most ``max_linger_s``: for as many uploads as the largest recent batch had, then while more
keep coming, each within ``linger_s`` of the last; never beyond ``max_batch_messages``; uploads
arriving during a write wait for the next batch), decides
convergence once for the whole batch, writes every table once (``calls`` last) and only then wakes
the callers. So:

- nothing is acknowledged before it is written: a caller returns only after the batch's write;
- an upload stays all or nothing: a report the store's convergence refuses (another format for the
  same call) fails its own upload with ConflictingReport (409) and none of that upload's rows are
  written; the rest of the batch is decided again without it;
- a batch the store refuses (StoreError: a value a column cannot hold) is written again upload by
  upload, so only the uploads the store refuses alone fail (InvalidInput, 422);
- a batch the store cannot take (Unavailable) fails every upload in it (503, retry): none of them
  is acknowledged, and a retry is harmless (ReplacingMergeTree tables, exact-distinct rollups);
- memory is bounded: at most ``max_queued_messages`` messages holding ``max_queued_rows`` rows
  wait; beyond that ``submit`` raises Unavailable at once (503 with Retry-After) instead of
  queueing. An upload larger than a bound is still taken when nothing else waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from collector.contract import stable_id, utcnow
from collector.errors import ConflictingReport, InvalidInput, StorageUnavailable, StoreError, Unavailable
from processors.rows.batch import MessageRows, Rows, merge_rows
from processors.store.convergence import admit, restamped
from processors.store.sink import Sink

log = logging.getLogger(__name__)


@dataclass
class _Upload:
    """One caller's upload: its messages' rows and its content token; the writer fills ``error``."""

    messages: Sequence[MessageRows]
    token: str
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    rows: Rows = field(default_factory=dict)  # what was admitted, once decided
    row_count: int = field(init=False, default=0)  # rows of all its messages, counted once

    def __post_init__(self) -> None:
        self.row_count = sum(len(table_rows) for m in self.messages for table_rows in m.values())


@dataclass(frozen=True)
class GroupCommitStats:
    batches: int
    uploads: int
    largest_batch: int  # uploads
    refused_full: int  # submits refused because the queue was full


class GroupCommit:
    """The batcher in front of one Sink. ``submit`` is thread-safe; ``close`` writes what is queued."""

    def __init__(self, sink: Sink, *, linger_s: float = 0.003, max_linger_s: float = 0.02,
                 max_batch_messages: int = 512, max_queued_messages: int = 4096, max_queued_rows: int = 200_000,
                 retry_after_s: float = 1.0) -> None:
        if linger_s < 0 or max_linger_s < 0 or min(max_batch_messages, max_queued_messages, max_queued_rows) < 1:
            raise ValueError("linger_s, max_linger_s >= 0; max_batch_messages, max_queued_messages, "
                             "max_queued_rows >= 1")
        self._sink = sink
        self._linger_s = linger_s
        self._max_linger_s = max_linger_s
        self._max_batch = max_batch_messages
        self._max_queued = max_queued_messages
        self._max_rows = max_queued_rows
        self._retry_after_s = retry_after_s
        self._cond = threading.Condition()
        self._queue: deque[_Upload] = deque()
        self._queued = 0  # messages in the queue
        self._queued_rows = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._batches = self._uploads = self._largest = self._refused_full = 0
        self._recent: deque[int] = deque(maxlen=8)  # uploads in each of the last batches

    def stats(self) -> GroupCommitStats:
        with self._cond:
            return GroupCommitStats(self._batches, self._uploads, self._largest, self._refused_full)

    def waiting(self) -> int:
        """Uploads queued for the next batch (not the one being written)."""
        with self._cond:
            return len(self._queue)

    def submit(self, messages: Sequence[MessageRows], token: str) -> None:
        """Write ``messages`` (one upload) with the next batch; return only after that write.
        Raises ConflictingReport / InvalidInput (this upload refused) or Unavailable (retry)."""
        upload = _Upload(messages, token)
        with self._cond:
            if self._closed:
                raise StorageUnavailable("the embedded store is closing", self._retry_after_s)
            if self._queue and (self._queued + len(messages) > self._max_queued
                                or self._queued_rows + upload.row_count > self._max_rows):
                self._refused_full += 1
                raise StorageUnavailable(f"the embedded store's write queue is full ({self._queued} messages, "
                                         f"{self._queued_rows} rows waiting)", self._retry_after_s)
            self._queue.append(upload)
            self._queued += len(messages)
            self._queued_rows += upload.row_count
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="embedded-group-commit", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        upload.done.wait()
        if upload.error is not None:
            raise upload.error

    def close(self, timeout_s: float = 30.0) -> None:
        """Refuse new uploads, write the queued ones, stop the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        st = self.stats()
        log.info("group commit: %d uploads in %d batches (largest %d uploads); %d refused with the queue full",
                 st.uploads, st.batches, st.largest_batch, st.refused_full)

    # The writer thread.

    def _next_batch(self) -> list[_Upload] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None  # closed and drained
            # Collect, at most max_linger_s after the first arrival: until as many uploads wait as
            # the largest of the recent batches (the clients answered by a batch tend to come back
            # together), then while more keep arriving, each within linger_s of the last.
            first = time.monotonic()
            expected = max(self._recent, default=1)
            while self._queued < self._max_batch and not self._closed:
                seen = len(self._queue)
                left = first + self._max_linger_s - time.monotonic()
                if left <= 0:
                    break
                if seen < expected:
                    self._cond.wait(left)
                    continue
                self._cond.wait(min(self._linger_s, left))
                if len(self._queue) == seen:
                    break  # nothing arrived within linger_s
            batch = [self._queue.popleft()]
            size = len(batch[0].messages)
            while self._queue and size + len(self._queue[0].messages) <= self._max_batch:
                size += len(self._queue[0].messages)
                batch.append(self._queue.popleft())
            self._queued -= size
            self._queued_rows -= sum(u.row_count for u in batch)
            self._recent.append(len(batch))
            self._batches += 1
            self._uploads += len(batch)
            self._largest = max(self._largest, len(batch))
            return batch

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    self._write(batch)
                except BaseException as exc:  # never leave a caller waiting
                    log.exception("embedded group commit: the batch write failed")
                    for u in batch:
                        if not u.done.is_set():
                            _fail(u, exc)
                finally:
                    for u in batch:
                        u.done.set()
        finally:
            with self._cond:  # the writer is gone (closed, or a bug): nobody may wait for it
                self._closed = True
                left = list(self._queue)
                self._queue.clear()
                self._queued = self._queued_rows = 0
            for u in left:
                _fail(u, StorageUnavailable("the embedded store's writer stopped", self._retry_after_s))

    def _write(self, batch: list[_Upload]) -> None:
        uploads = self._decide(batch)
        if not uploads:
            return
        rows: Rows = {}
        for u in uploads:
            merge_rows(rows, u.rows)
        token = "g-" + stable_id(*(u.token for u in uploads)) if len(uploads) > 1 else uploads[0].token
        try:
            _insert(self._sink, rows, token)
        except StoreError as exc:
            if len(uploads) == 1:
                _fail(uploads[0], InvalidInput(f"the store refused the report ({exc}); the call was not stored"))
                return
            log.warning("the store refused a batch of %d uploads; writing them one by one: %s", len(uploads), exc)
            for u in uploads:
                try:
                    _insert(self._sink, u.rows, u.token)
                except StoreError as one:
                    _fail(u, InvalidInput(f"the store refused the report ({one}); the call was not stored"))
                except Exception as one:
                    _fail(u, one)
        except Exception as exc:
            for u in uploads:
                _fail(u, exc)

    def _decide(self, batch: list[_Upload]) -> list[_Upload]:
        """Convergence for the whole batch, in arrival order. An upload with a refused report fails
        whole (409) and the others are decided again without it: a later report of the same call
        may have been skipped as poorer than the refused upload's, which is not written now."""
        uploads = list(batch)
        while uploads:
            messages = [m for u in uploads for m in u.messages]
            owner = [k for k, u in enumerate(uploads) for _ in u.messages]
            try:
                decision = admit(self._sink, messages)
            except Exception as exc:
                for u in uploads:
                    _fail(u, exc)
                return []
            if decision.refused:
                refused: dict[int, str] = {}
                for i, reason in decision.refused:
                    refused.setdefault(owner[i], reason)
                for k, reason in refused.items():
                    _fail(uploads[k], ConflictingReport(reason))
                uploads = [u for k, u in enumerate(uploads) if k not in refused]
                continue
            # Stamped by the one writer: the later write carries the later version, and
            # convergence made sure that it is never the poorer report.
            now = utcnow()
            for i in decision.write:
                merge_rows(uploads[owner[i]].rows, restamped(messages[i], max(now, decision.restamp.get(i, now))))
            return uploads
        return []


def _insert(sink: Sink, rows: Rows, token: str) -> None:
    # calls last: until it is written, no call-level query or rollup sees a partial report
    for table, table_rows in sorted(rows.items(), key=lambda item: item[0] == "calls"):
        sink.insert(table, table_rows, dedup_token=f"{token}-{table}")


def _fail(upload: _Upload, exc: BaseException) -> None:
    """Give the caller its own exception object (one raised in several threads would share its
    traceback), keeping the type the HTTP layer maps to a status."""
    own: BaseException
    if isinstance(exc, InvalidInput):
        own = exc  # made for this upload alone
    elif isinstance(exc, Unavailable):
        own = StorageUnavailable(str(exc), exc.retry_after)
    else:
        own = StorageUnavailable(f"the embedded store failed the write: {type(exc).__name__}: {exc}")
    if own is not exc:
        own.__cause__ = exc
    upload.error = own
    upload.done.set()

