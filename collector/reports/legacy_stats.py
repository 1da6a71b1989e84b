"""Chrome's legacy (pre-standard, callback-based) getStats reports as standard-shaped objects.

Chrome answered ``getStats(callback)`` with libjingle's ``StatsReport``s until M117 removed it;
rtcstats dumps (jitsi's v1 and the ``chrome_legacy`` clients), webrtc-internals dumps of Chrome
that showed the legacy API, and apps that polled it hold them. Field names and meanings are the
ones of WebRTC's ``pc/stats_collector.cc`` and ``api/stats_types.cc``; every value is a string
(``"48"``, ``"true"``), older dumps sometimes a number.

=================== ======================================= =====================================
legacy report       legacy field                            standard field it becomes
=================== ======================================= =====================================
googCandidatePair   googActiveConnection ("true")           ``selected: true`` (the ICE agent's
                                                            best connection)
                    localCandidateId / remoteCandidateId    the same (``Cand-<id>``)
                    googRtt (ms)                            currentRoundTripTime (s)
                    bytesSent, bytesReceived, packetsSent   the same (cumulative)
                    (no packets received)                   packetsReceived of the active pair: the
                                                            sum of the component's ssrc reports
                    googLocalAddress, googLocalCandidateType a candidate when the pair names none
                    (``local``/``stun``/``prflx``/``relay``)  (Chrome before the ids existed)
googComponent       (id ``Channel-<transport>-<component>``) ``transport``
                    the active pair whose googChannelId is  selectedCandidatePairId
                    this component, else its own
                    selectedCandidatePairId
                    dtlsCipher / srtpCipher                 dtlsState ``connected``: libwebrtc adds
                                                            them only once the DTLS handshake has
                                                            negotiated a cipher suite
localcandidate,     candidateType (host, serverreflexive,   local-candidate / remote-candidate
remotecandidate     peerreflexive, relayed), ipAddress,     (candidateType, address, port,
                    portNumber, transport, priority,        protocol, priority, networkType)
                    networkType
ssrc (``_recv``)    packetsLost, packetsReceived,           inbound-rtp; jitter in seconds
                    bytesReceived, googJitterReceived (ms),
                    mediaType
ssrc (``_send``)    googRtt (ms, RTCP)                      remote-inbound-rtp roundTripTime (s)
=================== ======================================= =====================================

A legacy relay candidate carries neither the TURN URL nor ``relayProtocol``, and its
``transport`` is the relayed (peer-side) protocol, which libwebrtc's TurnPort always sets to UDP:
the relay protocol comes from the priority's type preference (``collector/ice_url.py``).
Everything else (VideoBwe, googTrack, googCertificate, googLibjingleSession, ...) is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from collector.reports._values import count, num, text

StatsObject = dict[str, Any]

# Report types of the legacy API (``StatsReport::TypeToString``).
LEGACY_TYPES = frozenset(
    {
        "googCandidatePair",
        "googComponent",
        "googCertificate",
        "googLibjingleSession",
        "googTrack",
        "localcandidate",
        "remotecandidate",
        "ssrc",
        "remoteSsrc",
        "VideoBwe",
        "datachannel",
    }
)
# cricket port types in googLocalCandidateType / googRemoteCandidateType.
_PORT_TYPES = {"local": "host", "host": "host", "stun": "srflx", "srflx": "srflx", "prflx": "prflx", "relay": "relay"}
_MAX_NUMBER_TEXT = 32  # "-9223372036854775808" fits; longer text is not a stats number


def is_legacy_type(value: object) -> bool:
    return isinstance(value, str) and (value in LEGACY_TYPES or value.startswith("goog"))


def number(value: object) -> float | None:
    """A legacy stats number: a JSON number or a short decimal string, finite, else None."""
    if value is None:
        return None  # most fields of most reports are absent
    f = num(value)
    if f is not None or not isinstance(value, str) or len(value) > _MAX_NUMBER_TEXT:
        return f
    try:
        parsed = float(value)
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None


def counter(value: object) -> int | None:
    """A non-negative integral counter from a number or a decimal string."""
    f = number(value)
    return count(f) if f is not None else None


def flag(value: object) -> bool:
    return value is True or value == "true"


def _seconds(ms: object) -> float | None:
    f = number(ms)
    return f / 1000.0 if f is not None and f >= 0 else None


def _split_address(value: object) -> tuple[str | None, int | None]:
    """``1.2.3.4:5000`` or ``[2001:db8::1]:5000`` (rtc::SocketAddress::ToString) -> (ip, port)."""
    s = text(value)
    if not s or len(s) > 300:
        return None, None
    host, sep, port = s.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or len(port) > 5:
        return s, None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    p = int(port)
    return host, p if p <= 65535 else None


def _candidate(report: Mapping[str, Any], remote: bool) -> StatsObject:
    return {
        "type": "remote-candidate" if remote else "local-candidate",
        "candidateType": report.get("candidateType"),
        "address": text(report.get("ipAddress")),
        "port": counter(report.get("portNumber")),
        "protocol": text(report.get("transport")),
        "priority": counter(report.get("priority")),
        "networkType": text(report.get("networkType")),
    }


def _pair_candidate(pair: Mapping[str, Any], side: str) -> StatsObject | None:
    """A candidate from the pair's own googLocal*/googRemote* fields (no candidate ids)."""
    ctype = _PORT_TYPES.get(text(pair.get(f"goog{side}CandidateType")) or "")
    if ctype is None:
        return None
    address, port = _split_address(pair.get(f"goog{side}Address"))
    return {
        "type": "remote-candidate" if side == "Remote" else "local-candidate",
        "candidateType": ctype,
        "address": address,
        "port": port,
        "protocol": text(pair.get("googTransportType")),
    }


