"""What the evaluator hands a notifier: one alert instance (a rule and one label set) as it stands,
firing or resolved. The shape follows Alertmanager's postableAlert (api/v2/openapi.yaml)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Alert:
    labels: Mapping[str, str]  # identifies the alert: alertname, severity, tenant, turn_server, region, ...
    annotations: Mapping[str, str]  # summary, description, runbook_url, value
    starts_at: datetime  # when it started firing (kept across restarts)
    ends_at: datetime | None  # None while firing; the resolve time once resolved
    generator_url: str  # the built-in page of the rule

    @property
    def resolved(self) -> bool:
        return self.ends_at is not None


class Notifier(Protocol):
    """Delivers alerts; raises collector.errors.Unavailable when the receiver cannot take them now
    (the evaluator keeps them and sends again on its next round)."""

    name: str

    def send(self, alerts: Sequence[Alert]) -> None: ...
