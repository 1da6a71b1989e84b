"""The Kafka event contract: every topic's payload, inside one versioned envelope.

Wire format: JSON (UTF-8). Keys: call id for call reports, "server_id/session_key" for single TURN
events, server id for TURN event batches and probe results, the original key (or none) for dead
letters. A new payload schema (``turn_event_batch``) starts at version 1; processors read both
TURN schemas, so they are upgraded before the collectors that send batches.
Bump ``SCHEMA_VERSION`` of a payload when a field changes meaning; adding an optional
field keeps the version.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from collector.auth import check_tenant
from collector.errors import InvalidInput
from collector.redact import redact_secrets

CandidateType = Literal["host", "srflx", "prflx", "relay"]
Transport = Literal["udp", "tcp", "tls", "dtls"]
RttSource = Literal["candidate-pair", "remote-inbound-rtp"]
SourceFormat = Literal["telnyx", "w3c", "webrtc-internals", "rtcstats"]
FORMATS: tuple[SourceFormat, ...] = get_args(SourceFormat)  # the upload formats icewatch reads
StateKind = Literal["ice", "dtls", "connection", "gathering", "signaling"]


# --------------------------------------------------------------------------------------------
# What a canonical report may hold. Every parser builds these models, so the limits are checked
# once, here, whatever the input format; a value outside them is a 422 naming the field.
# --------------------------------------------------------------------------------------------

ERA_START = datetime(2000, 1, 1, tzinfo=UTC)
ERA_END = datetime(2100, 1, 1, tzinfo=UTC)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


# A time: anything pydantic reads as a datetime (ISO text, unix number, datetime), in 2000-2099, naive
# times read as UTC and returned in UTC. Parsed and checked in pydantic-core (Rust); only a naive time
# calls Python (_as_utc). (As an AfterValidator the check cost ~0.45 ms per 300-interval report from JSON.)
# From Python values (the readers, the two-step decode): parse, then check the era, so what does not
# parse keeps pydantic's own error and a time outside the era is one value_error at the field, "time is
# outside 2000-2099" (the parsed time is the error's input). pydantic-core compares a naive time with
# the aware bounds as UTC; tests/unit/test_contract_time.py holds all this to the old Python check.
# From JSON (only wire.decode_call_report's one pass, which drops the errors and falls back to the two
# steps) a zoned time in the era is parsed and checked in one step, which re-checking the parsed
# datetime would double (~0.08 ms per 300-interval report); anything else takes the path above, and a
# refusal carries both errors, "zoned" (the one step's) and "time" (the one above).
_ERA_ERROR = f"time is outside {ERA_START.year}-{ERA_END.year - 1}"
_TIME_FROM_PYTHON = core_schema.chain_schema(
    [
        core_schema.datetime_schema(),
        core_schema.union_schema(
            [
                core_schema.datetime_schema(strict=True, tz_constraint="aware", ge=ERA_START, lt=ERA_END),
                core_schema.chain_schema([
                    core_schema.datetime_schema(strict=True, tz_constraint="naive", ge=ERA_START, lt=ERA_END),
                    core_schema.no_info_plain_validator_function(_as_utc),
                ]),
            ],
            mode="left_to_right",
            custom_error_type="value_error",
            custom_error_context={"error": _ERA_ERROR},
        ),
    ],
)
_ZONED_IN_ERA = core_schema.datetime_schema(tz_constraint="aware", ge=ERA_START, lt=ERA_END)
_TIME_SCHEMA = core_schema.json_or_python_schema(
    json_schema=core_schema.union_schema([(_ZONED_IN_ERA, "zoned"), (_TIME_FROM_PYTHON, "time")], mode="left_to_right"),
    python_schema=_TIME_FROM_PYTHON,
    serialization=core_schema.simple_ser_schema("datetime"),
)


_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
Time = Annotated[datetime, GetPydanticSchema(lambda _source, _handler: _TIME_SCHEMA)]
# Identifiers (call, report, peer connection, candidate ids): 1-256 printable characters, not blank.
_NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
Ident = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=_NOT_BLANK)]
# Label-like values that end up in LowCardinality columns (SDK name/version, browser, states).
Label = Annotated[str, StringConstraints(max_length=128, pattern=_NO_CONTROL)]
# Free text (user agents, URLs, error texts, addresses).
Text = Annotated[str, StringConstraints(max_length=2048)]
UInt16 = Annotated[int, Field(ge=0, le=65_535)]
UInt32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
UInt63 = Annotated[int, Field(ge=0, le=2**63 - 1)]
Millis = Annotated[float, Field(ge=0, le=600_000)]  # RTT and jitter: at most 10 minutes
MAX_CANDIDATES = 2_000
MAX_CANDIDATE_ERRORS = 2_000
MAX_STATES = 10_000
MAX_SELECTED_PAIRS = 2_000
MAX_SAMPLES = 20_000  # a 300-interval Telnyx segment has 300; a 5-hour W3C call at 1 s has 18,000
MAX_ICE_SERVERS = 32
MAX_PEER_CONNECTIONS = 64  # per dump (webrtc-internals, rtcstats): each becomes a call
MAX_NOTES = 200


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

    id: Ident
    is_remote: bool
    candidate_type: CandidateType
    protocol: Literal["udp", "tcp"] | None = None
    # Resolved relay protocol for local relay candidates and how it was resolved.
    relay_protocol: Literal["udp", "tcp", "tls"] | None = None
    relay_protocol_source: Literal["relayProtocol", "url", "priority"] | None = None
    url: Text | None = None  # STUN/TURN URL the candidate came from (local srflx/relay)
    address: Text | None = None  # may be "", an mDNS name or obfuscated
    port: UInt16 | None = None
    related_address: Text | None = None
    related_port: UInt16 | None = None
    priority: UInt32 | None = None
    network_type: Label | None = None
    gathered_at: Time | None = None


class CandidateError(Model):
    """An icecandidateerror event: 701 = server unreachable, else the STUN/TURN error."""

    at: Time | None = None
    url: Text | None = None
    error_code: UInt16
    error_text: Text | None = None
    address: Text | None = None
    port: UInt16 | None = None


class StateChange(Model):
    at: Time
    kind: StateKind
    state: Label


class SelectedPair(Model):
    """The selected candidate pair from ``at`` on."""

    at: Time
    pair_id: Text | None = None
    local_candidate_id: Text
    remote_candidate_id: Text


class Sample(Model):
    """One stats interval. Counters are per-interval deltas (never cumulative)."""

    start: Time
    end: Time | None = None
    rtt_ms: Millis | None = None
    rtt_source: RttSource | None = None
    jitter_ms: Millis | None = None
    packets_sent: UInt32 | None = None
    packets_received: UInt32 | None = None
    packets_lost: Int32 | None = None
    bytes_sent: UInt63 | None = None
    bytes_received: UInt63 | None = None
    ice_state: Label | None = None
    dtls_state: Label | None = None
    selected_pair_id: Text | None = None


class ReportNote(Model):
    """Something the capture says beside the stats: an SDK's own warning (``source="sdk"``, its
    code, e.g. ``"33005"``) or a reader's finding (``source="reader"``, e.g. why a connected peer
    connection has no selected pair). Shown by ``icewatch explain``."""

    source: Literal["sdk", "reader"]
    code: Label
    text: Text
    at: Time | None = None


class IceServer(Model):
    urls: list[Text] = Field(max_length=32)


class CallReport(Model):
    """Canonical call report, version 1: what every input format is normalized into."""

    call_id: Ident
    # Identifies this upload's content for idempotency: same call + segment + first
    # interval start gives the same report_id, so SDK retries converge.
    report_id: Ident
    segment: UInt32 | None = None
    final: bool = True
    source_format: SourceFormat
    peer_connection_id: Ident | None = None
    sdk_name: Label | None = None
    sdk_version: Label | None = None
    browser: Label | None = None
    user_agent: Text | None = None
    client_address: Text | None = None  # the upload's source address (full; truncated after geo)
    direction: Literal["inbound", "outbound"] | None = None
    started_at: Time | None = None
    ended_at: Time | None = None
    ice_servers: list[IceServer] = Field(default_factory=list, max_length=MAX_ICE_SERVERS)
    ice_transport_policy: Literal["all", "relay"] | None = None
    candidates: list[Candidate] = Field(default_factory=list, max_length=MAX_CANDIDATES)
    candidate_errors: list[CandidateError] = Field(default_factory=list, max_length=MAX_CANDIDATE_ERRORS)
    selected_pairs: list[SelectedPair] = Field(default_factory=list, max_length=MAX_SELECTED_PAIRS)
    reported_pair_changes: UInt32 | None = None
    states: list[StateChange] = Field(default_factory=list, max_length=MAX_STATES)
    samples: list[Sample] = Field(default_factory=list, max_length=MAX_SAMPLES)
    notes: list[ReportNote] = Field(default_factory=list, max_length=MAX_NOTES)
    caller_hash: Label | None = None  # keyed hash of a phone number/user id, never the number
    callee_hash: Label | None = None


# --------------------------------------------------------------------------------------------
# TURN events (topic: TURN events). One message = one parsed log line (``turn_event``) or many
# (``turn_event_batch``, what the collector sends; key: the server id).
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


TURN_EVENT_COLUMNS: tuple[str, ...] = tuple(TurnEvent.model_fields)
MAX_TURN_BATCH = 20_000  # events in one turn_event_batch message (the broker's size limit comes first)


class TurnEventBatch(Model):
    """Many TURN events in one message (what the tailer and the syslog receiver send on Kafka).

    On the wire the payload is compact: ``{"columns": [field names], "rows": [[values], ...]}``,
    one row per event, ``null`` for a missing value. Each row is validated as a ``TurnEvent``;
    a row of another length than ``columns``, an unknown or repeated column, or an invalid value
    rejects the whole message. ``{"events": [...]}`` (one object per event) is accepted too."""

    events: list[TurnEvent] = Field(min_length=1, max_length=MAX_TURN_BATCH)

    @model_validator(mode="before")
    @classmethod
    def _from_rows(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "columns" not in data:
            return data
        columns, rows = data.get("columns"), data.get("rows")
        if set(data) != {"columns", "rows"}:
            raise ValueError("a row batch has exactly the keys columns and rows")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ValueError("columns must be a list of field names")
        if len(set(columns)) != len(columns) or not set(columns) <= set(TURN_EVENT_COLUMNS):
            raise ValueError("columns must be distinct TurnEvent fields")
        if not isinstance(rows, list) or len(rows) > MAX_TURN_BATCH:
            raise ValueError(f"rows must be a list of at most {MAX_TURN_BATCH} rows")
        width = len(columns)
        events: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                raise ValueError(f"row {i} is not a list of {width} values")
            events.append({c: v for c, v in zip(columns, row, strict=True) if v is not None})
        return {"events": events}


# --------------------------------------------------------------------------------------------
# Probe results (topic: probes)
# --------------------------------------------------------------------------------------------


class ProbeResult(Model):
    probe_id: Ident
    server_id: Ident
    region: Label | None = None
    vantage: Label  # the host that probed ("simulated-..." for the simulator)
    kind: Literal["stun_binding", "turn_allocate"]
    transport: Literal["udp", "tcp", "tls"]
    target: Text  # host:port probed
    at: Time
    success: bool
    error_code: UInt16 | None = None
    error: Text | None = None
    latency_ms: Millis | None = None


# --------------------------------------------------------------------------------------------
# Dead letters (topic: dead letters): the raw input and why it was rejected.
# --------------------------------------------------------------------------------------------


MAX_DEAD_LETTER_RAW = 64 * 1024  # bytes of a rejected input kept for diagnosis


class DeadLetter(Model):
    stage: Literal["collector", "processor", "tailer", "syslog"]
    intended: str  # logical stream: call_report | turn_event | probe_result
    reason: str
    path: str | None = None  # failing field path, when known
    raw: str  # UTF-8 text (bytes decoded with errors="replace"), at most MAX_DEAD_LETTER_RAW bytes
    raw_truncated: bool = False
    raw_bytes: int | None = None  # size of the whole rejected input, when raw holds only its start
    received_at: datetime = Field(default_factory=utcnow)
    origin: str | None = None  # e.g. "topic/partition/offset" or the HTTP client address


Payload = Annotated[CallReport | TurnEvent | TurnEventBatch | ProbeResult | DeadLetter, Field()]

SCHEMAS: dict[str, type[Model]] = {
    "call_report": CallReport,
    "turn_event": TurnEvent,
    "turn_event_batch": TurnEventBatch,
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

    @field_validator("tenant")
    @classmethod
    def _app_id(cls, tenant: str) -> str:
        try:
            return check_tenant(tenant, "tenant")
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    def decode(self) -> Model:
        """The typed payload; raises pydantic.ValidationError or KeyError for unknown schemas."""
        return SCHEMAS[self.schema_name].model_validate(self.payload)


def dead_letter_raw(raw: bytes) -> tuple[str, bool, int]:
    """(text kept, truncated?, original size): the start of a rejected input, as UTF-8 text, with
    secrets and dialled numbers blanked (collector/redact.py)."""
    kept = raw[:MAX_DEAD_LETTER_RAW]
    return redact_secrets(kept.decode("utf-8", errors="replace")), len(raw) > len(kept), len(raw)


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
    if isinstance(payload, TurnEventBatch):
        return payload.events[0].server_id
    if isinstance(payload, ProbeResult):
        return payload.server_id
    return None
