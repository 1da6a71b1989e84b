"""rtcstats dumps, both generations.

v1 (fippo/rtcstats, jitsi rtcstats-server): NDJSON, one ``[method, pcId, value, timestampMs]``
array per line. ``getstats`` values are delta-compressed: an object carries only the properties
that changed, the newest report timestamp moves to a top-level ``timestamp``, and ids absent
from a delta are gone (jitsi's decompressor deletes them).

v3 (``RTCStatsDump``, rtcstats/rtcstats and Chrome itself): line 1 ``RTCStatsDump``, line 2 a
JSON metadata object, then ``[method, connectionId, value, ...extra, timeDeltaMs]`` with time the
running sum of the deltas. Methods, stats types and property names may be number-compressed;
in getStats deltas an absent id is unchanged and ``null`` removes it; Chrome JSON-encodes state
values.

Both generations may hold Chrome's legacy ``goog*`` reports instead of (or beside) standard ones;
a peer connection with standard stats is read from those, else from the legacy reports
(collector/reports/legacy_stats.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from collector.contract import MAX_PEER_CONNECTIONS, CallReport
from collector.errors import InvalidInput, PayloadTooLarge, UnsupportedFormat
from collector.reports._events import PeerConnectionLog
from collector.reports._values import browser_from_user_agent, epoch_ms, num, text, when
from collector.reports.budget import Budget, check_properties
from collector.reports.context import UploadContext
from collector.reports.stats_series import SeriesMeta, build_report

V3_MAGIC = b"RTCStatsDump"

# v3 compression tables (rtcstats/rtcstats packages/rtcstats-shared/compression.js): only the
# methods icewatch reads; every stats type; every stats property.
_V3_METHODS: dict[object, str] = {
    "g": "getStats",
    1: "getStats",
    10: "addIceCandidate",
    20: "onicecandidate",
    21: "onicecandidateerror",
    23: "onsignalingstatechange",
    24: "oniceconnectionstatechange",
    25: "onconnectionstatechange",
    26: "onicegatheringstatechange",
    36: "close",
    38: "setConfiguration",
    39: "create",
}
_V3_TYPES: dict[object, str] = dict(
    enumerate(
        (
            "inbound-rtp",
            "outbound-rtp",
            "remote-inbound-rtp",
            "remote-outbound-rtp",
            "transport",
            "candidate-pair",
            "local-candidate",
            "remote-candidate",
            "data-channel",
            "peer-connection",
            "certificate",
            "media-source",
            "media-playout",
            "codec",
        ),
        start=1,
    )
)
_V3_PROPERTY_RUNS: tuple[tuple[int, str], ...] = (
    (4, "payloadType transportId mimeType clockRate channels sdpFmtpLine ssrc kind"),
    (12, "codecId"),
    (14, "packetsReceived packetsLost jitter trackIdentifier mid remoteId framesDecoded keyFramesDecoded"),
    (22, "framesDropped frameWidth frameHeight framesPerSecond qpSum totalDecodeTime"),
    (28, "totalInterFrameDelay totalSquaredInterFrameDelay pauseCount totalPausesDuration freezeCount"),
    (33, "totalFreezesDuration lastPacketReceivedTimestamp headerBytesReceived packetsDiscarded"),
    (37, "fecPacketsReceived fecPacketsDiscarded fecBytesReceived fecSsrc bytesReceived nackCount"),
    (43, "firCount pliCount totalProcessingDelay estimatedPlayoutTimestamp jitterBufferDelay"),
    (48, "jitterBufferTargetDelay jitterBufferEmittedCount jitterBufferMinimumDelay"),
    (51, "totalSamplesReceived concealedSamples silentConcealedSamples concealmentEvents"),
    (55, "insertedSamplesForDeceleration removedSamplesForAcceleration audioLevel totalAudioEnergy"),
    (59, "totalSamplesDuration framesReceived decoderImplementation playoutId powerEfficientDecoder"),
    (64, "framesAssembledFromMultiplePackets totalAssemblyTime contentType googTimingFrameInfo"),
    (68, "retransmittedPacketsReceived retransmittedBytesReceived rtxSsrc totalCorruptionProbability"),
    (72, "totalSquaredCorruptionProbability corruptionMeasurements localId roundTripTime"),
    (76, "totalRoundTripTime fractionLost roundTripTimeMeasurements packetsSent bytesSent"),
    (81, "mediaSourceId rid encodingIndex headerBytesSent retransmittedPacketsSent"),
    (86, "retransmittedBytesSent targetBitrate totalEncodedBytesTarget framesSent hugeFramesSent"),
    (91, "framesEncoded keyFramesEncoded totalEncodeTime totalPacketSendDelay qualityLimitationReason"),
    (96, "qualityLimitationDurations qualityLimitationResolutionChanges encoderImplementation"),
    (99, "powerEfficientEncoder active scalabilityMode remoteTimestamp reportsSent echoReturnLoss"),
    (105, "echoReturnLossEnhancement width height frames synthesizedSamplesDuration"),
    (110, "synthesizedSamplesEvents totalPlayoutDelay totalSamplesCount dataChannelsOpened"),
    (114, "dataChannelsClosed label protocol dataChannelIdentifier state messagesSent messagesReceived"),
    (121, "iceRole iceLocalUsernameFragment dtlsState iceState selectedCandidatePairId"),
    (126, "localCertificateId remoteCertificateId tlsVersion dtlsCipher dtlsRole srtpCipher"),
    (132, "selectedCandidatePairChanges rtcpTransportStatsId address port candidateType priority url"),
    (139, "relayProtocol foundation relatedAddress relatedPort usernameFragment tcpType networkType"),
    (148, "localCandidateId remoteCandidateId nominated lastPacketSentTimestamp currentRoundTripTime"),
    (153, "availableOutgoingBitrate availableIncomingBitrate requestsReceived requestsSent"),
    (157, "responsesReceived responsesSent consentRequestsSent packetsDiscardedOnSend"),
    (161, "bytesDiscardedOnSend fingerprint fingerprintAlgorithm base64Certificate issuerCertificateId"),
    (167, "psnrMeasurements psnrSum packetsReceivedWithEct1 packetsReceivedWithCe packetsReportedAsLost"),
    (172, "packetsReportedAsLostButRecovered packetsWithBleachedEct1Marking packetsSentWithEct1"),
    (175, "ccfbMessagesSent ccfbMessagesReceived"),
)
_V3_PROPERTIES: dict[str, str] = {"t": "timestamp"}
for _start, _names in _V3_PROPERTY_RUNS:
    for _offset, _name in enumerate(_names.split()):
        _V3_PROPERTIES[str(_start + _offset)] = _name


def _reports(
    pcs: dict[str, PeerConnectionLog],
    base: str,
    user_agent: str | None,
    ctx: UploadContext,
) -> list[CallReport]:
    if not pcs:
        raise UnsupportedFormat("no peer connections in this dump")
    ua = user_agent or ctx.user_agent
    out = []
    for pc_id, pc in pcs.items():
        meta = SeriesMeta(
            call_id=f"{base}:{pc_id}",
            source_format="rtcstats",
            peer_connection_id=pc_id,
            browser=browser_from_user_agent(ua),
            user_agent=ua,
            client_address=ctx.client_address,
            ice_servers=pc.ice_servers,
            ice_transport_policy=pc.policy,
            started_at=pc.created_at,
            ended_at=pc.closed_at,
        )
        out.append(build_report(meta, pc.stats_series(), pc.events))
    return out


class _Dump:
    """The peer connections of a dump and each one's current (decompressed) stats."""

    def __init__(self, budget: Budget) -> None:
        self.pcs: dict[str, PeerConnectionLog] = {}
        self.current: dict[str, dict[str, dict[str, Any]]] = {}
        self.budget = budget

    def charge(self, pc_key: str, objects: int) -> None:
        """Before a snapshot of ``objects`` objects is built: one sample, and its objects."""
        self._admit(pc_key)
        self.budget.charge_samples(1)
        self.budget.charge_objects(objects)

    def snapshot(self, pc_key: str, at: datetime, stats: dict[str, dict[str, Any]], report_ts: object) -> None:
        """Record decompressed stats; the newest report timestamp, when given, is their time."""
        self._admit(pc_key)
        self.current[pc_key] = stats
        ts = num(report_ts)
        pc = self.pcs.setdefault(pc_key, PeerConnectionLog(budget=self.budget))
        pc.add_snapshot((epoch_ms(ts) if ts else None) or at, stats)

    def event(self, pc_key: str, method: str, at: datetime | None, value: object) -> None:
        """A non-stats line; a peer connection is only listed once an event icewatch uses arrives."""
        pc = self.pcs.get(pc_key) or PeerConnectionLog(budget=self.budget)
        if pc.apply(method, at, value):
            self._admit(pc_key)
            self.pcs.setdefault(pc_key, pc)

    def _admit(self, pc_key: str) -> None:
        if pc_key not in self.pcs and len(self.pcs) >= MAX_PEER_CONNECTIONS:
            raise PayloadTooLarge(f"more than {MAX_PEER_CONNECTIONS} peer connections in one dump")


