"""Realistic inputs for the benchmarks: a W3C report of N one-second snapshots, and a Telnyx
segment of N one-second intervals (the SDK's 300-interval buffer flush)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

# Reports start two hours before the run (the collector accepts 29 days back at most), on a whole minute.
T0 = (int(time.time()) // 60 - 120) * 60_000


def w3c_report(call_id: str, snapshots: int = 300, seed: int = 0) -> bytes:
    rnd = random.Random(seed)
    base = [
        {"id": "T01", "type": "transport", "selectedCandidatePairId": "CP1", "iceState": "connected",
         "dtlsState": "connected", "selectedCandidatePairChanges": 1},
        {"id": "L1", "type": "local-candidate", "candidateType": "relay", "protocol": "udp", "relayProtocol": "udp",
         "address": "198.51.100.10", "port": 50000, "url": "turn:turn-eu.example.net:3478?transport=udp",
         "priority": 41885439},
        {"id": "L2", "type": "local-candidate", "candidateType": "srflx", "protocol": "udp", "address": "203.0.113.7",
         "port": 61000, "url": "stun:turn-eu.example.net:3478", "priority": 1686052607},
        {"id": "R1", "type": "remote-candidate", "candidateType": "srflx", "protocol": "udp", "address": "192.0.2.44",
         "port": 40000, "priority": 1686052607},
    ]
    snaps = []
    for i in range(snapshots):
        ts = T0 + 1000 * (i + 1)
        stats: list[dict[str, Any]] = [dict(s, timestamp=ts) for s in base]
        stats.append({"id": "CP1", "type": "candidate-pair", "timestamp": ts, "localCandidateId": "L1",
                      "remoteCandidateId": "R1", "state": "succeeded", "nominated": True,
                      "currentRoundTripTime": round(0.03 + rnd.random() * 0.2, 3), "bytesSent": 16000 * (i + 1),
                      "bytesReceived": 15800 * (i + 1), "packetsSent": 50 * (i + 1), "packetsReceived": 49 * (i + 1)})
        stats.append({"id": "IA", "type": "inbound-rtp", "timestamp": ts, "kind": "audio",
                      "jitter": round(rnd.random() * 0.02, 4), "packetsReceived": 49 * (i + 1),
                      "packetsLost": i // 20, "bytesReceived": 15000 * (i + 1)})
        snaps.append({"timestamp": ts, "stats": stats})
    doc = {
        "format": "w3c", "call_id": call_id, "sdk": {"name": "bench", "version": "1.0"}, "browser": "chrome",
        "ice_servers": [{"urls": ["turn:turn-eu.example.net:3478?transport=udp"]}],
        "events": [
            {"at": T0 + 10, "type": "iceconnectionstatechange", "state": "checking"},
            {"at": T0 + 200, "type": "iceconnectionstatechange", "state": "connected"},
            {"at": T0 + 290, "type": "dtlsstatechange", "state": "connected"},
        ],
        "snapshots": snaps,
    }
    return orjson.dumps(doc)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def telnyx_segment(call_id: str, segment: int = 0, intervals: int = 300, seed: int = 0) -> bytes:
    """A Telnyx JS SDK call report segment shaped like 2.27.x output (all blocks present)."""
    rnd = random.Random(seed)
    start = datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(seconds=segment * intervals)
    stats = []
    for i in range(intervals):
        a = start + timedelta(seconds=i)
        n = segment * intervals + i + 1
        stats.append({
            "intervalStartUtc": _iso(a), "intervalEndUtc": _iso(a + timedelta(seconds=1)),
            "audio": {
                "outbound": {"packetsSent": 50 * n, "bytesSent": 8000 * n, "audioLevelAvg": round(rnd.random(), 3),
                             "bitrateAvg": 64000 + rnd.randint(-500, 500), "nackCount": 0,
                             "headerBytesSent": 600 * n, "targetBitrate": 64000, "totalPacketSendDelay": 0.01 * n,
                             "codec": {"mimeType": "audio/opus", "clockRate": 48000, "channels": 2,
                                       "payloadType": 111, "sdpFmtpLine": "minptime=10;useinbandfec=1"}},
                "inbound": {"packetsReceived": 49 * n, "bytesReceived": 7900 * n, "packetsLost": n // 40,
                            "packetsDiscarded": 0, "jitterBufferDelay": 0.05 * n, "jitterBufferEmittedCount": 960 * n,
                            "totalSamplesReceived": 48000 * n, "concealedSamples": 20 * n, "concealmentEvents": n // 10,
                            "audioLevelAvg": round(rnd.random(), 3), "jitterAvg": round(rnd.random() * 15, 2),
                            "bitrateAvg": 63000 + rnd.randint(-500, 500), "nackCount": 0,
                            "headerBytesReceived": 590 * n, "fecPacketsReceived": 0, "fecPacketsDiscarded": 0,
                            "jitterBufferTargetDelay": 0.06 * n, "jitterBufferMinimumDelay": 0.04 * n,
                            "totalSamplesDecoded": 48000 * n},
            },
            "connection": {"roundTripTimeAvg": round(0.03 + rnd.random() * 0.1, 4),
                           "currentRoundTripTime": round(0.03 + rnd.random() * 0.1, 4),
                           "roundTripTimeSource": "candidate-pair.currentRoundTripTime",
                           "packetsSent": 50 * n, "packetsReceived": 49 * n, "bytesSent": 8600 * n,
                           "bytesReceived": 8500 * n},
            "ice": {"id": "CPabc", "localCandidateId": "Labc", "remoteCandidateId": "Rabc", "state": "succeeded",
                    "nominated": True, "writable": True, "currentRoundTripTime": round(0.03 + rnd.random() * 0.1, 4),
                    "local": {"id": "Labc", "address": "198.51.100.10", "port": 50000, "candidateType": "relay",
                              "protocol": "udp", "networkType": "wifi",
                              "url": "turn:turn-eu.example.net:3478?transport=udp", "relayProtocol": "udp"},
                    "remote": {"id": "Rabc", "address": "192.0.2.44", "port": 40000, "candidateType": "host",
                               "protocol": "udp"},
                    "requestsSent": 10 + n // 5, "responsesReceived": 10 + n // 5},
            "transport": {"iceState": "connected", "dtlsState": "connected", "srtpCipher": "AES_CM_128_HMAC_SHA1_80",
                          "tlsVersion": "FEFD", "selectedCandidatePairChanges": 1,
                          "selectedCandidatePairId": "CPabc"},
            "remoteRtcp": {"inbound": {"packetsReceived": 49 * n, "packetsLost": n // 40, "fractionLost": 0.0,
                                       "jitter": round(rnd.random() * 10, 2), "roundTripTime": 0.05,
                                       "totalRoundTripTime": 0.05 * n, "roundTripTimeMeasurements": n,
                                       "roundTripTimeAvg": 0.05},
                           "outbound": {"packetsSent": 49 * n, "bytesSent": 7900 * n, "reportsCount": n}},
        })
    doc = {
        "summary": {"callId": call_id, "direction": "outbound", "state": "active",
                    "durationSeconds": 300 * (segment + 1),
                    "telnyxSessionId": "s-" + call_id, "telnyxLegId": "l-" + call_id, "sdkVersion": "2.27.10",
                    "startTimestamp": _iso(start - timedelta(seconds=segment * intervals)),
                    "callerNumber": "+15550001111", "destinationNumber": "+15550002222"},
        "stats": stats,
        "segment": segment,
        "flushReason": {"type": "buffer-limit"},
    }
    return orjson.dumps(doc)
