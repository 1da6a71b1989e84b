"""Which transport a local relay candidate uses between the client and the TURN server.

Inference order (the same for every input format):

1. the candidate's ``relayProtocol`` (Chromium and Firefox report it; Safari does not);
2. the TURN URL the candidate came from: ``turns:`` is TLS, ``turn:...?transport=tcp`` is TCP,
   a plain ``turn:`` URL is UDP;
3. libwebrtc's type preference ``priority >> 24`` of a relay candidate: 0 TLS, 1 TCP, 2 UDP.

The step that answered is recorded as ``relay_protocol_source``.
"""

from __future__ import annotations

from typing import Literal

from collector.reports._values import integer

RelayProtocol = Literal["udp", "tcp", "tls"]
RelaySource = Literal["relayProtocol", "url", "priority"]

_BY_NAME: dict[str, RelayProtocol] = {"udp": "udp", "tcp": "tcp", "tls": "tls"}
# Chromium 156 gives a UDP relay candidate type preference 3 (priority 58662911), older
# libwebrtc 2: both mean UDP.
_BY_TYPE_PREFERENCE: dict[int, RelayProtocol] = {0: "tls", 1: "tcp", 2: "udp", 3: "udp"}


def protocol_from_turn_url(url: object) -> RelayProtocol | None:
    """The client-to-server transport a TURN URL implies, or None for non-TURN URLs."""
    if not isinstance(url, str):
        return None
    u = url.strip().lower()
    if u.startswith("turns:"):
        return "tls"
    if not u.startswith("turn:"):
        return None
    _, _, query = u.partition("?")
    for param in query.split("&"):
        name, _, value = param.partition("=")
        if name.strip() == "transport":
            return _BY_NAME.get(value.strip(), "udp")
    return "udp"


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
    prio = integer(priority)
    if prio is not None and 0 <= prio < 2**32:
        by_pref = _BY_TYPE_PREFERENCE.get(prio >> 24)
        if by_pref is not None:
            return by_pref, "priority"
    return None, None
