"""ICE candidates from W3C RTCIceCandidateStats-like objects and from SDP ``candidate:`` lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from collector.contract import Candidate, CandidateType
from collector.ice_url import infer_relay_protocol
from collector.reports._values import count, text

# Standard names plus Firefox's older spellings.
_TYPES: dict[str, CandidateType] = {
    "host": "host",
    "srflx": "srflx",
    "prflx": "prflx",
    "relay": "relay",
    "serverreflexive": "srflx",
    "peerreflexive": "prflx",
    "relayed": "relay",
}
_PROTOCOLS: dict[str, Literal["udp", "tcp"]] = {"udp": "udp", "tcp": "tcp"}

# (is_remote, type, protocol, port, priority): identifies one candidate across the stats
# objects and the onicecandidate/addIceCandidate events of the same peer connection.
CandidateKey = tuple[bool, str, str | None, int | None, int | None]


def candidate_type(value: object) -> CandidateType | None:
    return _TYPES.get(value.lower()) if isinstance(value, str) else None


def _port(value: object) -> int | None:
    p = count(value)
    return p if p is not None and p <= 65535 else None


def _priority(value: object) -> int | None:
    p = count(value)
    return p if p is not None and p < 2**32 else None


def make_candidate(
    cid: str,
    is_remote: bool,
    ctype: CandidateType,
    *,
    protocol: object = None,
    relay_protocol: object = None,
    url: object = None,
    address: object = None,
    port: object = None,
    related_address: object = None,
    related_port: object = None,
    priority: object = None,
    network_type: object = None,
    gathered_at: datetime | None = None,
) -> Candidate:
    """Build a Candidate from loosely typed fields (wrong types become None)."""
    proto = _PROTOCOLS.get(protocol.lower()) if isinstance(protocol, str) else None
    prio = _priority(priority)
    url_s = text(url) or None
    relay: Any = None
    source: Any = None
    if ctype == "relay" and not is_remote:
        relay, source = infer_relay_protocol(relay_protocol, url_s, prio)
    return Candidate(
        id=cid,
        is_remote=is_remote,
        candidate_type=ctype,
        protocol=proto,
        relay_protocol=relay,
        relay_protocol_source=source,
        url=url_s,
        address=text(address),
        port=_port(port),
        related_address=text(related_address),
        related_port=_port(related_port),
        priority=prio,
        network_type=text(network_type),
        gathered_at=gathered_at,
    )


def from_stats(
    cid: str, stats: dict[str, Any], is_remote: bool, gathered_at: datetime | None = None
) -> Candidate | None:
    """A candidate from an RTCIceCandidateStats-like object (None if it has no usable type)."""
    ctype = candidate_type(stats.get("candidateType"))
    if ctype is None:
        ctype = candidate_type(stats.get("type")) if "candidateType" not in stats else None
    if ctype is None:
        return None
    address = stats.get("address")
    if not isinstance(address, str):
        address = stats.get("ip")
    return make_candidate(
        cid,
        is_remote,
        ctype,
        protocol=stats.get("protocol"),
        relay_protocol=stats.get("relayProtocol"),
        url=stats.get("url"),
        address=address,
        port=stats.get("port"),
        related_address=stats.get("relatedAddress"),
        related_port=stats.get("relatedPort"),
        priority=stats.get("priority"),
        network_type=stats.get("networkType"),
        gathered_at=gathered_at,
    )


def _digits(s: str) -> int | None:
    return int(s) if s.isascii() and s.isdigit() and len(s) <= 12 else None


def from_sdp(line: str, is_remote: bool, gathered_at: datetime | None = None) -> Candidate | None:
    """A candidate from an SDP ``candidate:`` attribute (RFC 8839), None if it does not parse."""
    s = line.strip()
    if s.startswith("a="):
        s = s[2:]
    if not s.startswith("candidate:"):
        return None
    tokens = s[len("candidate:") :].split()
    if len(tokens) < 8 or tokens[6] != "typ":
        return None
    ctype = candidate_type(tokens[7])
    if ctype is None:
        return None
    foundation, component, protocol, priority, address, port = tokens[:6]
    extras: dict[str, str] = {}
    rest = tokens[8:]
    for i in range(0, len(rest) - 1, 2):
        extras[rest[i]] = rest[i + 1]
    prio = _digits(priority)
    port_n = _digits(port)
    side = "remote" if is_remote else "local"
    cid = f"sdp-{side}-{foundation}-{component}-{protocol.lower()}-{port}-{tokens[7]}"
    return make_candidate(
        cid,
        is_remote,
        ctype,
        protocol=protocol,
        address=address,
        port=port_n,
        related_address=extras.get("raddr"),
        related_port=_digits(extras.get("rport", "")),
        priority=prio,
        gathered_at=gathered_at,
    )


def key_of(c: Candidate) -> CandidateKey:
    return (c.is_remote, c.candidate_type, c.protocol, c.port, c.priority)