def _line_item(raw: bytes, n: int) -> list[Any]:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"line is not JSON: {e}", path=f"line[{n}]") from None
    if not isinstance(item, list) or len(item) < 2:
        raise InvalidInput("expected a [method, connection id, value, ...] array", path=f"line[{n}]")
    return item


def _pc_id(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _v1_stats(previous: dict[str, dict[str, Any]], delta: dict[str, Any], n: int) -> dict[str, dict[str, Any]]:
    """jitsi: only changed properties are sent; an id absent from the delta is gone."""
    stats: dict[str, dict[str, Any]] = {}
    for sid, report in delta.items():
        if isinstance(report, dict):
            known = previous.get(sid)
            if known:
                check_properties(len(known) + len(report), f"line[{n}].{sid}")
                stats[sid] = {**known, **report}
            else:
                check_properties(len(report), f"line[{n}].{sid}")
                stats[sid] = report
    return stats


def parse_v1(body: bytes, ctx: UploadContext, base: str, budget: Budget | None = None) -> list[CallReport]:
    dump = _Dump(budget or Budget.for_body(len(body)))
    user_agent: str | None = None
    for n, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        item = _line_item(raw, n)
        method, pc_key = item[0], _pc_id(item[1])
        value = item[2] if len(item) > 2 else None
        at = when(item[3]) if len(item) > 3 else None
        if method == "connectionInfo" and isinstance(value, dict):
            user_agent = text(value.get("userAgent")) or user_agent
            continue
        if not isinstance(method, str) or pc_key is None:
            continue
        if method not in ("getstats", "getStats"):
            dump.event(pc_key, method, at, value)
        elif isinstance(value, dict) and at is not None:
            dump.charge(pc_key, len(value))
            dump.snapshot(pc_key, at, _v1_stats(dump.current.get(pc_key, {}), value, n), value.get("timestamp"))
    return _reports(dump.pcs, base, user_agent, ctx)


def _v3_stats(previous: dict[str, dict[str, Any]], delta: dict[str, Any], n: int) -> dict[str, dict[str, Any]]:
    stats = dict(previous)
    for sid, report in delta.items():
        if report is None:
            stats.pop(sid, None)
            continue
        if not isinstance(report, dict):
            continue
        known = stats.get(sid)
        check_properties(len(report) + (len(known) if known else 0), f"line[{n}].{sid}")
        expanded: dict[str, Any] = {}
        for name, v in report.items():
            prop = _V3_PROPERTIES.get(name) or str(name)
            if prop == "type" and isinstance(v, int):
                v = _V3_TYPES.get(v, v)
            expanded[prop] = v
        stats[sid] = {**known, **expanded} if known else expanded
    return stats


def parse_v3(body: bytes, ctx: UploadContext, base: str, budget: Budget | None = None) -> list[CallReport]:
    lines = body.splitlines()
    if len(lines) < 2:
        raise UnsupportedFormat("no peer connections in this dump")
    try:
        meta = orjson.loads(lines[1])
    except orjson.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise InvalidInput("the second line of an RTCStatsDump must be a JSON object", path="line[2]")
    user_agent = text(meta.get("userAgent"))
    dump = _Dump(budget or Budget.for_body(len(body)))
    clock = 0.0
    for n, raw in enumerate(lines[2:], start=3):
        if not raw.strip():
            continue
        item = _line_item(raw, n)
        step = num(item[-1]) if len(item) >= 4 else None
        if step is not None:
            clock += step
        at: datetime | None = epoch_ms(clock)
        method = _V3_METHODS.get(item[0], item[0]) if isinstance(item[0], str | int) else None
        pc_key = _pc_id(item[1])
        value = item[2] if len(item) > 3 else None
        if not isinstance(method, str) or pc_key is None:
            continue
        if method != "getStats":
            dump.event(pc_key, method, at, value)
        elif isinstance(value, dict) and at is not None:
            previous = dump.current.get(pc_key, {})
            dump.charge(pc_key, len(previous) + len(value))  # an absent id is unchanged: all are copied
            dump.snapshot(pc_key, at, _v3_stats(previous, value, n), value.get("t"))
    return _reports(dump.pcs, base, user_agent, ctx)
