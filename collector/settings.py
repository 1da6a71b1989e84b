"""The one settings object of every icewatch component, loaded once at the CLI root and handed down.

Environment variables: ``ICEWATCH_<FIELD>``; nested sections with ``__`` (``ICEWATCH_KAFKA__BOOTSTRAP``),
except the probes section, which keeps its ``ICEWATCH_PROBES_<FIELD>`` names. ``load_settings`` turns
any invalid value into a ``ConfigError`` naming the variable (never echoing its value).
"""

from __future__ import annotations

import json
import re
import socket
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from collector.auth import check_tenant
from collector.errors import ConfigError, InvalidInput


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


# The broker defaults of group.min.session.timeout.ms and group.max.session.timeout.ms.
SESSION_TIMEOUT_MIN_MS = 6_000
SESSION_TIMEOUT_MAX_MS = 1_800_000


class KafkaSettings(BaseModel):
    bootstrap: str = Field(description="host:port[,host:port] of the Kafka brokers")
    client_id: str = "icewatch"
    # A message larger than this is refused with a clear error, never silently dropped.
    # Keep it at or under the broker's message.max.bytes (1 MiB by default).
    max_message_bytes: int = Field(default=1_000_000, ge=10_000)
    ack_timeout_s: float = Field(default=10.0, gt=0)
    # zstd: about a tenth of gzip-9's CPU on the TURN batches, same ratio (needs brokers >= 2.1)
    compression: str | None = "zstd"
    # Processors: how long the group waits for a member that stopped heartbeating (killed, host
    # lost) before its partitions go to the others; nothing is read from them meanwhile. A member
    # that stops cleanly leaves at once. 45 s is kafka-python's default with brokers 3.0+.
    session_timeout_ms: int = 45_000

    @field_validator("session_timeout_ms")
    @classmethod
    def _session_in_broker_range(cls, v: int) -> int:
        if not SESSION_TIMEOUT_MIN_MS <= v <= SESSION_TIMEOUT_MAX_MS:
            raise ValueError(
                f"must be {SESSION_TIMEOUT_MIN_MS}..{SESSION_TIMEOUT_MAX_MS} ms (6 s..30 min), the range Kafka "
                "brokers accept by default (group.min.session.timeout.ms, group.max.session.timeout.ms); a broker "
                "configured narrower refuses the processor's join (InvalidSessionTimeoutError)")
        return v

    @property
    def heartbeat_interval_ms(self) -> int:
        """kafka-python's 3 s, or a third of a shorter session (heartbeats must come well inside it)."""
        return min(3000, self.session_timeout_ms // 3)

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


class NativeStore(BaseModel):
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=1, le=65535)
    database: str = "default"
    user: str = "default"
    password: SecretStr = SecretStr("")
    # A ClickHouse cluster (a <remote_servers> name): `icewatch migrate` applies the cluster variant
    # of the schema ON CLUSTER; services then check the recorded version instead of migrating.
    cluster: str | None = None

    @field_validator("cluster")
    @classmethod
    def _cluster_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", v):
            raise ValueError("a cluster name of letters, digits and '_' (at most 64, not starting with a digit)")
        return v


class SqlLimits(BaseModel):
    """Limits of ``icewatch sql`` / ``POST /v1/sql`` (``ICEWATCH_SQL__<FIELD>``): ClickHouse's own
    per-query settings, plus the size of the SQL text and of the answer."""

    max_result_rows: int = Field(default=100_000, ge=1)
    max_result_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    max_rows_to_read: int = Field(default=100_000_000, ge=1)
    max_bytes_to_read: int = Field(default=1024**3, ge=1024)
    max_execution_time_s: int = Field(default=30, ge=1, le=3600)
    max_sql_bytes: int = Field(default=64 * 1024, ge=64, le=1024 * 1024)
    max_output_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


ProbeTransport = Literal["udp", "tcp", "tls"]


def _all_transports() -> list[ProbeTransport]:
    return ["udp", "tcp", "tls"]


