"""Per-call facts: the output type of the call derivation (processors/facts/call_facts.py).

One ``CallFacts`` per canonical call report (one call, one peer connection, or one segment).
Field names are the ClickHouse column names of ``calls`` (see migrations).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

PATH_CLASSES = ("host", "srflx", "prflx", "relay-udp", "relay-tcp", "relay-tls")
RTT_BANDS = ("excellent", "good", "acceptable", "poor")
LABELS = (
    "ok",
    "stun_unreachable",
    "turn_unreachable",
    "turn_auth_failed",
    "ice_failed",
    "dtls_stall",
    "distant_relay",
    "udp_blocked_tcp_relay",
    "symmetric_nat_relay",
    "high_rtt",
)


class CandidateErrorCount(BaseModel):
    model_config = ConfigDict(frozen=True)
    url: str
    error_code: int
    count: int


class CallFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    call_id: str
    report_id: str
    segment: int
    source_format: str
    peer_connection_id: str = ""
    sdk_name: str = ""
    sdk_version: str = ""
    browser: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # client and geo (address truncated /24 or /48 after the lookup)
    client_address: str = ""
    client_country: str = ""
    client_lat: float | None = None
    client_lon: float | None = None
    client_region: str = ""
    geo_source: str = ""  # mmdb | fallback | none
    # candidate-type mix
    local_candidate_type: str = ""  # "" when no pair was ever selected
    remote_candidate_type: str = ""
    local_protocol: str = ""
    relay_protocol: str = ""
    relay_protocol_source: str = ""
    path_class: str = ""  # one of PATH_CLASSES or ""
    turn_url: str = ""
    turn_server_id: str = ""
    turn_region: str = ""
    gathered_types: list[str] = []
    configured_turn: bool = False
    configured_stun: bool = False
    configured_turn_region: str = ""  # region of the configured TURN server (known even without a relay)
    pair_changes: int = 0
    # relay distance
    relay_distance_km: float | None = None
    nearest_server_id: str = ""
    nearest_distance_km: float | None = None
    excess_km: float | None = None
    distant_relay: bool = False
    # ICE timing and failures (ms from the first event of the report)
    ice_gathering_ms: float | None = None
    first_srflx_ms: float | None = None
    first_relay_ms: float | None = None
    ice_connect_ms: float | None = None
    ice_connected: bool = False
    ice_failed: bool = False
    never_connected: bool = False
    reconnects: int = 0
    candidate_errors: list[CandidateErrorCount] = []
    # DTLS
    dtls_connect_ms: float | None = None
    dtls_connected: bool = False
    dtls_stall: bool = False
    dtls_stall_ms: float | None = None
    dtls_failed: bool = False
    # RTT
    rtt_source: str = ""
    rtt_samples: int = 0
    rtt_median_ms: float | None = None
    rtt_p95_ms: float | None = None
    rtt_max_ms: float | None = None
    rtt_band: str = ""
    seconds_excellent: float = 0.0
    seconds_good: float = 0.0
    seconds_acceptable: float = 0.0
    seconds_poor: float = 0.0
    # quality
    jitter_ms: float | None = None
    loss_pct: float | None = None
    mos: float | None = None
    # Connection-level bitrate: bytes of every packet on the ICE transport (selected candidate pair
    # or RTCTransportStats: RTP and RTCP with their headers, SRTP tags, STUN; not IP/UDP/TCP or
    # TURN framing) over the samples' duration. Not the audio payload bitrate an SDK may report
    # (Telnyx audio.*.bitrateAvg): on a real SDK call (tests/fixtures/telnyx-sdk/relay_udp.json) the
    # connection sent 44 kbit/s where the SDK's audio bitrate was 20-25 kbit/s.
    connection_send_kbps: float | None = None
    connection_recv_kbps: float | None = None
    # the SDK's own warnings (Telnyx codes such as "33005"), distinct, sorted
    sdk_warnings: list[str] = []
    # the ids Telnyx support quotes for an upload: x-call-report-id (one per SDK session, so shared
    # by its calls) and x-voice-sdk-id; "" when the upload had none
    call_report_id: str = ""
    voice_sdk_id: str = ""
    # diagnosis
    diagnosis: str = "ok"
    labels: list[str] = []
