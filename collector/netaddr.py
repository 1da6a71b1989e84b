"""Network address helpers shared by ingest and processors: parse, truncate, public or not."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(addr: str | None) -> IPAddress | None:
    """An IP address from text: tolerates ``[v6]`` brackets and ``%zone``; IPv4-mapped v6 -> v4.

    mDNS names (``*.local``), obfuscated (``x.x.x.x``) and empty values give None.
    """
    if not addr:
        return None
    text = addr.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def truncate_ip(addr: str | None) -> str:
    """The address with host bits cleared: /24 for IPv4, /48 for IPv6; "" when unparseable."""
    ip = parse_ip(addr)
    if ip is None:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


# Ranges that never identify a client's public location. Documentation ranges (RFC 5737,
# RFC 3849) are deliberately absent: they count as public so examples and tests behave like
# real addresses, and they never occur in production traffic.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


def is_public_ip(ip: IPAddress) -> bool:
    return not any(ip.version == net.version and ip in net for net in _NOT_PUBLIC)


def is_public(addr: str | None) -> bool:
    """True for a globally routable unicast address (see ``_NOT_PUBLIC`` for what is excluded)."""
    ip = parse_ip(addr)
    return ip is not None and is_public_ip(ip)
