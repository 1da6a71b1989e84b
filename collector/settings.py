"""Validated settings of the collector (env prefix ICEWATCH_, nested with __)."""

from __future__ import annotations

import socket
from ipaddress import ip_network
from pathlib import Path

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Topics(BaseModel):
    call_reports: str = "icewatch.call-reports"
    turn_events: str = "icewatch.turn-events"
    probe_results: str = "icewatch.probe-results"
    dead_letters: str = "icewatch.dead-letters"
    partitions: int = Field(default=6, ge=1)

    def for_schema(self, schema: str) -> str:
        return {
            "call_report": self.call_reports,
            "turn_event": self.turn_events,
            "probe_result": self.probe_results,
            "dead_letter": self.dead_letters,
        }[schema]


class KafkaSettings(BaseModel):
    bootstrap: str = Field(description="host:port[,host:port] of the Kafka brokers")
    client_id: str = "icewatch"
    # A message larger than this is refused with a clear error, never silently dropped.
    # Keep it at or under the broker's message.max.bytes (1 MiB by default).
    max_message_bytes: int = Field(default=1_000_000, ge=10_000)
    ack_timeout_s: float = Field(default=10.0, gt=0)
    compression: str | None = "gzip"

    @field_validator("bootstrap")
    @classmethod
    def _has_port(cls, v: str) -> str:
        for part in v.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {part!r}")
        return v


class TurnLogSource(BaseModel):
    """One TURN server's log file, tailed beside the server."""

    path: Path
    server_id: str
    region: str | None = None


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ICEWATCH_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    kafka: KafkaSettings | None = None  # none: embedded mode
    topics: Topics = Topics()
    # app id -> API key. Empty: no authentication (a warning is logged at start).
    api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # X-Forwarded-For is believed only from these peers (your load balancers).
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    )
    hash_key: SecretStr = SecretStr("")  # key for hashing phone numbers and TURN user names
    source_host: str = Field(default_factory=socket.gethostname)
    data_dir: Path = Path("var/icewatch")  # embedded store, tailer checkpoints
    # TURN logs: JSON list of {"path", "server_id", "region"}; syslog receiver ports (0: off).
    turn_logs: list[TurnLogSource] = Field(default_factory=list)
    syslog_udp_port: int = Field(default=0, ge=0, le=65535)
    syslog_tcp_port: int = Field(default=0, ge=0, le=65535)
    inventory: Path | None = None  # fleet inventory YAML, for the probes
