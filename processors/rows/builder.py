"""One message in, rows out: the dispatch from a contract payload to its row builder."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.contract import CallReport, DeadLetter, Model, ProbeResult, TurnEvent, TurnEventBatch
from processors.facts.call_facts import FactsEnv, derive_call_facts
from processors.facts.timeline import sample_durations
from processors.rows.batch import Rows
from processors.rows.calls import rows_for_call
from processors.rows.probes import rows_for_probe
from processors.rows.turn import rows_for_turn_batch, rows_for_turn_event


def dead_letter_row(dl: DeadLetter, tenant: str) -> dict[str, Any]:
    row = dl.model_dump(mode="python")
    row.update(tenant=tenant, path=dl.path or "", origin=dl.origin or "",
               raw_bytes=dl.raw_bytes if dl.raw_bytes is not None else len(dl.raw.encode()))
    return row


class RowBuilder:
    """Turns one payload into rows per table. Stateless apart from its configuration."""

    def __init__(self, env: FactsEnv) -> None:
        self.env = env

    def rows(self, payload: Model, tenant: str, produced_at: datetime) -> Rows:
        if isinstance(payload, CallReport):
            durations = sample_durations(payload.samples)  # once, for the facts and the rows
            facts = derive_call_facts(payload, self.env, durations)
            return rows_for_call(payload, facts, tenant, produced_at, durations)
        if isinstance(payload, TurnEvent):
            return rows_for_turn_event(payload, tenant, produced_at)
        if isinstance(payload, TurnEventBatch):
            return rows_for_turn_batch(payload, tenant, produced_at)
        if isinstance(payload, ProbeResult):
            return rows_for_probe(payload, tenant, produced_at)
        if isinstance(payload, DeadLetter):
            return {"dead_letters": [dead_letter_row(payload, tenant)]}
        raise TypeError(f"no row builder for {type(payload).__name__}")
