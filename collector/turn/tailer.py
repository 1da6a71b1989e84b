"""Follow a TURN server log file and publish its lines as ``TurnEvent``s, nothing lost or repeated.
A publisher with ``publish_turn_rows`` (Kafka) gets each line as a row (``CoturnParser.parse_row``)
instead of an event object: the same values, ids and checkpoints, and no object per line.

- Rotation by rename (logrotate default, coturn reopening on SIGHUP): the old file stays open
  and is read to its end; the new file is taken up from byte 0 once the old one is quiet.
  With a glob pattern as the path (coturn's default ``turn_<pid>_<date>.log`` names) the newest
  matching file is followed the same way.
- Rotation by copy-truncate: detected when the file is shorter than the read position or the
  bytes just before it changed; reading restarts at 0 under a new *generation* of the file
  identity, so the offsets of the new content make new event ids.
- Restarts: a checkpoint file (JSON, written atomically: temp file, fsync, rename) holds the
  file identity (device, inode, generation), the offset of the first unpublished byte, a
  signature of the bytes before it and the parser state. It is written only after
  ``Publisher.publish`` returned, so a crash repeats at most the last batch, with the same
  event ids (``stable_id(server_id, "dev:inode:generation", byte offset)``).
- A last line without its newline is left until the newline arrives.
- Lines that are not coturn lines go out as ``DeadLetter(stage="tailer")`` in the same publish call,
  and so do lines whose own time lies outside what turn_events keeps (collector/retention.py: more
  than 29 days before the read, or more than a day after it): the store would drop them on insert.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from collector.contract import TURN_EVENT_COLUMNS, DeadLetter, Model, utcnow
from collector.errors import Unavailable
from collector.publisher import Publisher
from collector.retention import MAX_AHEAD, TURN_EVENT_MAX_AGE, outside_window
from collector.turn.coturn import CoturnParser, TurnRow, UnknownLine

log = logging.getLogger(__name__)

SIG_BYTES = 32  # bytes before the read position kept to recognise a truncated-and-rewritten file
MAX_RAW = 64 * 1024
ERROR_RETRY_S = 5.0  # wait after a failed poll other than Unavailable
_AT = TURN_EVENT_COLUMNS.index("at")  # where a row holds the line's time
_RAW = TURN_EVENT_COLUMNS.index("raw")


@dataclass
class Checkpoint:
    dev: int
    ino: int
    generation: int
    offset: int
    signature: str = ""  # hex of the SIG_BYTES before offset
    path: str = ""
    parser: dict[str, Any] = field(default_factory=dict)
    finished: list[list[int]] = field(default_factory=list)  # (dev, inode) of files read to the end

    @property
    def source(self) -> str:
        return f"{self.dev}:{self.ino}:{self.generation}"


def load_checkpoint(path: Path) -> Checkpoint | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return Checkpoint(**data)


def save_checkpoint(path: Path, cp: Checkpoint) -> None:
    """Atomic replace: a reader sees the old or the new checkpoint, never a torn one. A write that
    fails (disk full, read-only, permissions) leaves the old checkpoint and no temp file, and raises
    Unavailable saying what to fix: the caller keeps its position and retries."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        # one C-encoded string: json.dump writes chunk by chunk from Python, and asdict deep-copies
        # the parser state (hundreds of open sessions); cp holds JSON-ready values only
        text = json.dumps(vars(cp), separators=(",", ":"))
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        what = ("the filesystem is full: free space on it" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                else "make its directory writable")
        raise Unavailable(
            f"cannot write the TURN log checkpoint {path} ({exc.strerror or exc}); {what}, or set "
            "ICEWATCH_DATA_DIR to a directory with room. Retrying; the lines after the last checkpoint "
            "are published again under the same event ids, so none is lost or counted twice",
            retry_after=5.0,
        ) from exc


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


