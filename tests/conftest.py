"""Session-scoped real services. A service that cannot start fails the tests that need it
(with the script output and the log tail); it is never skipped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.services import ClickHouseServerService, KafkaService, ScriptService, ServiceError


def _start_or_fail(service: ScriptService, what: str) -> None:
    """Start ``service``; on failure stop what did start (by its PID file) and fail with the reason."""
    try:
        service.start()
        return
    except ServiceError as exc:
        reason = str(exc)
    with contextlib.suppress(ServiceError):
        service.stop()
    pytest.fail(f"{what} did not start:\n{reason}", pytrace=False)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaService]:
    """A Kafka 4.x broker on 127.0.0.1: ``.bootstrap``, ``.create_topic()``, ``.restart()``."""
    service = KafkaService(tmp_path_factory.mktemp("kafka"))
    _start_or_fail(service, "Kafka broker")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServerService]:
    """Debian's clickhouse-server 18.16 on 127.0.0.1: ``.host``, ``.port``, ``.restart()``."""
    service = ClickHouseServerService(tmp_path_factory.mktemp("clickhouse-server"))
    _start_or_fail(service, "clickhouse-server")
    yield service
    service.stop()