class ProbeSettings(BaseModel):
    """The active probes (``ICEWATCH_PROBES_<FIELD>``). TURN Allocate credentials, one of: static
    long-term ``TURN_USERNAME`` + ``TURN_PASSWORD``, or the TURN REST API shared secret ``TURN_SECRET``
    (coturn ``--static-auth-secret``; + ``TURN_REST_USER``, ``TURN_REST_TTL_S``). Without either, TURN
    servers get only Binding probes (a warning says so at start). Secrets print as ``**********``."""

    enabled: bool = Field(default=False, description="run probes inside `icewatch run` (needs ICEWATCH_INVENTORY)")
    interval_s: float = Field(default=30.0, ge=1.0, description="seconds between two probe rounds")
    timeout_s: float = Field(default=3.0, gt=0, description="budget of one Binding/Allocate exchange")
    initial_rto_s: float = Field(default=0.5, gt=0, description="UDP: first retransmission timeout")
    vantage: str = Field(default_factory=socket.gethostname, description="name of this probing host")
    tenant: str = "default"
    transports: list[ProbeTransport] = Field(
        default_factory=_all_transports, description="transports to probe (if the server offers them)"
    )
    turn_username: str | None = None
    turn_password: SecretStr | None = None
    turn_secret: SecretStr | None = None  # TURN REST API shared secret
    turn_rest_user: str = "icewatch-probe"
    turn_rest_ttl_s: int = Field(default=3600, ge=60)
    tls_verify: bool = True
    tls_ca_file: Path | None = None
    max_workers: int = Field(default=16, ge=1, le=256, description="probes run in parallel")
    max_pending: int = Field(default=10_000, ge=1, description="results kept while the publisher is down")

    @model_validator(mode="after")
    def _one_credential_kind(self) -> ProbeSettings:
        if (self.turn_username is None) != (self.turn_password is None):
            raise ValueError("set both ICEWATCH_PROBES_TURN_USERNAME and ICEWATCH_PROBES_TURN_PASSWORD, or neither")
        if self.turn_password is not None and self.turn_secret is not None:
            raise ValueError("set either static TURN credentials or ICEWATCH_PROBES_TURN_SECRET, not both")
        return self

    @property
    def has_turn_credentials(self) -> bool:
        return self.turn_password is not None or self.turn_secret is not None


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {url[:80]!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"no credentials in the URL ({parts.hostname})")
    return url