class FileTailer:
    """Tails one file. ``poll()`` does one round of work; ``run()`` loops until stopped."""

    def __init__(
        self,
        path: Path | str,
        publisher: Publisher,
        parser: CoturnParser,
        checkpoint_path: Path | str,
        tenant: str = "default",
        batch_lines: int = 2000,
        read_bytes: int = 1 << 20,
        max_line_bytes: int = 64 * 1024,
        start_at_end: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = Path(path)
        self.publisher = publisher
        self.parser = parser
        self.checkpoint_path = Path(checkpoint_path)
        self.tenant = tenant
        self.batch_lines = batch_lines
        self.read_bytes = read_bytes
        self.max_line_bytes = max_line_bytes
        self.start_at_end = start_at_end
        self.clock = clock
        self.published = 0  # payloads acknowledged by the publisher
        self.errors = 0  # polls that failed with anything but Unavailable (retried)
        self.dead_letters = 0
        self._fh: BinaryIO | None = None
        self._cp: Checkpoint | None = None  # what is durable
        self._open_path: Path | None = None
        self._rotated_size: int | None = None  # size of the old file when the path changed
        self._glob = any(ch in self.path.name for ch in "*?[")
        self._finished: list[tuple[int, int]] = []  # identities of files already read to their end

    # ------------------------------------------------------------------ opening
    def _current(self) -> Path | None:
        """The file being written now: the path, or with a glob pattern (coturn's default names
        ``turn_<pid>_<date>.log`` change daily and at every restart) the newest match."""
        if not self._glob:
            return self.path
        best: tuple[int, str] | None = None
        found = None
        for p in self.path.parent.glob(self.path.name):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if _identity(st) in self._finished:
                continue
            key = (st.st_mtime_ns, p.name)
            if best is None or key > best:
                best, found = key, p
        return found

    def _find_by_identity(self, dev: int, ino: int) -> Path | None:
        try:
            if self._glob:
                candidates = sorted(self.path.parent.glob(self.path.name + "*"))
            else:
                siblings = self.path.parent.iterdir()
                candidates = [self.path, *sorted(p for p in siblings if p.name.startswith(self.path.name + "."))]
        except FileNotFoundError:
            return None
        for p in candidates:
            try:
                if _identity(p.stat()) == (dev, ino):
                    return p
            except FileNotFoundError:
                continue
        return None

    def _checkpoint(self, dev: int, ino: int, generation: int, path: str) -> Checkpoint:
        """A checkpoint at offset 0 of a file, with the current parser state."""
        finished = [list(f) for f in self._finished]
        return Checkpoint(dev, ino, generation, 0, "", path, self.parser.state(), finished)

    def _open(self, p: Path) -> tuple[BinaryIO, os.stat_result] | None:
        try:
            fh = open(p, "rb")  # noqa: SIM115 - kept open across polls on purpose
        except FileNotFoundError:
            return None
        return fh, os.fstat(fh.fileno())

    def _start(self) -> bool:
        """Open the file to read at startup: the checkpointed one (perhaps rotated) or the path."""
        cp = load_checkpoint(self.checkpoint_path)
        if cp is not None:
            self.parser.restore(cp.parser)
            self._finished = [(f[0], f[1]) for f in cp.finished]
            found = self._find_by_identity(cp.dev, cp.ino)
            if found is not None:
                opened = self._open(found)
                if opened is not None:
                    self._fh, _ = opened
                    self._open_path = found
                    self._cp = cp
                    self._check_truncation()
                    return True
            log.warning(
                "checkpointed log file %s (inode %d) is gone; lines after offset %d may be lost",
                cp.path,
                cp.ino,
                cp.offset,
            )
        current = self._current()
        opened = self._open(current) if current is not None else None
        if current is None or opened is None:
            return False
        self._fh, st = opened
        self._open_path = current
        offset = st.st_size if (cp is None and self.start_at_end) else 0
        gen = 0
        if cp is not None and (cp.dev, cp.ino) == _identity(st):
            gen = cp.generation + 1
        self._cp = self._checkpoint(st.st_dev, st.st_ino, gen, str(current))
        if offset:
            self._cp.offset = offset
            self._cp.signature = self._signature_at(offset)
        save_checkpoint(self.checkpoint_path, self._cp)
        return True

    def _signature_at(self, offset: int) -> str:
        assert self._fh is not None
        start = max(0, offset - SIG_BYTES)
        self._fh.seek(start)
        return self._fh.read(offset - start).hex()

    def _check_truncation(self) -> bool:
        """Copy-truncate: shorter than our position, or other bytes before it. Restart at 0."""
        assert self._fh is not None and self._cp is not None
        cp = self._cp
        size = os.fstat(self._fh.fileno()).st_size
        if size >= cp.offset and self._signature_at(cp.offset) == cp.signature:
            return False
        log.info("log file %s was truncated; reading it again from the start", self._open_path)
        self._cp = self._checkpoint(cp.dev, cp.ino, cp.generation + 1, cp.path)
        save_checkpoint(self.checkpoint_path, self._cp)
        return True

    # ------------------------------------------------------------------ reading
    def _read_lines(self, final: bool) -> list[tuple[int, bytes]]:
        """Complete lines from the durable offset on (at most batch_lines). With ``final`` the
        last unterminated line counts as a line too (its file will not grow any more)."""
        assert self._fh is not None and self._cp is not None
        self._fh.seek(self._cp.offset)
        data = self._fh.read(self.read_bytes)
        out: list[tuple[int, bytes]] = []
        pos = 0
        base = self._cp.offset
        n = len(data)
        while pos < n and len(out) < self.batch_lines:
            nl = data.find(b"\n", pos)
            if nl < 0:
                rest = data[pos:]
                too_long = len(rest) >= self.max_line_bytes
                # an over-long line, or the last bytes of a rotated file, is taken as it is
                if too_long or (final and n < self.read_bytes):
                    out.append((base + pos, rest))
                break
            out.append((base + pos, data[pos : nl + 1]))
            pos = nl + 1
        return out

    def _publish(self, lines: list[tuple[int, bytes]]) -> None:
        assert self._cp is not None
        cp = self._cp
        now = self.clock()
        payloads: list[Model] = []  # events (or rows) and dead letters, in one publish call
        rows: list[TurnRow] = []
        source = cp.source
        publish_rows = getattr(self.publisher, "publish_turn_rows", None)
        # A publisher that takes rows (Kafka) gets each line's values as a tuple made while the
        # line is hot in the CPU cache; any other gets TurnEvent objects.
        parse = self.parser.parse_row if publish_rows is not None else self.parser.parse
        # the times turn_events keeps: a line stamped outside them is a dead letter, not a row the
        # store would drop on insert (one comparison per line, no object)
        oldest, newest = now - TURN_EVENT_MAX_AGE, now + MAX_AHEAD
        for off, raw in lines:
            text = raw.decode("utf-8", errors="replace")
            res = parse(text, source=source, offset=off, received_at=now)
            if res is None:
                continue
            if isinstance(res, UnknownLine):
                payloads.append(self._dead_letter(res.raw, res.reason, None, now, off))
            elif type(res) is tuple:
                at = res[_AT]
                if at is not None and (at < oldest or at > newest):
                    payloads.append(self._dead_letter(res[_RAW], self._late(at, now), "at", now, off))
                else:
                    rows.append(res)
            else:
                at = res.at  # type: ignore[union-attr]
                if at is not None and (at < oldest or at > newest):
                    payloads.append(self._dead_letter(res.raw, self._late(at, now), "at", now, off))  # type: ignore[union-attr]
                else:
                    payloads.append(res)  # type: ignore[arg-type]
        end = lines[-1][0] + len(lines[-1][1])
        try:
            if rows:
                assert publish_rows is not None
                publish_rows(rows, payloads, self.tenant)
            elif payloads:
                self.publisher.publish(payloads, self.tenant)
            new = self._checkpoint(cp.dev, cp.ino, cp.generation, cp.path)
            new.offset = end
            new.signature = self._signature_at(end)
            save_checkpoint(self.checkpoint_path, new)
        except BaseException:
            # Not published, or published but not checkpointed (disk full): the lines will be parsed
            # again from the checkpoint, and published again under the same event ids.
            self.parser.restore(cp.parser)
            raise
        self.published += len(payloads) + len(rows)
        self.dead_letters += sum(1 for p in payloads if isinstance(p, DeadLetter))
        self._cp = new

    def _dead_letter(self, raw: str, reason: str, path: str | None, now: datetime, offset: int) -> DeadLetter:
        """A line that becomes no event: ``raw`` has its user names hashed already (by the parser)."""
        assert self._cp is not None
        return DeadLetter(
            stage="tailer",
            intended="turn_event",
            reason=reason,
            path=path,
            raw=raw[:MAX_RAW],
            raw_truncated=len(raw) > MAX_RAW,
            received_at=now,
            origin=f"{self._cp.path}:{self._cp.generation}:{offset}",
        )

    @staticmethod
    def _late(at: datetime, now: datetime) -> str:
        return outside_window(at, now, TURN_EVENT_MAX_AGE, "turn_events") or "outside the window turn_events keeps"

    def _drain(self, final: bool = False) -> int:
        count = 0
        while True:
            lines = self._read_lines(final)
            if not lines:
                return count
            self._publish(lines)
            count += len(lines)

    def poll(self) -> int:
        """Publish every complete line available now, following rotation and truncation.
        Returns the number of lines consumed. Raises Unavailable (checkpoint unchanged)."""
        if self._fh is None and not self._start():
            return 0
        total = 0
        while True:
            self._check_truncation()  # before reading: a rewritten file must not be read mid-line
            total += self._drain()
            current = self._current()
            try:
                st = current.stat() if current is not None else None
            except FileNotFoundError:
                st = None
            if current is None or st is None:
                return total
            assert self._cp is not None and self._fh is not None
            if _identity(st) == (self._cp.dev, self._cp.ino):
                self._rotated_size = None
                return total
            # The path is another file now. The writer may still append to the old one until
            # it reopens its log: switch only once the old file stopped growing for one poll.
            size = os.fstat(self._fh.fileno()).st_size
            if self._rotated_size != size:
                self._rotated_size = size
                return total
            total += self._drain(final=True)
            self._rotated_size = None
            if not self._switch_to(current):
                return total

    def _switch_to(self, path: Path) -> bool:
        opened = self._open(path)
        if opened is None:
            return False
        if self._fh is not None:
            self._fh.close()
        if self._cp is not None:
            self._finished = [*self._finished[-15:], (self._cp.dev, self._cp.ino)]
        self._fh, st = opened
        self._open_path = path
        self._cp = self._checkpoint(st.st_dev, st.st_ino, 0, str(path))
        save_checkpoint(self.checkpoint_path, self._cp)
        return True

    def run(self, stop: threading.Event, interval: float = 0.25) -> None:
        """Poll until ``stop`` is set; wait ``retry_after`` when the publisher is unavailable.

        Any other error (the store refusing a batch, a read error) is logged, counted in
        ``errors`` (icewatch_turn_tailer_errors_total) and retried after ERROR_RETRY_S from the
        durable checkpoint, instead of ending the thread: a tailer that stopped silently would
        lose nothing but would also read nothing more until the process restarts."""
        while not stop.is_set():
            try:
                self.poll()
            except Unavailable as exc:
                log.warning("publisher unavailable, retrying in %.1fs: %s", exc.retry_after, exc)
                stop.wait(exc.retry_after)
                continue
            except Exception:
                self.errors += 1
                log.exception("TURN log tailer for %s failed; retrying from the checkpoint in %.0fs",
                              self.checkpoint_path, ERROR_RETRY_S)
                stop.wait(ERROR_RETRY_S)
                continue
            stop.wait(interval)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
