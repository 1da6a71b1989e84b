"""A planned call as the SDK would upload it: a W3C snapshot series (docs/formats/w3c.md) or a Telnyx
JS SDK call report segment. One snapshot/interval per second of the call; counters cumulative, as
browsers report them; the RTT and jitter of each second vary around the plan's."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from collector.simulator.plan import QUOTA_REASONS, CallPlan

REMOTE_ADDRESS = "192.0.2.44"
SDK_NAME = "icewatch-simulated"
_LOCAL_TYPE = {"host": "host", "srflx": "srflx", "prflx": "prflx", "relay-udp": "relay", "relay-tcp": "relay",
               "relay-tls": "relay"}
_RELAY_PROTOCOL = {"relay-udp": "udp", "relay-tcp": "tcp", "relay-tls": "tls"}
# errorText of an icecandidateerror: the server's reason phrase, or Chromium's text for 701
_ERROR_TEXT = {401: "Unauthorized", **QUOTA_REASONS}
_TYPE_PREFERENCE = {"host": 126, "prflx": 110, "srflx": 100, "relay-udp": 2, "relay-tcp": 1, "relay-tls": 0}


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_candidate(plan: CallPlan) -> dict[str, Any] | None:
    """The candidate the call connects through (None for a failed call)."""
    if plan.path == "failed":
        return None
    c: dict[str, Any] = {"id": "L1", "candidateType": _LOCAL_TYPE[plan.path], "protocol": "udp",
                         "priority": (_TYPE_PREFERENCE[plan.path] << 24) + 65_535 * 256 + 255}
    if plan.path == "host":
        c.update(address=plan.client_ip, port=plan.client_port)
    elif plan.path in ("srflx", "prflx"):
        c.update(address=plan.client_ip, port=plan.client_port, relatedAddress="10.20.0.7", relatedPort=50000)
        if plan.path == "srflx":
            c["url"] = next((u for u in plan.urls if u.startswith("stun:")), None)
    else:
        c.update(address=plan.relay_address, port=plan.relay_port, relayProtocol=_RELAY_PROTOCOL[plan.path],
                 url=plan.relay_url, relatedAddress=plan.client_ip, relatedPort=plan.client_port)
    return c


def _seconds(plan: CallPlan) -> list[tuple[datetime, float, float]]:
    """(end of each second, RTT ms, jitter ms) of the call's media."""
    rng = random.Random(plan.call_id)
    return [(plan.start + timedelta(seconds=i + 1), max(1.0, plan.rtt_ms * rng.lognormvariate(0, 0.08)),
             max(0.1, plan.jitter_ms * rng.lognormvariate(0, 0.2))) for i in range(plan.seconds)]


def _media(plan: CallPlan) -> bool:
    return plan.path != "failed" and not plan.dtls_stall