def _pair(
    pair_id: str, report: Mapping[str, Any], received: Mapping[str, int], out: dict[str, StatsObject]
) -> StatsObject:
    local, remote = text(report.get("localCandidateId")), text(report.get("remoteCandidateId"))
    if not local or not remote:
        made_local, made_remote = _pair_candidate(report, "Local"), _pair_candidate(report, "Remote")
        if made_local is not None and made_remote is not None:
            local, remote = f"{pair_id}-local", f"{pair_id}-remote"
            out.setdefault(local, made_local)
            out.setdefault(remote, made_remote)
    active = flag(report.get("googActiveConnection"))
    packets_received = counter(report.get("packetsReceived"))
    if packets_received is None and active:
        channel = text(report.get("googChannelId")) or ""
        only = next(iter(received.values())) if len(received) == 1 else None
        packets_received = received.get(channel, only)
    return {
        "type": "candidate-pair",
        "localCandidateId": local,
        "remoteCandidateId": remote,
        "selected": active,
        "currentRoundTripTime": _seconds(report.get("googRtt")),
        "bytesSent": counter(report.get("bytesSent")),
        "bytesReceived": counter(report.get("bytesReceived")),
        "packetsSent": counter(report.get("packetsSent")),
        "packetsReceived": packets_received,
    }


def _component(comp_id: str, report: Mapping[str, Any], active: Mapping[str, str]) -> StatsObject:
    selected = active.get(comp_id) or text(report.get("selectedCandidatePairId")) or active.get("")
    ciphers = text(report.get("dtlsCipher")) or text(report.get("srtpCipher"))
    return {
        "type": "transport",
        "selectedCandidatePairId": selected,
        "dtlsState": "connected" if ciphers else None,
        "dtlsCipher": text(report.get("dtlsCipher")),
        "srtpCipher": text(report.get("srtpCipher")),
    }


def _ssrc(sid: str, report: Mapping[str, Any]) -> StatsObject | None:
    kind = text(report.get("mediaType"))
    receiving = sid.endswith("_recv") or (not sid.endswith("_send") and "packetsReceived" in report)
    if receiving:
        jitter_ms = number(report.get("googJitterReceived"))
        return {
            "type": "inbound-rtp",
            "kind": kind,
            "packetsLost": counter(report.get("packetsLost")),
            "packetsReceived": counter(report.get("packetsReceived")),
            "bytesReceived": counter(report.get("bytesReceived")),
            "jitter": jitter_ms / 1000.0 if jitter_ms is not None and jitter_ms >= 0 else None,
        }
    rtt = _seconds(report.get("googRtt"))
    if rtt is None:
        return None
    return {"type": "remote-inbound-rtp", "kind": kind, "roundTripTime": rtt}


def to_standard(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, StatsObject]:
    """One legacy getStats result as the standard objects icewatch reads (see the module doc)."""
    out: dict[str, StatsObject] = {}
    active: dict[str, str] = {}  # component id -> its active pair
    received: dict[str, int] = {}  # component id -> packets received by its ssrc reports
    for sid, report in stats.items():
        typ = report.get("type")
        if typ == "googCandidatePair" and flag(report.get("googActiveConnection")):
            active.setdefault(text(report.get("googChannelId")) or "", sid)
        elif typ == "ssrc" and (packets := counter(report.get("packetsReceived"))) is not None:
            channel = text(report.get("transportId")) or ""
            received[channel] = received.get(channel, 0) + packets
    for sid, report in stats.items():
        typ = report.get("type")
        converted: StatsObject | None = None
        if typ == "googCandidatePair":
            converted = _pair(sid, report, received, out)
        elif typ == "googComponent":
            converted = _component(sid, report, active)
        elif typ in ("localcandidate", "remotecandidate"):
            converted = _candidate(report, typ == "remotecandidate")
        elif typ == "ssrc":
            converted = _ssrc(sid, report)
        if converted is not None:
            out[sid] = {k: v for k, v in converted.items() if v is not None}
    return out
