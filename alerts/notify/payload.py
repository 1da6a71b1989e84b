"""The JSON form of an alert that every notifier sends: Alertmanager's postableAlert
(``labels``, ``annotations``, ``startsAt``, ``endsAt`` once resolved, ``generatorURL``), checked
first against what Alertmanager 0.25 refuses, so that one bad alert never sinks a whole batch."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from alerts.alert import Alert
from collector.errors import ConfigError, InvalidInput

# Alertmanager validates label AND annotation names with Prometheus' legacy rule (model.LabelName).
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DEFAULT_BATCH = 500  # alerts per request: bounded body size (an alert is ~0.5-2 KB of JSON)

T = TypeVar("T")


def rfc3339(value: datetime, path: str) -> str:
    """An aware datetime as RFC 3339 UTC with milliseconds: ``2026-11-26T04:05:06.789Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("a timezone-aware datetime is required (naive times are ambiguous)", path)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_names(kind: str, items: Any, path: str) -> None:
    for name, value in items.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise InvalidInput(f"{kind} name {name!r} is invalid: it must match {NAME.pattern}", f"{path}.{kind}")
        if not isinstance(value, str):
            raise InvalidInput(f"{kind} {name!r} has a {type(value).__name__} value, not a string", f"{path}.{kind}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{kind} {name!r}: the value is not valid UTF-8", f"{path}.{kind}") from None


def check(alert: Alert, path: str = "alert") -> None:
    """Raise InvalidInput (naming ``path``) for anything Alertmanager would refuse with 400/422."""
    _check_names("labels", alert.labels, path)
    _check_names("annotations", alert.annotations, path)
    if not any(alert.labels.values()):  # Alertmanager drops empty values: nothing would identify it
        raise InvalidInput("at least one label with a non-empty value is required", f"{path}.labels")
    rfc3339(alert.starts_at, f"{path}.starts_at")
    if alert.ends_at is not None:
        rfc3339(alert.ends_at, f"{path}.ends_at")
        if alert.ends_at < alert.starts_at:
            raise InvalidInput("ends_at is before starts_at", f"{path}.ends_at")
    if alert.generator_url:
        parts = urlsplit(alert.generator_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", alert.generator_url):
            raise InvalidInput(f"not an absolute http(s) URL: {alert.generator_url!r}", f"{path}.generator_url")


def postable(alert: Alert) -> dict[str, Any]:
    """One postableAlert. ``endsAt`` is left out while firing (Alertmanager then keeps the alert
    for its resolve_timeout after the last send); an empty generator_url is left out too."""
    out: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at, "starts_at"),
    }
    if alert.ends_at is not None:
        out["endsAt"] = rfc3339(alert.ends_at, "ends_at")
    if alert.generator_url:
        out["generatorURL"] = alert.generator_url
    return out


def check_all(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """Every alert checked (the first bad one raises, naming its index), then as postableAlerts."""
    for i, alert in enumerate(alerts):
        check(alert, f"alerts[{i}]")
    return [postable(a) for a in alerts]


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_batch_size(size: int) -> int:
    if size < 1:
        raise ConfigError(f"batch size must be at least 1, got {size}")
    return size


def check_url(url: str, what: str) -> str:
    """An http(s) URL without credentials in it (they would end up in logs and error messages)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what}: expected an http:// or https:// URL, got {url[:80]!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{what}: credentials in the URL are not supported ({parts.hostname})")
    if parts.query or parts.fragment:
        raise ConfigError(f"{what}: no query or fragment expected ({parts.hostname})")
    return url
