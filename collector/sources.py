"""The non-HTTP inputs of a collector process: TURN log tailers, the syslog receiver, the probes.
Each publishes through the same Publisher as the HTTP ingest (Kafka, or the embedded store)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.publisher import Publisher
from collector.settings import Settings
from collector.source_metrics import SourcesCollector
from collector.turn.config import coturn_parser

log = logging.getLogger(__name__)


@dataclass
class Sources:
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    metrics: SourcesCollector = field(default_factory=SourcesCollector)  # for /metrics

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)
        for stop in self.stoppers:
            stop()


def start_sources(cs: Settings, publisher: Publisher) -> Sources:
    """Start what the settings ask for; raises ConfigError on a wrong setting."""
    sources = Sources()
    for i, src in enumerate(cs.turn_logs):
        from collector.turn.tailer import FileTailer

        checkpoint = cs.data_dir / "checkpoints" / f"turn-{src.server_id}-{i}.json"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tailer = FileTailer(src.path, publisher, coturn_parser(src.server_id, cs, src.region), checkpoint)
        t = threading.Thread(target=tailer.run, args=(sources.stop_event,), name=f"tail-{src.server_id}", daemon=True)
        t.start()
        sources.threads.append(t)
        sources.stoppers.append(tailer.close)
        sources.metrics.tailers.append((src.server_id, tailer))
        log.info("tailing %s as TURN server %s", src.path, src.server_id)
    if cs.syslog_udp_port or cs.syslog_tcp_port:
        from collector.turn.syslog_server import SyslogServer

        server = SyslogServer(publisher, lambda sender: coturn_parser(sender, cs), host=cs.host,
                              udp_port=cs.syslog_udp_port or None, tcp_port=cs.syslog_tcp_port or None)
        server.start()
        sources.stoppers.append(server.stop)
        sources.metrics.syslog = server
        log.info("syslog receiver on udp %s tcp %s", server.udp_address, server.tcp_address)
    probes = cs.probes
    if probes.enabled:
        from collector.errors import ConfigError
        from collector.inventory import load_inventory
        from collector.probes.scheduler import ProbeScheduler

        if cs.inventory is None:
            raise ConfigError("ICEWATCH_PROBES_ENABLED needs ICEWATCH_INVENTORY (the servers to probe)")
        scheduler = ProbeScheduler(load_inventory(cs.inventory), probes, publisher)
        scheduler.start()
        sources.stoppers.append(scheduler.shutdown)
        sources.metrics.probes = scheduler
        log.info("probing the inventory every %.0f s", probes.interval_s)
    return sources
