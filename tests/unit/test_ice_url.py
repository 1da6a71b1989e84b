"""Relay protocol inference order: relayProtocol, then the TURN URL, then priority >> 24."""

from __future__ import annotations

import pytest

from collector.ice_url import infer_relay_protocol, protocol_from_turn_url
from collector.reports.candidates import from_sdp, from_stats


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("turns:turn.example.com:443?transport=tcp", "tls"),
        ("turns:turn.example.com", "tls"),
        ("turn:turn.example.com:3478?transport=tcp", "tcp"),
        ("TURN:turn.example.com:3478?transport=TCP", "tcp"),
        ("turn:turn.example.com:3478?transport=udp", "udp"),
        ("turn:turn.example.com:3478", "udp"),
        ("stun:stun.example.com:3478", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_turn_url(url: object, expected: str | None) -> None:
    assert protocol_from_turn_url(url) == expected


@pytest.mark.parametrize(
    ("relay_protocol", "url", "priority", "expected"),
    [
        ("tls", "turn:t:3478", 41885439, ("tls", "relayProtocol")),  # relayProtocol wins
        ("TCP", None, None, ("tcp", "relayProtocol")),
        (None, "turns:t:443?transport=tcp", 41885439, ("tls", "url")),  # Safari: URL before priority
        ("bogus", "turn:t:3478?transport=tcp", None, ("tcp", "url")),
        (None, None, (0 << 24) | 65535, ("tls", "priority")),
        (None, None, (1 << 24) | 65535, ("tcp", "priority")),
        (None, None, (2 << 24) | 65535, ("udp", "priority")),
        (None, "stun:s:3478", 8331263, ("tls", "priority")),
        (None, None, (126 << 24) | 1, (None, None)),  # host type preference: unknown
        (None, None, -1, (None, None)),
        (None, None, 2**40, (None, None)),
        (None, None, True, (None, None)),
        (None, None, None, (None, None)),
    ],
)
def test_inference_order(
    relay_protocol: object, url: object, priority: object, expected: tuple[object, object]
) -> None:
    assert infer_relay_protocol(relay_protocol, url, priority) == expected


def test_only_local_relay_candidates_get_a_relay_protocol() -> None:
    remote = from_stats("r", {"candidateType": "relay", "relayProtocol": "tls"}, is_remote=True)
    host = from_stats("h", {"candidateType": "host", "relayProtocol": "tls"}, is_remote=False)
    assert remote is not None and remote.relay_protocol is None
    assert host is not None and host.relay_protocol is None


def test_firefox_type_names_and_ip_fallback() -> None:
    c = from_stats("x", {"candidateType": "relayed", "ip": "198.51.100.7", "priority": 25108223}, is_remote=False)
    assert c is not None and c.candidate_type == "relay" and c.address == "198.51.100.7"
    assert (c.relay_protocol, c.relay_protocol_source) == ("tcp", "priority")


def test_sdp_candidate_lines() -> None:
    c = from_sdp(
        "a=candidate:842163049 1 udp 1677729535 203.0.113.4 46154 typ srflx raddr 10.0.0.4 rport 46154 generation 0",
        False,
    )
    assert c is not None
    assert (c.candidate_type, c.protocol, c.address, c.port, c.related_address, c.related_port) == (
        "srflx",
        "udp",
        "203.0.113.4",
        46154,
        "10.0.0.4",
        46154,
    )
    assert from_sdp("candidate:1 1 udp 1 a 1 typ weird", False) is None
    assert from_sdp("candidate:1 1 udp x a ² typ host", False) is not None  # odd numbers become None
    assert from_sdp("", False) is None
