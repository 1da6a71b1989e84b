"""The Kafka event contract: every topic's payload, inside one versioned envelope.

Wire format: JSON (UTF-8). Keys: call id for call reports, "server_id/session_key" for TURN
events, server id for probe results, the original key (or none) for dead letters.
Bump ``SCHEMA_VERSION`` of a payload when a field changes meaning; adding an optional
field keeps the version.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

CandidateType = Literal["host", "srflx", "prflx", "relay"]
Transport = Literal["udp", "tcp", "tls", "dtls"]
RttSource = Literal["candidate-pair", "remote-inbound-rtp"]
SourceFormat = Literal["telnyx", "w3c", "webrtc-internals", "rtcstats"]
FORMATS: tuple[SourceFormat, ...] = get_args(SourceFormat)  # the upload formats icewatch reads
StateKind = Literal["ice", "dtls", "connection", "gathering", "signaling"]


class Model(BaseModel):
    """Base for every payload: unknown fields are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def stable_id(*parts: object) -> str:
    """A deterministic id from parts (used for replay detection): 32 hex chars of sha256."""
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:32]


# --------------------------------------------------------------------------------------------
# Canonical call report (topic: call reports). One message = one call (or one peer connection
# of a dump) or one segment of a call. Everything an SDK may omit is optional.
# --------------------------------------------------------------------------------------------


class Candidate(Model):
    """An ICE candidate, local or remote, as gathered/signalled."""

    id: str
    is_remote: bool
    candidate_type: CandidateType
    protocol: Literal["udp", "tcp"] | None = None
    # Resolved relay protocol for local relay candidates and how it was resolved.
    relay_protocol: Literal["udp", "tcp", "tls"] | None = None
    relay_protocol_source: Literal["relayProtocol", "url", "priority"] | None = None
    url: str | None = None  # STUN/TURN URL the candidate came from (local srflx/relay)
    address: str | None = None  # may be "", an mDNS name or obfuscated
    port: int | None = None
    related_address: str | None = None
    related_port: int | None = None
    priority: int | None = None
    network_type: str | None = None
    gathered_at: datetime | None = None


class CandidateError(Model):
    """An icecandidateerror event: 701 = server unreachable, else the STUN/TURN error."""

    at: datetime | None = None
    url: str | None = None
    error_code: int
    error_text: str | None = None
    address: str | None = None
    port: int | None = None


class StateChange(Model):
    at: datetime
    kind: StateKind
    state: str


class SelectedPair(Model):
    """The selected candidate pair from ``at`` on."""

    at: datetime
    pair_id: str | None = None
    local_candidate_id: str
    remote_candidate_id: str


class Sample(Model):
    """One stats interval. Counters are per-interval deltas (never cumulative)."""

    start: datetime
    end: datetime | None = None
    rtt_ms: float | None = None
    rtt_source: RttSource | None = None
    jitter_ms: float | None = None
    packets_sent: int | None = None
    packets_received: int | None = None
    packets_lost: int | None = None
    bytes_sent: int | None = None
    bytes_received: int | None = None
    ice_state: str | None = None
    dtls_state: str | None = None
    selected_pair_id: str | None = None


class IceServer(Model):
    urls: list[str]


class CallReport(Model):
    """Canonical call report, version 1: what every input format is normalized into."""

    call_id: str
    # Identifies this upload's content for idempotency: same call + segment + first
    # interval start gives the same report_id, so SDK retries converge.
    report_id: str
    segment: int | None = None
    final: bool = True
    source_format: SourceFormat
    peer_connection_id: str | None = None
    sdk_name: str | None = None
    sdk_version: str | None = None
    browser: str | None = None
    user_agent: str | None = None
    client_address: str | None = None  # the upload's source address (full; truncated after geo)
    direction: Literal["inbound", "outbound"] | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ice_servers: list[IceServer] = Field(default_factory=list)
    ice_transport_policy: Literal["all", "relay"] | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    candidate_errors: list[CandidateError] = Field(default_factory=list)
    selected_pairs: list[SelectedPair] = Field(default_factory=list)
    reported_pair_changes: int | None = None
    states: list[StateChange] = Field(default_factory=list)
    samples: list[Sample] = Field(default_factory=list)
    caller_hash: str | None = None  # keyed hash of a phone number/user id, never the number
    callee_hash: str | None = None


# --------------------------------------------------------------------------------------------
# TURN events (topic: TURN events). One message = one parsed log line.
# --------------------------------------------------------------------------------------------

