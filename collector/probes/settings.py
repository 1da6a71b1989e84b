"""The probes section of the settings (environment variables ``ICEWATCH_PROBES_<FIELD>``).

Credentials for TURN Allocate probes, one of:

- static long-term credentials: ``ICEWATCH_PROBES_TURN_USERNAME`` + ``ICEWATCH_PROBES_TURN_PASSWORD``;
- the TURN REST API shared secret (coturn ``--static-auth-secret``):
  ``ICEWATCH_PROBES_TURN_SECRET`` (+ ``ICEWATCH_PROBES_TURN_REST_USER``, ``..._TURN_REST_TTL_S``).

Without either, TURN servers get only Binding probes (a warning says so at start).
Secrets are ``SecretStr``: they print as ``**********`` and are never logged.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from collector.probes.client import Credentials, ProbeOptions
from collector.probes.stun import turn_rest_credentials

ProbeTransport = Literal["udp", "tcp", "tls"]


def _all_transports() -> list[ProbeTransport]:
    return ["udp", "tcp", "tls"]


class ProbeSettings(BaseModel):
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

    def credentials(self, now: float | None = None) -> Credentials | None:
        """The credentials to use now (TURN REST ones are minted fresh, valid ``turn_rest_ttl_s``)."""
        if self.turn_secret is not None:
            user, password = turn_rest_credentials(
                self.turn_secret.get_secret_value(), self.turn_rest_user, self.turn_rest_ttl_s, now
            )
            return Credentials(user, password)
        if self.turn_username is not None and self.turn_password is not None:
            return Credentials(self.turn_username, self.turn_password.get_secret_value())
        return None

    def options(self) -> ProbeOptions:
        return ProbeOptions(
            timeout_s=self.timeout_s,
            initial_rto_s=self.initial_rto_s,
            tls_verify=self.tls_verify,
            tls_ca_file=str(self.tls_ca_file) if self.tls_ca_file else None,
        )