def w3c_report(plan: CallPlan) -> dict[str, Any]:
    t0 = plan.start
    events: list[dict[str, Any]] = [{"at": _ms(t0) + 5, "type": "icegatheringstatechange", "state": "gathering"}]
    local = local_candidate(plan)
    if local is not None and plan.path != "prflx":
        events.append({"at": _ms(t0) + 40, "type": "icecandidate", "candidate": dict(local)})
    for i, (url, code) in enumerate(plan.errors):
        events.append({"at": _ms(t0) + 60 + i, "type": "icecandidateerror", "url": url, "errorCode": code,
                       "errorText": _ERROR_TEXT.get(code, "STUN host lookup received error."),
                       "address": "10.20.0.7", "port": 50000})
    events.append({"at": _ms(t0) + 120, "type": "icegatheringstatechange", "state": "complete"})
    events.append({"at": _ms(t0) + 150, "type": "iceconnectionstatechange", "state": "checking"})
    if plan.path == "failed":
        events.append({"at": _ms(t0) + 10_150, "type": "iceconnectionstatechange", "state": "failed"})
    else:
        events.append({"at": _ms(t0) + 310, "type": "iceconnectionstatechange", "state": "connected"})
        events.append({"at": _ms(t0) + 330, "type": "dtlsstatechange", "state": "connecting"})
        if not plan.dtls_stall:
            events.append({"at": _ms(t0) + 420, "type": "dtlsstatechange", "state": "connected"})
            events.append({"at": _ms(t0) + 421, "type": "connectionstatechange", "state": "connected"})

    rng = random.Random(plan.call_id + "/loss")
    snapshots = []
    sent = received = lost = 0
    for end, rtt, jitter in _seconds(plan):
        ts = _ms(end)
        ice_state = "failed" if plan.path == "failed" and ts > _ms(t0) + 10_150 else (
            "checking" if plan.path == "failed" else "connected")
        stats: list[dict[str, Any]] = [{"id": "T01", "type": "transport", "timestamp": ts, "iceState": ice_state,
                                        "dtlsState": "connected" if _media(plan) else "connecting"}]
        if local is not None:
            stats[0]["selectedCandidatePairId"] = "CP1"
            stats.append({**local, "type": "local-candidate", "timestamp": ts})
            stats.append({"id": "R1", "type": "remote-candidate", "candidateType": "srflx", "protocol": "udp",
                          "address": REMOTE_ADDRESS, "port": 40000, "timestamp": ts})
            pair: dict[str, Any] = {"id": "CP1", "type": "candidate-pair", "timestamp": ts, "localCandidateId": "L1",
                                    "remoteCandidateId": "R1", "state": "succeeded", "nominated": True}
            if _media(plan):
                sent += 50
                step_lost = 1 if rng.random() * 100 < plan.loss_pct else 0
                lost += step_lost
                received += 50 - step_lost
                pair.update(currentRoundTripTime=round(rtt / 1000, 4), packetsSent=sent, packetsReceived=received,
                            bytesSent=sent * 160, bytesReceived=received * 160)
                stats.append({"id": "IA", "type": "inbound-rtp", "kind": "audio", "timestamp": ts,
                              "jitter": round(jitter / 1000, 5), "packetsReceived": received, "packetsLost": lost,
                              "bytesReceived": received * 160})
            stats.append(pair)
        snapshots.append({"timestamp": ts, "stats": stats})
    return {
        "format": "w3c", "call_id": plan.call_id, "sdk": {"name": SDK_NAME, "version": plan.sdk_version},
        "browser": plan.browser, "ice_servers": [{"urls": list(plan.urls)}], "ice_transport_policy": "all",
        "events": events, "snapshots": snapshots,
    }


def telnyx_segment(plan: CallPlan) -> dict[str, Any]:
    local = local_candidate(plan)
    stats = []
    sent = received = lost = 0
    rng = random.Random(plan.call_id + "/loss")
    for end, rtt, jitter in _seconds(plan):
        start = end - timedelta(seconds=1)
        ice_state = "connected" if plan.path != "failed" else (
            "failed" if end > plan.start + timedelta(seconds=10) else "checking")
        iv: dict[str, Any] = {
            "intervalStartUtc": _iso(start), "intervalEndUtc": _iso(end),
            "transport": {"iceState": ice_state, "dtlsState": "connected" if _media(plan) else "connecting"},
        }
        if local is not None:
            remote = {"candidateType": "srflx", "protocol": "udp", "address": REMOTE_ADDRESS, "port": 40000}
            iv["ice"] = {"id": "CP1", "localCandidateId": "L1", "remoteCandidateId": "R1",
                         "local": {k: v for k, v in local.items() if k != "id"}, "remote": remote}
        if _media(plan):
            sent += 50
            step_lost = 1 if rng.random() * 100 < plan.loss_pct else 0
            lost += step_lost
            received += 50 - step_lost
            iv["audio"] = {"inbound": {"packetsReceived": received, "packetsLost": lost,
                                       "jitterAvg": round(jitter, 2)},
                           "outbound": {"packetsSent": sent}}
            iv["connection"] = {"roundTripTimeAvg": round(rtt / 1000, 4), "packetsSent": sent,
                                "packetsReceived": received, "bytesSent": sent * 160, "bytesReceived": received * 160}
        stats.append(iv)
    return {
        "summary": {
            "callId": plan.call_id, "sdkVersion": plan.sdk_version, "direction": "OUTGOING",
            "startTimestamp": _iso(plan.start), "endTimestamp": _iso(plan.start + timedelta(seconds=plan.seconds)),
            "clientSummary": {"media": {"iceServers": [{"urls": list(plan.urls)}]}},
        },
        "stats": stats,
    }