TurnEventKind = Literal[
    "process_start",  # server (re)started: version banner / log file opened
    "request",  # <METHOD> processed, success | error N: reason
    "request_message",  # the repeated "message" line after a failed request
    "allocation",  # allocation new/refreshed/deleted (lifetime)
    "permission",  # peer permission created/updated
    "channel_bind",
    "usage",  # usage: realm, user, rp/rb/sp/sb deltas (client leg)
    "peer_usage",  # peer usage deltas (peer leg)
    "closed",  # session closed (2nd stage), reason, local/remote
    "relay_address",  # relayed address allocated
    "auth_error",  # check_stun_auth ERROR lines
    "denied_peer",  # peer address denied by policy
    "connection",  # tcp/tls connected, socket events
    "other",  # recognised prefix, unmodelled message
]


class TurnEvent(Model):
    event_id: str  # stable: server + source identity + byte offset (or syslog hash)
    server_id: str
    region: str | None = None
    process_key: str  # identifies one server process (start time or log file identity)
    session_id: str | None = None  # coturn's 18-digit id; unique only within process_key
    at: datetime | None = None
    kind: TurnEventKind
    level: str | None = None
    method: str | None = None  # ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND, BINDING ...
    success: bool | None = None
    error_code: int | None = None
    reason: str | None = None
    realm: str | None = None
    user_hash: str | None = None  # keyed hash of the TURN user name; "" for the anonymous challenge
    user_present: bool | None = None  # False for the `user <>` nonce challenge
    client_address: str | None = None
    listener_address: str | None = None
    peer_address: str | None = None
    relay_address: str | None = None
    transport: Transport | None = None
    lifetime_s: int | None = None
    channel: int | None = None
    rx_packets: int | None = None
    rx_bytes: int | None = None
    tx_packets: int | None = None
    tx_bytes: int | None = None
    uptime_s: int | None = None  # seconds since process start (coturn counter prefix), if printed
    raw: str


# --------------------------------------------------------------------------------------------
# Probe results (topic: probes)
# --------------------------------------------------------------------------------------------


class ProbeResult(Model):
    probe_id: str
    server_id: str
    region: str | None = None
    vantage: str  # the collector host that probed
    kind: Literal["stun_binding", "turn_allocate"]
    transport: Literal["udp", "tcp", "tls"]
    target: str  # host:port probed
    at: datetime
    success: bool
    error_code: int | None = None
    error: str | None = None
    latency_ms: float | None = None


# --------------------------------------------------------------------------------------------
# Dead letters (topic: dead letters): the raw input and why it was rejected.
# --------------------------------------------------------------------------------------------


class DeadLetter(Model):
    stage: Literal["collector", "processor", "tailer", "syslog"]
    intended: str  # logical stream: call_report | turn_event | probe_result
    reason: str
    path: str | None = None  # failing field path, when known
    raw: str  # UTF-8 text (bytes decoded with errors="replace"), truncated to the topic limit
    raw_truncated: bool = False
    received_at: datetime = Field(default_factory=utcnow)
    origin: str | None = None  # e.g. "topic/partition/offset" or the HTTP client address


Payload = Annotated[CallReport | TurnEvent | ProbeResult | DeadLetter, Field()]

SCHEMAS: dict[str, type[Model]] = {
    "call_report": CallReport,
    "turn_event": TurnEvent,
    "probe_result": ProbeResult,
    "dead_letter": DeadLetter,
}
SCHEMA_VERSION: dict[str, int] = {name: 1 for name in SCHEMAS}


class Envelope(BaseModel):
    """What is on the wire: schema name + version around the payload."""

    model_config = ConfigDict(extra="forbid")

    schema_name: str = Field(alias="schema")
    version: int
    produced_at: datetime
    source_host: str
    tenant: str = "default"
    payload: dict[str, Any]

    def decode(self) -> Model:
        """The typed payload; raises pydantic.ValidationError or KeyError for unknown schemas."""
        return SCHEMAS[self.schema_name].model_validate(self.payload)


def schema_of(payload: Model) -> str:
    for name, cls in SCHEMAS.items():
        if isinstance(payload, cls):
            return name
    raise TypeError(f"not a contract payload: {type(payload).__name__}")


def message_key(payload: Model) -> str | None:
    if isinstance(payload, CallReport):
        return payload.call_id
    if isinstance(payload, TurnEvent):
        return f"{payload.server_id}/{payload.process_key}/{payload.session_id or '-'}"
    if isinstance(payload, ProbeResult):
        return payload.server_id
    return None
