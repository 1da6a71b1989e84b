"""A syslog receiver for coturn (``--syslog`` via a relay such as rsyslog, or any sender):
UDP datagrams, and TCP with octet-counted (RFC 6587 ``LEN SP MSG``) or newline framing.
Listens on 127.0.0.1 unless told otherwise.

Messages are parsed with one ``CoturnParser`` per sender (syslog host and process id) and
published in batches. A batch the publisher refuses (Unavailable) is kept and retried: for TCP
the reader then stops reading (backpressure); UDP datagrams that arrive while the buffer is
full are counted as dropped (UDP syslog offers nothing better). Syslog has no replay, so event
ids come from the sender, its process id, the receive time and a counter. A message whose own time
lies outside what turn_events keeps (collector/retention.py: more than 29 days before its receipt,
as a replayed old log or a wrong year guess gives, or more than a day after it) is dead-lettered
with the reason instead of published as an event the store would drop on insert.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from collector.contract import DeadLetter, Model, TurnEvent, stable_id, utcnow
from collector.errors import Unavailable
from collector.publisher import Publisher
from collector.retention import TURN_EVENT_MAX_AGE, outside_window
from collector.turn.coturn import CoturnParser, UnknownLine, redact_users
from collector.turn.prefix import unwrap

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024
MAX_SENDERS = 10_000  # (sender, pid) pairs with a parser; a real fleet has far fewer


class SyslogServer:
    def __init__(
        self,
        publisher: Publisher,
        make_parser: Callable[[str], CoturnParser],
        host: str = "127.0.0.1",
        udp_port: int | None = 0,
        tcp_port: int | None = 0,
        tenant: str = "default",
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_buffer: int = 100_000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``make_parser(sender)`` gives the parser (and so the server id) for a sender name:
        the syslog host name, else the source IP. Port 0 = any free port; None = off."""
        self.publisher = publisher
        self.make_parser = make_parser
        self.clock = clock
        self.tenant = tenant
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.received = 0
        self.dropped = 0
        self.published = 0
        self.queued = 0
        # One parser per (sender, pid), the least recently heard dropped past MAX_SENDERS: the
        # names come from unauthenticated headers, so a spoofing client must not grow memory.
        self._parsers: OrderedDict[tuple[str, str], CoturnParser] = OrderedDict()
        self._queue: queue.Queue[Model] = queue.Queue(maxsize=max_buffer)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._boot = time.time_ns()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        if udp_port is not None:
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._udp.bind((host, udp_port))
            self._udp.settimeout(0.2)
        if tcp_port is not None:
            self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._tcp.bind((host, tcp_port))
            self._tcp.listen(64)
            self._tcp.settimeout(0.2)

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return self._udp.getsockname() if self._udp is not None else None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self._tcp.getsockname() if self._tcp is not None else None

    # -------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        targets: list[Callable[[], None]] = [self._flush_loop]
        if self._udp is not None:
            targets.append(self._udp_loop)
        if self._tcp is not None:
            targets.append(self._accept_loop)
        for t in targets:
            th = threading.Thread(target=t, daemon=True, name=f"syslog-{t.__name__}")
            th.start()
            self._threads.append(th)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, publish what is buffered (as far as the publisher allows), close."""
        self._stop.set()
        for th in self._threads:
            th.join(timeout)
        for s in (self._udp, self._tcp):
            if s is not None:
                s.close()

    # -------------------------------------------------------------------- input
    def handle_message(self, text: str, peer: str, block: bool = True) -> None:
        """Parse one syslog message and queue what it produced."""
        text = text.rstrip("\r\n\x00")
        if not text:
            return
        self.received += 1
        now = self.clock()
        try:
            res = self._parse(text, peer, now)
        except Exception as exc:  # a parser bug must not stop the reader: it serves every sender
            hasher = self.make_parser(peer).hasher  # the error may quote the line: user names hashed in both
            reason = redact_users(f"the parser failed: {type(exc).__name__}: {exc}", hasher)[:500]
            log.error("a syslog message from %s could not be parsed; it is dead-lettered: %s", peer, reason)
            res = UnknownLine(redact_users(text, hasher), reason, 0)
        if res is None:
            return
        item: Model
        if isinstance(res, UnknownLine):
            item = DeadLetter(
                stage="syslog",
                intended="turn_event",
                reason=res.reason,
                raw=res.raw[:MAX_MESSAGE],
                received_at=now,
                origin=f"syslog from {peer}",
            )
        elif res.at is not None and (late := outside_window(res.at, now, TURN_EVENT_MAX_AGE, "turn_events")):
            item = DeadLetter(
                stage="syslog",
                intended="turn_event",
                reason=late,
                path="at",
                raw=res.raw[:MAX_MESSAGE],  # user names hashed by the parser
                received_at=now,
                origin=f"syslog from {peer}",
            )
        else:
            item = res
        try:
            self._queue.put(item, block=block)
        except queue.Full:
            self.dropped += 1
            return
        with self._lock:
            self.queued += 1

    def _parse(self, text: str, peer: str, now: datetime) -> TurnEvent | UnknownLine | None:
        w = unwrap(text, now)
        sender = w.host or peer
        key = (sender, w.pid or "-")
        with self._lock:
            parser = self._parsers.get(key)
            if parser is None:
                parser = self._parsers[key] = self.make_parser(sender)
                if len(self._parsers) > MAX_SENDERS:
                    self._parsers.popitem(last=False)
            else:
                self._parsers.move_to_end(key)
            self._seq += 1
            seq = self._seq
            source = f"syslog:{sender}:{w.pid or '-'}"
            # The process key is "<source>@<offset>" of the process's first line: with a pid the
            # source already names the process (stable across collector restarts), without one
            # the receive counter keeps restarts of the server apart.
            return parser.parse(
                text,
                source=source,
                offset=0 if w.pid else seq,
                received_at=now,
                event_id=stable_id(parser.server_id, "syslog", sender, w.pid, self._boot, seq),
            )

    def _udp_loop(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            try:
                data, addr = self._udp.recvfrom(MAX_MESSAGE)
            except TimeoutError:
                continue
            except OSError:
                return
            self.handle_message(data.decode("utf-8", errors="replace"), addr[0], block=False)

    def _accept_loop(self) -> None:
        assert self._tcp is not None
        while not self._stop.is_set():
            try:
                conn, addr = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            th = threading.Thread(target=self._tcp_conn, args=(conn, addr[0]), daemon=True)
            th.start()

    def _tcp_conn(self, conn: socket.socket, peer: str) -> None:
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                msgs, used = split_frames(buf)
                buf = buf[used:]
                for msg in msgs:
                    self.handle_message(msg.decode("utf-8", errors="replace"), peer)
            if buf.strip():
                self.handle_message(buf.decode("utf-8", errors="replace"), peer)

    # -------------------------------------------------------------------- output
    def _take_batch(self, wait: float) -> list[Model]:
        batch: list[Model] = []
        deadline = time.monotonic() + wait
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=max(remaining, 0.001)) if remaining > 0 else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _flush_loop(self) -> None:
        pending: list[Model] = []
        while True:
            if not pending:
                pending = self._take_batch(self.flush_interval)
            if not pending:
                if self._stop.is_set():
                    return
                continue
            try:
                self.publisher.publish(pending, self.tenant)
            except Unavailable as exc:
                if self._stop.is_set():
                    log.error("publisher unavailable at shutdown: %d syslog messages not published", len(pending))
                    return
                log.warning("publisher unavailable, retrying in %.1fs: %s", exc.retry_after, exc)
                self._stop.wait(exc.retry_after)
                continue
            self.published += len(pending)
            pending = []

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been published (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.published >= self.queued:
                return True
            time.sleep(0.02)
        return False


def split_frames(buf: bytes) -> tuple[list[bytes], int]:
    """Split a TCP syslog buffer into messages: octet-counted frames (``123 <14>...``) and
    newline-terminated ones, possibly mixed. Returns the messages and the number of bytes
    consumed; the caller keeps the rest (an incomplete frame) for the next read."""
    out: list[bytes] = []
    pos = 0
    n = len(buf)
    while pos < n:
        if buf[pos : pos + 1] in (b"\n", b"\r", b"\x00"):
            pos += 1
            continue
        sp = buf.find(b" ", pos, pos + 12)
        if sp > pos and buf[pos:sp].isdigit():
            end = sp + 1 + int(buf[pos:sp])
            if end > n:
                break
            out.append(buf[sp + 1 : end])
            pos = end
            continue
        nl = buf.find(b"\n", pos)
        if nl < 0:
            break
        out.append(buf[pos:nl])
        pos = nl + 1
    return out, pos