class AlertSettings(BaseModel):
    """Alert delivery (``ICEWATCH_ALERTS__<FIELD>``). ``ALERTMANAGER_URLS``: every Alertmanager of an
    HA set (each gets every alert), as a JSON list or comma-separated. The signed webhook needs both
    ``WEBHOOK_URL`` and ``WEBHOOK_SECRET`` (16+ characters)."""

    alertmanager_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # base URL of icewatch's built-in pages, for the generatorURL of each alert
    external_url: str = "http://127.0.0.1:8080"
    state_path: Path | None = None  # None: the evaluator's default under data_dir
    resend_s: float = Field(default=30.0, gt=0, le=600)  # firing alerts are sent again this often
    # icewatch's evaluator keeps an alert firing at most this long once its condition is gone, below
    # a rule's own keep_firing_for (None: each rule's own); for short demos and tests
    keep_firing_for_max_s: float | None = Field(default=None, ge=0, le=86400)

    @field_validator("alertmanager_urls", mode="before")
    @classmethod
    def _url_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("alertmanager_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        return [_http_url(u) for u in urls]

    @field_validator("webhook_url", "external_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else _http_url(url)

    @model_validator(mode="after")
    def _webhook_pair(self) -> AlertSettings:
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise ValueError("set both ICEWATCH_ALERTS__WEBHOOK_URL and ICEWATCH_ALERTS__WEBHOOK_SECRET, or neither")
        if self.webhook_secret is not None and len(self.webhook_secret.get_secret_value()) < 16:
            raise ValueError("ICEWATCH_ALERTS__WEBHOOK_SECRET is shorter than 16 characters")
        return self


PROBES_ENV_PREFIX = "ICEWATCH_PROBES_"


class _ProbesEnv(PydanticBaseSettingsSource):
    """The probes section from ``ICEWATCH_PROBES_<FIELD>`` (single underscore, as documented)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._env = EnvSettingsSource(settings_cls, env_prefix=PROBES_ENV_PREFIX)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in ProbeSettings.model_fields.items():
            value, _, is_complex = self._env.get_field_value(field, name)
            value = self._env.prepare_field_value(name, field, value, is_complex)
            if value is not None:
                values[name] = value
        return {"probes": values} if values else {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ICEWATCH_", env_nested_delimiter="__", extra="ignore")

    # -- HTTP ingest (collector)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # app id -> API key. Empty: no authentication (a warning is logged at start).
    api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # X-Forwarded-For is believed only from these peers (your load balancers).
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    )
    hash_key: SecretStr = SecretStr("")  # key for hashing phone numbers and TURN user names
    # Browser uploads: origins allowed to POST reports (CORS). Empty: none; ["*"] only if you mean it.
    cors_origins: list[str] = Field(default_factory=list)
    # Connection limits: beyond max_connections new requests get 503; request headers must arrive
    # within header_timeout_s, the body within body_timeout_s; idle keep-alive closes after keepalive_timeout_s.
    max_connections: int = Field(default=1000, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    body_timeout_s: float = Field(default=30.0, gt=0, le=600)
    keepalive_timeout_s: float = Field(default=5.0, ge=1, le=300)
    source_host: str = Field(default_factory=socket.gethostname)
    # -- Kafka (none: embedded mode) and its topics
    kafka: KafkaSettings | None = None
    topics: Topics = Topics()
    # -- the store: a ClickHouse server, or (none) the embedded chDB store in data_dir
    clickhouse: NativeStore | None = None
    data_dir: Path = Path("var/icewatch")  # embedded store, tailer checkpoints
    sql: SqlLimits = Field(default_factory=SqlLimits)  # `icewatch sql` / POST /v1/sql
    # embedded mode: concurrent uploads share a write of at most this many messages (1: each alone);
    # at most embedded_queue_messages wait for it, beyond that uploads get 503 with Retry-After
    embedded_batch_messages: int = Field(default=512, ge=1)
    embedded_queue_messages: int = Field(default=4096, ge=1)
    # -- processors
    group_id: str = "icewatch-processors"
    max_batch_messages: int = Field(default=2000, ge=1)
    max_batch_seconds: float = Field(default=1.0, gt=0)
    metrics_port: int = Field(default=9108, ge=0, le=65535)  # 0: no HTTP metrics/health endpoint
    # -- reference data and thresholds of the facts
    inventory: Path | None = None  # fleet inventory YAML
    geoip_db: Path | None = None  # MaxMind-format .mmdb (City or Country)
    distant_relay_km: float = Field(default=1500.0, gt=0)
    dtls_stall_ms: float = Field(default=5000.0, gt=0)
    # -- TURN logs: JSON list of {"path", "server_id", "region"}; syslog receiver ports (0: off)
    turn_logs: list[TurnLogSource] = Field(default_factory=list)
    syslog_udp_port: int = Field(default=0, ge=0, le=65535)
    syslog_tcp_port: int = Field(default=0, ge=0, le=65535)
    # -- active probes (ICEWATCH_PROBES_*)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    # -- alert delivery (ICEWATCH_ALERTS__*)
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @field_validator("api_keys")
    @classmethod
    def _app_ids(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for app, key in keys.items():
            try:
                check_tenant(app, "api_keys")
            except InvalidInput as exc:
                raise ValueError(f"app id {app[:40]!r}: {exc.message}") from None
            if len(key.get_secret_value()) < 16:
                raise ValueError(f"the key of {app!r} is shorter than 16 characters")
        return keys

    def api_key_values(self) -> dict[str, str]:
        """app id -> key, revealed for comparison (never log it)."""
        return {app: key.get_secret_value() for app, key in self.api_keys.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _ProbesEnv(settings_cls), dotenv_settings, file_secret_settings


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable behind a validation error location."""
    parts = [str(p).upper() for p in loc]
    if parts and parts[0] == "PROBES":
        return PROBES_ENV_PREFIX + "_".join(parts[1:]) if len(parts) > 1 else PROBES_ENV_PREFIX + "*"
    return "ICEWATCH_" + "__".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (``overrides`` win); ConfigError names every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        msgs = "; ".join(f"{env_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {msgs}") from None
    except SettingsError as exc:  # a list or mapping variable that is not JSON
        m = re.search(r'field "(\w+)"', str(exc))
        name = env_name((m.group(1),)) if m else "an ICEWATCH_* variable"
        raise ConfigError(f"invalid settings: {name} must be JSON (a list or an object), "
                          f"e.g. ICEWATCH_API_KEYS='{{\"my-app\": \"<key>\"}}'") from None
