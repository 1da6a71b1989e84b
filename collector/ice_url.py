"""ICE server URLs (RFC 7064 ``stun:``/``stuns:``, RFC 7065 ``turn:``/``turns:``): the one parser,
and what a relay candidate's URL, ``relayProtocol`` or priority say about its transport.

Relay protocol inference order (the same for every input format):


1. the candidate's ``relayProtocol`` (Chromium and Firefox report it; Safari does not);
2. the TURN URL the candidate came from: ``turns:`` is TLS, ``turn:...?transport=tcp`` is TCP,
   a plain ``turn:`` URL is UDP;
3. libwebrtc's type preference ``priority >> 24`` of a relay candidate: 0 TLS, 1 TCP, 2 UDP.

The step that answered is recorded as ``relay_protocol_source``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

IceScheme = Literal["stun", "stuns", "turn", "turns"]
_DEFAULT_PORT: dict[str, int] = {"stun": 3478, "turn": 3478, "stuns": 5349, "turns": 5349}
_DEFAULT_TRANSPORT: dict[str, str] = {"stun": "udp", "turn": "udp", "stuns": "tcp", "turns": "tcp"}


@dataclass(frozen=True)
class IceUrl:
    """A parsed ``stun:``/``stuns:``/``turn:``/``turns:`` URL (RFC 7064, RFC 7065)."""

    scheme: IceScheme
    host: str  # lower case, IPv6 without brackets
    port: int | None
    transport: str | None  # the explicit ?transport= value, lower case

    @property
    def is_turn(self) -> bool:
        return self.scheme in ("turn", "turns")

    @property
    def is_stun(self) -> bool:
        return self.scheme in ("stun", "stuns")

    def key(self) -> tuple[str, str, int, str]:
        """Normalized identity: defaults for port and transport filled in."""
        return (
            self.scheme,
            self.host,
            self.port if self.port is not None else _DEFAULT_PORT[self.scheme],
            self.transport or _DEFAULT_TRANSPORT[self.scheme],
        )


def parse_ice_url(url: str | None) -> IceUrl | None:
    """Parse an ICE server URL; None when it is not one (tolerates ``//`` after the scheme)."""
    if not url:
        return None
    scheme, sep, rest = url.strip().partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORT:
        return None
    rest, _, query = rest.partition("?")
    rest = rest.removeprefix("//").rstrip("/")
    if "@" in rest:  # user info is not part of the grammar, but drop it if someone wrote it
        rest = rest.rsplit("@", 1)[1]
    port: int | None = None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:  # a bare IPv6 address or a plain host
        host, port_text = rest, ""
    if port_text:
        if not port_text.isdigit():
            return None
        port = int(port_text)
    if not host:
        return None
    transport = None
    values = parse_qs(query).get("transport")
    if values:
        transport = values[0].lower()
    return IceUrl(scheme=scheme, host=host.lower(), port=port, transport=transport)  # type: ignore[arg-type]


RelayProtocol = Literal["udp", "tcp", "tls"]
RelaySource = Literal["relayProtocol", "url", "priority"]

_BY_NAME: dict[str, RelayProtocol] = {"udp": "udp", "tcp": "tcp", "tls": "tls"}
# Chromium 156 gives a UDP relay candidate type preference 3 (priority 58662911), older
# libwebrtc 2: both mean UDP.
_BY_TYPE_PREFERENCE: dict[int, RelayProtocol] = {0: "tls", 1: "tcp", 2: "udp", 3: "udp"}


def protocol_from_turn_url(url: object) -> RelayProtocol | None:
    """The client-to-server transport a TURN URL implies, or None for non-TURN URLs."""
    parsed = parse_ice_url(url) if isinstance(url, str) else None
    if parsed is None or not parsed.is_turn:
        return None
    if parsed.scheme == "turns":
        return "tls"
    return _BY_NAME.get(parsed.transport or "udp", "udp")


def infer_relay_protocol(
    relay_protocol: object, url: object, priority: object
) -> tuple[RelayProtocol | None, RelaySource | None]:
    """Apply the inference order; (None, None) when no step knows."""
    if isinstance(relay_protocol, str):
        named = _BY_NAME.get(relay_protocol.strip().lower())
        if named is not None:
            return named, "relayProtocol"
    from_url = protocol_from_turn_url(url)
    if from_url is not None:
        return from_url, "url"
    prio = _integer(priority)
    if prio is not None and 0 <= prio < 2**32:
        by_pref = _BY_TYPE_PREFERENCE.get(prio >> 24)
        if by_pref is not None:
            return by_pref, "priority"
    return None, None


def _integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None
