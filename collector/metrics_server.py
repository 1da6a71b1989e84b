"""/metrics on its own port for the commands that serve no other HTTP (``icewatch probe``,
``icewatch alerts run``): ICEWATCH_HOST:ICEWATCH_METRICS_PORT, off when the port is 0."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, start_http_server

from collector.errors import ConfigError

log = logging.getLogger(__name__)


def serve_metrics(host: str, port: int, registry: CollectorRegistry) -> Callable[[], None]:
    """Start serving; returns the function that stops it. Raises ConfigError when the port is taken."""
    if not port:
        return lambda: None
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve /metrics on {host}:{port} ({exc.strerror}): set ICEWATCH_METRICS_PORT "
                          "to a free port, or 0 for none") from exc
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
