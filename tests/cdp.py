"""A minimal Chrome DevTools Protocol client over a stdlib-only WebSocket (RFC 6455, client side).

Only what the WebRTC testbed needs: one text-frame WebSocket connection to the browser
endpoint, request/response by id, flattened target sessions. Events received while waiting for an answer are
kept in ``CdpClient.events`` (enable a domain to receive its events).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import socket
import struct
import time
from typing import Any

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class CdpError(RuntimeError):
    """The DevTools endpoint misbehaved or answered a command with an error."""


def fetch_json(host: str, port: int, path: str, timeout: float = 5.0) -> Any:
    """GET a DevTools HTTP endpoint (``/json/version``, ``/json/list``) and decode its JSON."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise CdpError(f"GET {path} on {host}:{port} answered {resp.status}: {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


class WebSocket:
    """A blocking WebSocket client connection that sends and receives text messages."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 10.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        try:
            self._handshake(host, port, path)
        except BaseException:
            self._sock.close()
            raise

    def _handshake(self, host: str, port: int, path: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buf:
            self._recv_more()
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise CdpError(f"WebSocket upgrade refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        expected = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise CdpError("WebSocket upgrade: wrong Sec-WebSocket-Accept")

    def _recv_more(self) -> None:
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            raise CdpError("DevTools connection closed by the browser")
        self._buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._recv_more()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv_text(self, timeout: float) -> str:
        """The next complete text message; answers pings, fails on close or timeout."""
        self._sock.settimeout(timeout)
        parts: list[bytes] = []
        while True:
            b0, b1 = self._take(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._take(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._take(8))
            mask = self._take(4) if b1 & 0x80 else b""
            payload = self._take(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise CdpError("DevTools connection closed by the browser")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, struct.pack("!H", 1000))
        self._sock.close()


class CdpClient:
    """DevTools commands over the browser-level WebSocket; ``session_id`` targets a page."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        version = fetch_json(host, port, "/json/version", timeout)
        url = str(version["webSocketDebuggerUrl"])
        path = "/" + url.split("/", 3)[3]
        self._ws = WebSocket(host, port, path, timeout)
        self._next_id = 0
        self.events: list[dict[str, Any]] = []  # events received while waiting for answers, in order

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send one command and wait for its result (events received meanwhile go to ``events``)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            msg["sessionId"] = session_id
        self._ws.send_text(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError(f"{method}: no answer within {timeout:.0f} s")
            try:
                reply = json.loads(self._ws.recv_text(left))
            except TimeoutError as exc:
                raise CdpError(f"{method}: no answer within {timeout:.0f} s") from exc
            if reply.get("id") != self._next_id:
                if "method" in reply:
                    self.events.append(reply)
                continue
            if "error" in reply:
                raise CdpError(f"{method} failed: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def evaluate(self, expression: str, session_id: str, timeout: float) -> Any:
        """Evaluate ``expression`` in the page, await its promise, return its value."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session_id=session_id,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            exc = details.get("exception", {})
            text = exc.get("description") or details.get("text") or str(details)
            raise CdpError(f"page script failed: {text}")
        return result.get("result", {}).get("value")

    def close(self) -> None:
        self._ws.close()
