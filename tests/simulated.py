"""The simulator through the real embedded pipeline, for tests: reports over HTTP into the app,
coturn lines through the parser, probe results, all into a migrated chDB store."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from collector.contract import Model, TurnEvent
from collector.http_app import IngestConfig, build_app
from collector.inventory import load_inventory
from collector.simulator.coturn_log import call_lines, probe_lines
from collector.simulator.geoip import write_demo_geoip
from collector.simulator.incidents import Conditions
from collector.simulator.plan import CallPlan, Fleet
from collector.simulator.probes import probe_results
from collector.simulator.run import upload
from collector.turn.coturn import CoturnParser
from processors.facts.call_facts import FactsEnv
from processors.facts.geo import MaxMindLocator
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.http_server import serve

REPO = Path(__file__).resolve().parents[1]
INVENTORY_PATH = REPO / "deploy" / "inventory.example.yaml"
INVENTORY = load_inventory(INVENTORY_PATH)
CALLS = 120
SEED = 11
UPLOADERS = 16  # calls uploaded at once by ``Pipeline.feed``


@dataclass
class Pipeline:
    client: httpx.Client
    store: ChdbSink
    publisher: EmbeddedPublisher
    # (tenant, server) -> lines of its coturn log so far: a later feed continues the file, so
    # its lines get new event ids (the id is the line's source and offset)
    offsets: dict[tuple[str, str], int] = field(default_factory=dict)

    def feed(self, tenant: str, cond: Conditions, ended: datetime, seed: int = SEED,
             calls: int = CALLS, unshipped: frozenset[str] = frozenset()) -> list[CallPlan]:
        """Every call's report over HTTP, its coturn lines through the parser, one probe round.
        Another ``seed`` gives other call ids (and other draws). The lines of the servers in
        ``unshipped`` never reach icewatch (their log tailer is broken)."""
        fleet = Fleet(INVENTORY, seed)
        plans = [fleet.plan(i, ended, cond, seconds=12) for i in range(calls)]

        def post(plan: CallPlan) -> httpx.Response:
            path, body, headers = upload(plan)
            return self.client.post(path, content=body, headers={"Content-Type": "application/json",
                                                                 "X-Icewatch-App": tenant, **headers})

        # Several clients at once, as a live fleet sends them: the embedded store writes the
        # uploads that arrive together in one batch (one write per batch, not per call).
        with ThreadPoolExecutor(UPLOADERS) as pool:
            for plan, r in zip(plans, pool.map(post, plans), strict=True):
                assert r.status_code == 202, (plan.call_id, r.text)
        lines: dict[str, list[str]] = {}
        for plan in plans:
            if plan.configured.id not in cond.servers_down:
                lines.setdefault(plan.configured.id, []).extend(call_lines(plan))
        for server in fleet.turn_servers:
            if server.id not in cond.servers_down:
                lines.setdefault(server.id, []).extend(
                    probe_lines(server, ended, 0, server.id in cond.servers_auth_broken,
                                server.id in cond.servers_quota_full))
        for server_id, server_lines in lines.items():
            if server_id not in unshipped:
                self.ship_lines(tenant, server_id, server_lines, ended)
        self.publisher.publish(probe_results(fleet.inventory, ended, cond, 0, seed), tenant=tenant)
        return plans

    def ship_lines(self, tenant: str, server_id: str, lines: list[str], received_at: datetime) -> None:
        """A server's coturn lines through the parser, at the end of its log so far."""
        self.publisher.publish(self._parse(tenant, server_id, lines, received_at), tenant=tenant)

    def _parse(self, tenant: str, server_id: str, lines: list[str], received_at: datetime) -> list[TurnEvent]:
        start = self.offsets.get((tenant, server_id), 0)
        parser = CoturnParser(server_id, b"k", region=INVENTORY.server(server_id).region)  # type: ignore[union-attr]
        parsed = (parser.parse(line, source=f"{tenant}-{server_id}", offset=start + n, received_at=received_at)
                  for n, line in enumerate(lines))
        self.offsets[(tenant, server_id)] = start + len(lines)
        return [e for e in parsed if isinstance(e, TurnEvent)]

    def probe_round(self, tenant: str, cond: Conditions, at: datetime, round_no: int, seed: int = SEED,
                    unshipped: frozenset[str] = frozenset()) -> None:
        """One round of the simulated prober at ``at``: its results, and the lines its allocations
        leave in the logs of the servers that are up (but those in ``unshipped``)."""
        self.publisher.publish(self.probe_payloads(tenant, cond, at, round_no, seed, unshipped), tenant=tenant)

    def probe_payloads(self, tenant: str, cond: Conditions, at: datetime, round_no: int, seed: int = SEED,
                       unshipped: frozenset[str] = frozenset()) -> list[Model]:
        """What ``probe_round`` publishes (to publish several rounds at once)."""
        events: list[Model] = list(probe_results(INVENTORY, at, cond, round_no, seed))
        for server in INVENTORY.servers:
            if server.is_turn and server.id not in cond.servers_down and server.id not in unshipped:
                events += self._parse(tenant, server.id, probe_lines(server, at, round_no, server.id in
                                                                     cond.servers_auth_broken,
                                                                     server.id in cond.servers_quota_full), at)
        return events

    def calls(self, tenant: str) -> dict[str, dict[str, Any]]:
        rows = self.store.query(
            "SELECT call_id, path_class, diagnosis, labels, turn_server_id, client_region, distant_relay, "
            "relay_protocol FROM calls FINAL WHERE tenant = {t:String}", {"t": tenant})
        return {r.pop("call_id"): r for r in rows}

    def turn(self, tenant: str) -> dict[str, tuple[int, int, int]]:
        rows = self.store.query(
            "SELECT server_id, uniqExactMerge(lines) AS lines, uniqExactIfMerge(allocs_ok) AS ok, "
            "uniqExactIfMerge(auth_rejected) AS rejected FROM turn_server_minute WHERE tenant = {t:String} "
            "GROUP BY server_id", {"t": tenant})
        return {r["server_id"]: (r["lines"], r["ok"], r["rejected"]) for r in rows}

    def probe_failures(self, tenant: str) -> dict[str, int]:
        rows = self.store.query("SELECT server_id, countIf(NOT success) AS failed FROM probes FINAL "
                                "WHERE tenant = {t:String} GROUP BY server_id", {"t": tenant})
        return {r["server_id"]: r["failed"] for r in rows}



@contextmanager
def simulated_pipeline(tmp: Path) -> Iterator[Pipeline]:
    """A migrated store behind the real ingest app; the store is closed whatever happens."""
    geo = MaxMindLocator(str(write_demo_geoip(INVENTORY, tmp / "demo.mmdb")))
    store = ChdbSink(tmp / "store")
    try:
        migrate(store)
        publisher = EmbeddedPublisher(store, RowBuilder(FactsEnv(inventory=INVENTORY, geo=geo)))
        app = build_app(publisher, IngestConfig(api_keys={}, max_body_bytes=8 << 20, hash_key=b"k"))
        with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            yield Pipeline(client, store, publisher)
    finally:
        store.close()
