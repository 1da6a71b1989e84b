"""The one exceptions module. The type of an exception decides what happens next.

- ``InvalidInput`` (and subclasses): the input is bad and will stay bad. HTTP answers 4xx, the raw
  input goes to the dead-letter topic, a consumer commits past it. Never retried.
- ``Unavailable`` (and subclasses): a dependency (Kafka, ClickHouse) is down or slow. HTTP
  answers 503 with Retry-After, a consumer stops the batch uncommitted and retries; nothing
  acknowledged is lost.
- ``StoreError``: the store refused a statement or its rows (bad SQL, a value the column cannot
  hold): not an outage, so retrying the same thing fails again; a bug or an input to reject.
- ``ConfigError``: a setting is wrong; the component refuses to start and says which one.
- ``GrafanaError``: pushing dashboards to Grafana failed (token refused, permission, conflict, not
  reachable); the message tells the operator what to do and never contains the token.

Library exceptions (kafka-python, clickhouse-driver, chDB) are mapped to these types where they are
caught, in the one module that talks to each library (collector/kafka_*.py, processors/store/*.py,
dashboards/push.py for grafana-client).
"""

from __future__ import annotations


class IcewatchError(Exception):
    """Base of every icewatch error."""


class InvalidInput(IcewatchError):
    """Input that can never be accepted. ``path`` names the failing field ("stats[3].rtt")."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MalformedBody(InvalidInput):
    """The body cannot be decoded at all (bad or truncated gzip, not JSON): HTTP 400."""


class ConflictingReport(InvalidInput):
    """The call and segment are stored from another format: HTTP 409 (embedded mode; with Kafka
    the processor dead-letters it)."""


class UnsupportedFormat(InvalidInput):
    """The body is well-formed but in no format icewatch reads (e.g. a dump without peer connections)."""


class PayloadTooLarge(InvalidInput):
    """The body or one message exceeds a configured size limit."""


class Unavailable(IcewatchError):
    """A dependency is unavailable; retry later. ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerUnavailable(Unavailable):
    """Kafka did not acknowledge in time."""


class StorageUnavailable(Unavailable):
    """ClickHouse did not acknowledge an insert."""


class StoreError(IcewatchError):
    """The store rejected a statement or rows (bad SQL, unknown table, a value out of range)."""


class ConfigError(IcewatchError):
    """A setting is invalid; the message names it and says what is expected."""


class GrafanaError(IcewatchError):
    """Grafana refused or could not be reached while pushing dashboards. ``status`` is the HTTP
    status Grafana answered (``None`` when it was not reached); the message says what was being
    done and what to do about it. It never contains the API token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotPermitted(InvalidInput):
    """Valid input this caller may not run (an API key's SQL reading outside its tenant): HTTP 403."""
