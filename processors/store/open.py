"""Which store the settings name: a ClickHouse server (ICEWATCH_CLICKHOUSE__*) or the embedded chDB store."""

from __future__ import annotations

from collector.errors import ConfigError, StorageUnavailable
from collector.settings import NativeStore, Settings
from processors.store.migrate import check_cluster_schema, migrate
from processors.store.sink import Sink


def connect_server(ch: NativeStore, database: str | None = None, send_receive_timeout: float = 30.0) -> Sink:
    """A sink on the configured ClickHouse server (nothing is sent yet)."""
    from processors.store.native import NativeSink

    return NativeSink(host=ch.host, port=ch.port, database=database or ch.database, user=ch.user,
                      password=ch.password.get_secret_value(), send_receive_timeout=send_receive_timeout)


def unreachable(ch: NativeStore, exc: StorageUnavailable) -> StorageUnavailable:
    return StorageUnavailable(
        f"cannot reach ClickHouse at {ch.host}:{ch.port}: check ICEWATCH_CLICKHOUSE__HOST and "
        f"ICEWATCH_CLICKHOUSE__PORT (native protocol, 9000 by default) and that the server is up "
        f"({str(exc).split(';')[0]})", retry_after=exc.retry_after)


def prepare_server(sink: Sink, ch: NativeStore) -> None:
    """At a service's start on a server: a single server is migrated here; a cluster is migrated by
    `icewatch migrate` only (ON CLUSTER), so the service checks the recorded version and refuses a
    schema that is behind."""
    if ch.cluster:
        check_cluster_schema(sink, ch.cluster)
    else:
        migrate(sink)


def open_store(settings: Settings, apply_migrations: bool = True) -> Sink:
    """The store, migrated (a cluster: checked); at start-up its errors say which setting to look at.
    ``apply_migrations=False``: neither (`icewatch migrate` itself, reads of a server)."""
    sink: Sink
    if settings.clickhouse is not None:
        ch = settings.clickhouse
        sink = connect_server(ch)
        if apply_migrations:
            try:
                prepare_server(sink, ch)
            except StorageUnavailable as exc:
                sink.close()
                raise unreachable(ch, exc) from exc
            except ConfigError:
                sink.close()
                raise
        return sink
    from processors.store.chdb import ChdbSink

    path = settings.data_dir / "store"
    try:
        sink = ChdbSink(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the embedded store in {path} ({exc.strerror}): set ICEWATCH_DATA_DIR "
                          "to a writable directory") from exc
    if apply_migrations:
        migrate(sink)
    return sink
