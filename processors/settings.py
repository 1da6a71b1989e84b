"""Validated settings of the processors and the store (env prefix ICEWATCH_, nested with __)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from collector.settings import KafkaSettings, Topics


class NativeStore(BaseModel):
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=1, le=65535)
    database: str = "default"
    user: str = "default"
    password: SecretStr = SecretStr("")


class ProcessorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ICEWATCH_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings | None = None
    topics: Topics = Topics()
    group_id: str = "icewatch-processors"
    clickhouse: NativeStore | None = None  # none: the embedded chDB store in data_dir
    data_dir: Path = Path("var/icewatch")
    max_batch_messages: int = Field(default=2000, ge=1)
    max_batch_seconds: float = Field(default=1.0, gt=0)
    inventory: Path | None = None  # fleet inventory YAML
    geoip_db: Path | None = None  # MaxMind-format .mmdb (City or Country)
    distant_relay_km: float = Field(default=1500.0, gt=0)
    dtls_stall_ms: float = Field(default=5000.0, gt=0)
    metrics_port: int = Field(default=9108, ge=0, le=65535)  # 0: no HTTP metrics/health endpoint
