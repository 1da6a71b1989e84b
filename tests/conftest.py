"""Session-scoped real services. A service that cannot start fails the tests that need it
(with the script output and the log tail); it is never skipped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.services import ClickHouseServerService, KafkaService, ScriptService, ServiceError


def _stop_quietly(service: ScriptService) -> None:
    """Stop whatever part of a failed start is running (by its PID file), keeping the first error."""
    with contextlib.suppress(ServiceError):
        service.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaService]:
    """A Kafka 4.x broker on 127.0.0.1: ``.bootstrap``, ``.create_topic()``, ``.restart()``."""
    service = KafkaService(tmp_path_factory.mktemp("kafka"))
    try:
        service.start()
    except ServiceError as exc:
        _stop_quietly(service)
        pytest.fail(f"Kafka broker did not start:\n{exc}", pytrace=False)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServerService]:
    """Debian's clickhouse-server 18.16 on 127.0.0.1: ``.host``, ``.port``, ``.restart()``."""
    service = ClickHouseServerService(tmp_path_factory.mktemp("clickhouse-server"))
    try:
        service.start()
    except ServiceError as exc:
        _stop_quietly(service)
        pytest.fail(f"clickhouse-server did not start:\n{exc}", pytrace=False)
    yield service
    service.stop()
