"""What the probes derive from their settings section: the credentials to use now, the exchange options."""

from __future__ import annotations

from collector.probes.client import Credentials, ProbeOptions
from collector.probes.stun import turn_rest_credentials
from collector.settings import ProbeSettings


def probe_credentials(settings: ProbeSettings, now: float | None = None) -> Credentials | None:
    """The credentials to use now (TURN REST ones are minted fresh, valid ``turn_rest_ttl_s``)."""
    if settings.turn_secret is not None:
        user, password = turn_rest_credentials(
            settings.turn_secret.get_secret_value(), settings.turn_rest_user, settings.turn_rest_ttl_s, now
        )
        return Credentials(user, password)
    if settings.turn_username is not None and settings.turn_password is not None:
        return Credentials(settings.turn_username, settings.turn_password.get_secret_value())
    return None


def probe_options(settings: ProbeSettings) -> ProbeOptions:
    return ProbeOptions(
        timeout_s=settings.timeout_s,
        initial_rto_s=settings.initial_rto_s,
        tls_verify=settings.tls_verify,
        tls_ca_file=str(settings.tls_ca_file) if settings.tls_ca_file else None,
    )
