"""coturn log lines -> ``TurnEvent`` (research/turn_logs.md section 1).

One ``CoturnParser`` per log stream (one server). It is stateful in a small, bounded way:

- the process key: a new server process is recognised at its version banner or when the
  seconds counter goes backwards; the key is ``<source>@<offset>`` of that line, so it is the
  same on every replay of the same bytes;
- the duplicate ``message`` line after a failed request (kind ``request_message``);
- the transport of open sessions (cipher/method, socket lines, TCP accept and UDP endpoint
  lines by client address), used on later lines of the session and on its close line;
- the last ``Local relay addr`` line, attached to the following ``new`` allocation.

``state()``/``restore()`` carry that state through a checkpoint. User names never leave the
parser in clear: events carry a keyed HMAC and ``raw`` has the name replaced by the same hash.
Pure code: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.contract import TURN_EVENT_COLUMNS, Transport, TurnEvent
from collector.turn.prefix import CoturnPrefix, Unwrapped, micros_time, split_coturn, split_counter, unwrap

_REQUEST = re.compile(
    r"(?:origin <(.*?)> )?(?:realm <(.*?)> )?user <(.*?)>: incoming packet (.+?) processed, "
    r"(?:success|error ([0-9]{1,4})(?:: ?(.*))?)$"
)
_ALLOC = re.compile(
    r"(new|refreshed), (?:realm=<(.*?)>, )?username=<(.*?)>, lifetime=([0-9]{1,9})(?![0-9])"
    r"(?:, cipher=([^,]*), method=(\S+))?"
)
_USAGE = re.compile(
    r"usage: (?:realm=<(.*?)>, )?username=<(.*?)>, rp=([0-9]{1,19}), rb=([0-9]{1,19}), sp=([0-9]{1,19}), "
    r"sb=([0-9]{1,19})"
)
_DELETE = re.compile(r"delete: (?:realm=<(.*?)>, )?username=<(.*)>$")
_CLOSED = re.compile(
    r"closed \((?:1st|2nd) stage\), user <(.*?)>,?(?: realm <(.*?)>)?(?: origin <(.*?)>)?,? "
    r"local (\S+), remote (\S+), reason: (.*)$"
)
_PEER_LIFETIME = re.compile(r"peer (\S+) lifetime updated: ([0-9]{1,9})(?![0-9])")
_AUTH_UNKNOWN = re.compile(r"check_stun_auth: Cannot find credentials of user <(.*)>$")
_AUTH_WRONG = re.compile(r"check_stun_auth: user (.*) credentials are incorrect$")
_DENIED = re.compile(r"A peer IP (\S+) denied(.*?)(?: in server \d+)?\s*$")
_SOCKET = re.compile(r"(\S+) socket (closed remotely|disconnected|error)(?::)? ?(.*?)(\S+:\d+)?$")
_SOCKET_EVENT = re.compile(r"(.*) \(local (\S+), remote (\S+)\)$")
_RELAY = re.compile(r"IPv[46]\. Local (reserved )?relay addr(?: \(RTCP\))?: (\S+)")
_TCP_ACCEPT = re.compile(r"IPv[46]\. tcp or tls connected to: (\S+)")
_UDP_ENDPOINT = re.compile(r"New UDP endpoint: local addr (\S+), remote addr (\S+)")
_DTLS_ACCEPT = re.compile(r"Accepted DTLS connection from:? (\S+)")
_EXPORT_FIELD = re.compile(r"(_{0,2}[A-Z][A-Z0-9_]*)=(.*)$")
# user <x>, username=<x>, and an unbracketed "user x" (other servers' wording) up to , ] or space
_GENERIC_USER = re.compile(r"(\buser(?:name)?[ =]<)([^>]*)(>)|(\buser(?:name)?[ =])(?!<)([^\s,\]<>]+)")

_SOCKET_TRANSPORT: dict[str, Transport] = {
    "TCP": "tcp",
    "UDP": "udp",
    "TLS/TCP": "tls",
    "TLS/SCTP": "tls",
    "TLS/TCP ?": "tls",
    "DTLS": "dtls",
}
# Close reasons coturn gives sessions of any transport; for these the transport comes from
# what the parser saw earlier (or "udp" when it saw every TCP accept of the process).
_NEUTRAL_CLOSE = ("allocation timeout", "allocation watchdog", "initial packet processing", "general")
_PLAIN = Unwrapped("")  # what unwrap() says of a line without a wrapper (read only)
_BOUND = 50_000  # entries per state dict (open TCP/TLS sessions) before the oldest half is dropped


_TEMPLATE: dict[str, Any] = dict.fromkeys(TURN_EVENT_COLUMNS)
TurnRow = tuple[Any, ...]  # a TurnEvent's values in the order of TURN_EVENT_COLUMNS


class _SharedFieldsSet(set[str]):
    """Every field name, one set shared by all parsed events (a per-event set of 29 names
    cost more memory than the event's values). Frozen models never change it; a copy
    (``model_copy``, which then adds the updated names) is a plain set of its own."""

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[str]:
        return set(self)


_ALL_FIELDS = _SharedFieldsSet(_TEMPLATE)
_new = object.__new__
_set = object.__setattr__


def make_event(fields: dict[str, Any]) -> TurnEvent:
    """Build a TurnEvent from fields the parser produced (already of the right types), without
    pydantic's per-field work: this is the hot path. Every optional field defaults to None."""
    d = _TEMPLATE.copy()
    d.update(fields)
    ev = object.__new__(TurnEvent)
    object.__setattr__(ev, "__dict__", d)
    object.__setattr__(ev, "__pydantic_fields_set__", set(fields))
    object.__setattr__(ev, "__pydantic_extra__", None)
    object.__setattr__(ev, "__pydantic_private__", None)
    return ev


def _event_of(d: dict[str, Any]) -> TurnEvent:
    """A TurnEvent around ``d``, a full copy of ``_TEMPLATE`` the parser filled in (every field
    is set, to a value or None): no copy, no validation."""
    ev = _new(TurnEvent)
    _set(ev, "__dict__", d)
    _set(ev, "__pydantic_fields_set__", _ALL_FIELDS)
    _set(ev, "__pydantic_extra__", None)
    _set(ev, "__pydantic_private__", None)
    return ev


def _transport_of_reason(reason: str) -> Transport | None:
    for name in ("TLS/TCP ?", "TLS/TCP", "TLS/SCTP", "DTLS", "TCP", "UDP"):
        if reason.startswith(name + " "):
            return _SOCKET_TRANSPORT[name]
    return None


def _trim(d: dict[str, Any]) -> None:
    if len(d) > _BOUND:
        for k in list(d)[: _BOUND // 2]:
            del d[k]


@dataclass(slots=True)
class UnknownLine:
    """A line that is neither a coturn line nor a wrapper's metadata. ``raw`` is redacted."""

    raw: str
    reason: str
    offset: int


@dataclass
class ParseStats:
    lines: int = 0
    events: int = 0
    skipped: int = 0  # blank lines and wrapper metadata
    unknown: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    unknown_samples: deque[str] = field(default_factory=lambda: deque(maxlen=20))


def redact_users(text: str, hasher: UserHasher) -> str:
    """Replace user names by their hash in lines not understood: ``user <x>``, ``username=<x>``
    and ``user x``."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return m.group(1) + hasher.token(m.group(2)) + m.group(3)
        return m.group(4) + hasher.token(m.group(5))

    return _GENERIC_USER.sub(repl, text)


class UserHasher:
    """Keyed HMAC-SHA256 of TURN user names (24 hex chars); "" stays "" (anonymous challenge)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a non-empty user hash key is required")
        self._key = key
        self._cache: dict[str, str] = {}
        self._brackets: dict[str, tuple[str, str]] = {}

    def __call__(self, user: str) -> str:
        if not user:
            return ""
        h = self._cache.get(user)
        if h is None:
            h = hmac.new(self._key, user.encode(), hashlib.sha256).hexdigest()[:24]
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[user] = h
        return h

    def token(self, user: str) -> str:
        """What replaces the user name inside ``raw``."""
        return f"h:{self(user)}" if user else ""

    def bracketed(self, user: str) -> tuple[str, str]:
        """``("<user>", "<h:hash>")``: the replacement made in raw lines (cached: hot path)."""
        pair = self._brackets.get(user)
        if pair is None:
            if len(self._brackets) > 100_000:
                self._brackets.clear()
            pair = self._brackets[user] = (f"<{user}>", f"<{self.token(user)}>")
        return pair


class CoturnParser:
    """Parses one stream of coturn lines (one server). Not thread-safe; one per source."""

    def __init__(
        self,
        server_id: str,
        hash_key: bytes,
        region: str | None = None,
        unknown_samples: int = 20,
    ) -> None:
        self.server_id = server_id
        self.region = region
        self.hasher = UserHasher(hash_key)
        self.stats = ParseStats(unknown_samples=deque(maxlen=unknown_samples))
        self.process_key: str | None = None
        self._fresh = True  # no session line since the process start: banner continuation allowed
        self._saw_start = False  # the start of this process was seen (so every TCP accept was too)
        self._last_uptime: int | None = None
        self._pending_fail: dict[str, tuple[int, str]] = {}
        self._session_transport: dict[str, Transport] = {}
        self._remote_transport: dict[str, Transport] = {}
        self._pending_relay: str | None = None
        self._export_at: datetime | None = None
        self._id_base: dict[str, Any] = {}  # source -> sha256 state of "server_id␟source␟"

    # ---------------------------------------------------------------- checkpoint state
    def state(self) -> dict[str, Any]:
        return {
            "process_key": self.process_key,
            "fresh": self._fresh,
            "saw_start": self._saw_start,
            "last_uptime": self._last_uptime,
            "pending_fail": {k: list(v) for k, v in self._pending_fail.items()},
            "session_transport": dict(self._session_transport),
            "remote_transport": dict(self._remote_transport),
            "pending_relay": self._pending_relay,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.process_key = state.get("process_key")
        self._fresh = bool(state.get("fresh", True))
        self._saw_start = bool(state.get("saw_start", False))
        self._last_uptime = state.get("last_uptime")
        self._pending_fail = {k: (int(v[0]), str(v[1])) for k, v in state.get("pending_fail", {}).items()}
        self._session_transport = dict(state.get("session_transport", {}))
        self._remote_transport = dict(state.get("remote_transport", {}))
        self._pending_relay = state.get("pending_relay")

    # ---------------------------------------------------------------- parsing
    def parse(
        self,
        line: str,
        *,
        source: str,
        offset: int,
        received_at: datetime | None = None,
        event_id: str | None = None,
    ) -> TurnEvent | UnknownLine | None:
        """One line (without or with its newline) -> an event, an unknown line, or None for
        blank lines and wrapper metadata. ``source`` + ``offset`` identify the line's bytes and
        make the event id, unless ``event_id`` is given (syslog, where bytes have no offset)."""
        f = self._fields(line, source, offset, received_at, event_id)
        return _event_of(f) if type(f) is dict else f  # type: ignore[return-value]

    def parse_row(
        self,
        line: str,
        *,
        source: str,
        offset: int,
        received_at: datetime | None = None,
        event_id: str | None = None,
    ) -> TurnRow | UnknownLine | None:
        """``parse`` without the event object: the event's values in the order of
        ``TURN_EVENT_COLUMNS`` (what a ``turn_event_batch`` row holds), made while the line is
        still in the CPU cache. The tailer's hot path; the same state, stats and ids as ``parse``."""
        f = self._fields(line, source, offset, received_at, event_id)
        return tuple(f.values()) if type(f) is dict else f  # type: ignore[return-value]

    def _fields(
        self, line: str, source: str, offset: int, received_at: datetime | None, event_id: str | None
    ) -> dict[str, Any] | UnknownLine | None:
        """The event's field dict (a full copy of ``_TEMPLATE``, in its order), or what is no event."""
        stats = self.stats
        stats.lines += 1
        if line[-1:] == "\n":
            line = line.rstrip("\r\n")
        # the common case first: a coturn line with the seconds counter and no wrapper
        t = split_counter(line) if line[:1].isdigit() else None
        if t is not None:
            f = self._event(t[1], t[2], t[3], line, source, offset, t[4] or received_at, event_id)
        else:
            res = self._wrapped(line, offset, received_at, source, event_id)
            if type(res) is not dict:
                return res
            f = res
        stats.events += 1
        by_kind = stats.by_kind
        kind = f["kind"]
        by_kind[kind] = by_kind.get(kind, 0) + 1
        return f

    def _wrapped(
        self, line: str, offset: int, received_at: datetime | None, source: str, event_id: str | None
    ) -> dict[str, Any] | UnknownLine | None:
        """Every line but the common case: timestamped coturn prefixes, wrappers, metadata."""
        stats = self.stats
        # a journald short-iso line has a host after its timestamp, which no coturn prefix has,
        # so it falls through to unwrap()
        p = split_coturn(line) if line[:1].isdigit() else None
        if p is not None:
            w = _PLAIN
        else:
            if not line.strip():
                stats.skipped += 1
                return None
            w = unwrap(line, received_at)
            body = w.body
            if w.wrapper == "journald-export" and w.at is None:
                w.at = self._export_at
            p = split_coturn(body)
        if p is None:
            fm = _EXPORT_FIELD.match(line) if w.wrapper is None else None
            if fm is not None:
                # journalctl -o export: remember the record's time, skip its other fields
                if fm.group(1) == "__REALTIME_TIMESTAMP":
                    self._export_at = micros_time(fm.group(2)) or self._export_at
                stats.skipped += 1
                return None
            if body.startswith("session "):
                p = CoturnPrefix("bare", body)
            elif self._fresh and self.process_key is not None and w.wrapper is None:
                # continuation of a multi-line startup record (E1-E3 banner)
                p = CoturnPrefix("bare", body)
            elif "Coturn" in body and ("Version Coturn-" in body or "Coturn Version" in body):
                p = CoturnPrefix("bare", body)
            elif not body.strip():
                stats.skipped += 1
                return None
            else:
                stats.unknown += 1
                raw = redact_users(line, self.hasher)
                stats.unknown_samples.append(raw)
                return UnknownLine(raw, "not a coturn log line", offset)
        return self._event(p.msg, p.level, p.uptime, line, source, offset, p.at or w.at or received_at, event_id)

    def _restart(self, source: str, offset: int, saw_start: bool = True) -> None:
        self.process_key = f"{source}@{offset}"
        self._fresh = True
        self._saw_start = saw_start
        self._pending_fail.clear()
        self._session_transport.clear()
        self._remote_transport.clear()
        self._pending_relay = None

    def _event(
        self,
        msg: str,
        level: str | None,
        up: int | None,
        line: str,
        source: str,
        offset: int,
        at: datetime | None,
        event_id: str | None,
    ) -> dict[str, Any]:
        # process identity -----------------------------------------------------------
        if self.process_key is None:
            self.process_key = f"{source}@{offset}"
            self._fresh = True
            self._saw_start = up is not None and up <= 2 and msg.startswith("log file opened")
        is_banner = "Coturn" in msg and ("Version Coturn-" in msg or "Coturn Version" in msg)
        if up is not None:
            last = self._last_uptime
            if last is not None and up + 2 < last and not self._fresh:
                self._restart(source, offset, saw_start=up <= 2)
            self._last_uptime = up
        if is_banner and not self._fresh:
            self._restart(source, offset)
        elif is_banner:
            self._saw_start = True

        if event_id is None:
            base = self._id_base.get(source)
            if base is None:
                if len(self._id_base) > 64:
                    self._id_base.clear()
                base = self._id_base[source] = hashlib.sha256(f"{self.server_id}\x1f{source}\x1f".encode())
            h = base.copy()
            h.update(b"%d\x1f" % offset)
            event_id = h.hexdigest()[:32]  # == stable_id(server_id, source, offset), without its loop
        f = _TEMPLATE.copy()
        f["event_id"] = event_id
        f["server_id"] = self.server_id
        f["region"] = self.region
        f["process_key"] = self.process_key
        f["at"] = at
        f["level"] = level
        f["uptime_s"] = up
        f["raw"] = line
        if is_banner:
            f["kind"] = "process_start"
            return f
        if msg.startswith("session ") and msg[26:28] == ": ":
            sid = msg[8:26]
            self._fresh = False
            f["session_id"] = sid
            self._session_line(sid, msg[28:], f)
        else:
            self._plain_line(msg, f)
        user = f.pop("user_name", None)
        if user is not None:
            f["user_hash"] = self.hasher(user)
            if user:
                plain, hashed = self.hasher.bracketed(user)
                raw = line.replace(plain, hashed)
                if f["kind"] == "auth_error":
                    raw = raw.replace(f"user {user} cred", f"user {hashed} cred")
                f["raw"] = raw
        elif f["kind"] == "other" and "user" in line:
            f["raw"] = redact_users(line, self.hasher)
            if f.get("reason"):
                f["reason"] = redact_users(f["reason"], self.hasher)
        return f

    def _session_line(self, sid: str, rest: str, f: dict[str, Any]) -> None:
        st = self._session_transport
        c = rest[:1]
        if (c == "r" or c == "o" or c == "u") and "incoming packet " in rest:
            m = _REQUEST.match(rest)
            if m:
                _origin, realm, user, method, code, reason = m.groups()
                f["realm"] = realm
                f["user_name"] = user
                f["user_present"] = bool(user)
                if code is None:
                    f["kind"] = "request"
                    f["method"] = method
                    f["success"] = True
                    if self._pending_fail:
                        self._pending_fail.pop(sid, None)
                else:
                    ec = int(code)
                    f.update(success=False, error_code=ec, reason=reason)
                    if method == "message":
                        prev = self._pending_fail.pop(sid, None)
                        if prev is not None and prev[0] == ec:
                            f.update(kind="request_message", method=prev[1])
                        else:
                            f["kind"] = "request"
                    else:
                        f.update(kind="request", method=method)
                        self._pending_fail[sid] = (ec, method)
                        _trim(self._pending_fail)
                t = st.get(sid)
                if t is not None:
                    f["transport"] = t
                return
        elif c == "n" or (c == "r" and rest.startswith("refreshed, ")):
            m = _ALLOC.match(rest)
            if m:
                action, realm, user, lifetime, _cipher, method = m.groups()
                f["kind"] = "allocation"
                f["reason"] = action
                f["realm"] = realm
                f["user_name"] = user
                f["lifetime_s"] = int(lifetime)
                if method:
                    tt: Transport = "dtls" if "DTLS" in method else "tls"
                    st[sid] = tt
                    _trim(st)
                    f["transport"] = tt
                elif sid in st:
                    f["transport"] = st[sid]
                if action == "new" and self._pending_relay is not None:
                    f["relay_address"] = self._pending_relay
                    self._pending_relay = None
                return
        elif c == "u" or (c == "p" and rest.startswith("peer usage: ")):
            peer = c == "p"
            m = _USAGE.search(rest, 5 if peer else 0)
            if m and (rest.startswith("usage: ") or peer):
                realm, user, rp, rb, sp, sb = m.groups()
                f["kind"] = "peer_usage" if peer else "usage"
                f["realm"] = realm
                f["user_name"] = user
                f["rx_packets"] = int(rp)
                f["rx_bytes"] = int(rb)
                f["tx_packets"] = int(sp)
                f["tx_bytes"] = int(sb)
                t = st.get(sid)
                if t is not None:
                    f["transport"] = t
                return
        if c == "p" and rest.startswith("peer "):
            m = _PEER_LIFETIME.match(rest)
            if m:
                peer_addr, lifetime = m.group(1), int(m.group(2))
                # coturn prints 300 s for permissions, 600 s for channel binds (the defaults)
                f.update(
                    kind="channel_bind" if lifetime > 300 else "permission",
                    peer_address=peer_addr,
                    lifetime_s=lifetime,
                )
                return
            if rest.endswith(" deleted"):
                f.update(kind="permission", peer_address=rest[5:-8], lifetime_s=0, reason="deleted")
                return
        elif c == "c":
            if rest.startswith("closed ("):
                m = _CLOSED.match(rest)
                if m:
                    user, realm, _origin, local, remote, reason = m.groups()
                    by_session = st.pop(sid, None)
                    by_remote = self._remote_transport.pop(remote, None)
                    t = _transport_of_reason(reason) or by_session or by_remote
                    self._pending_fail.pop(sid, None)
                    if t is None and self._saw_start and reason.startswith(_NEUTRAL_CLOSE):
                        t = "udp"
                    f.update(
                        kind="closed",
                        user_name=user,
                        realm=realm,
                        listener_address=local,
                        client_address=remote,
                        reason=reason,
                        transport=t,
                    )
                    return
            elif rest.startswith("check_stun_auth: "):
                self._auth(rest, f)
                return
        elif c == "d" and rest.startswith("delete: "):
            m = _DELETE.match(rest)
            if m:
                f.update(kind="allocation", reason="delete", realm=m.group(1), user_name=m.group(2))
                return
        elif c == "A" and rest.startswith("A peer IP "):
            self._denied(rest, f)
            return
        if " socket " in rest:
            m = _SOCKET.match(rest)
            if m:
                sock_t = _SOCKET_TRANSPORT.get(m.group(1))
                if sock_t is not None:
                    st.setdefault(sid, sock_t)
                f.update(kind="connection", reason=f"socket {m.group(2)}", transport=sock_t)
                if m.group(4):
                    f["client_address"] = m.group(4)
                if m.group(3):
                    f["reason"] = f"socket {m.group(2)}: {m.group(3).strip()}"
                return
        if rest.endswith(")") and " (local " in rest:
            m = _SOCKET_EVENT.match(rest)
            if m:
                f.update(
                    kind="connection",
                    reason=m.group(1),
                    listener_address=m.group(2),
                    client_address=m.group(3),
                    transport=st.get(sid),
                )
                return
        f.update(kind="other", reason=rest[:200])

    def _auth(self, rest: str, f: dict[str, Any]) -> None:
        m = _AUTH_UNKNOWN.match(rest)
        if m:
            f.update(kind="auth_error", reason="Cannot find credentials", user_name=m.group(1), user_present=True)
            return
        m = _AUTH_WRONG.match(rest)
        if m:
            f.update(kind="auth_error", reason="credentials are incorrect", user_name=m.group(1), user_present=True)
            return
        f.update(kind="auth_error", reason=rest[17:200])

    def _denied(self, rest: str, f: dict[str, Any]) -> None:
        m = _DENIED.match(rest)
        if m:
            detail = m.group(2).strip().lstrip(":").strip()
            f.update(kind="denied_peer", peer_address=m.group(1), reason=detail or "denied")
        else:
            f.update(kind="denied_peer", reason=rest[:200])

    def _plain_line(self, msg: str, f: dict[str, Any]) -> None:
        c = msg[:1]
        if c == "I" and msg.startswith("IPv"):
            m = _RELAY.match(msg)
            if m:
                f.update(kind="relay_address", relay_address=m.group(2))
                if m.group(1):
                    f["reason"] = "reserved"
                else:
                    self._pending_relay = m.group(2)
                return
            m = _TCP_ACCEPT.match(msg)
            if m:
                remote = m.group(1)
                self._remote_transport[remote] = "tcp"
                _trim(self._remote_transport)
                f.update(kind="connection", reason="tcp or tls connected", client_address=remote)
                return
        elif c == "c" and msg.startswith("check_stun_auth: "):
            self._auth(msg, f)
            return
        elif c == "A" and msg.startswith("A peer IP "):
            self._denied(msg, f)
            return
        elif c == "h" and msg.startswith("handle_udp_packet: "):
            m = _UDP_ENDPOINT.search(msg)
            if m:
                self._remote_transport[m.group(2)] = "udp"
                _trim(self._remote_transport)
                f.update(
                    kind="connection",
                    reason="new udp endpoint",
                    listener_address=m.group(1),
                    client_address=m.group(2),
                    transport="udp",
                )
                return
        elif "DTLS" in msg:
            m = _DTLS_ACCEPT.search(msg)
            if m:
                self._remote_transport[m.group(1)] = "dtls"
                f.update(kind="connection", reason="dtls accepted", client_address=m.group(1), transport="dtls")
                return
        f.update(kind="other", reason=msg[:200] or None)
