"""The HTTP server under the ingest app: uvicorn's h11 protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections but never times out a request whose headers trickle in
(one byte a second keeps a connection, and a file descriptor, forever). ``HeaderDeadlineH11``
closes a connection whose request line and headers are not complete ``header_timeout_s`` after the
connection opened or the previous response finished. Bodies are bounded by the app
(``collector/http_app.py``: size, and ``body_timeout_s`` for reading it); connections by
``limit_concurrency`` (503 beyond).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from collector.errors import ConfigError

HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024


class HeaderDeadlineH11(H11Protocol):
    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_header_deadline()  # the request's headers are in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete  # a pipelined request may have started
        if idle and not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def run_server(app: Any, host: str, port: int, *, max_connections: int, keepalive_timeout_s: float,
               header_timeout_s: float) -> None:
    """Serve ``app`` until interrupted, with the connection limits above. Raises ConfigError when
    the address cannot be listened on (uvicorn would only log it and exit)."""
    check_listen(host, port)
    protocol = type("IngestH11", (HeaderDeadlineH11,), {"header_timeout_s": header_timeout_s})
    # uvicorn handles SIGTERM itself (finishing in-flight requests), then raises it again with the
    # handler found at start: the default one would kill the process before the caller's cleanup
    # (closing the publisher, the evaluator, the store) runs. This one ends it as a normal exit.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_normally) if in_main else None
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, http=protocol,
                    limit_concurrency=max_connections, timeout_keep_alive=int(max(1, keepalive_timeout_s)),
                    h11_max_incomplete_event_size=MAX_HEADER_BYTES)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_normally(signum: int, frame: object) -> None:
    raise SystemExit(0)


def check_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once (as uvicorn will, with SO_REUSEADDR) and release it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): set ICEWATCH_PORT to a free "
                          "port (or ICEWATCH_HOST to an address of this machine), or stop what uses it") from exc
