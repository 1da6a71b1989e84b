"""Rows for one probe result."""

from __future__ import annotations

from datetime import datetime

from collector.contract import ProbeResult
from processors.rows.batch import Rows


def rows_for_probe(probe: ProbeResult, tenant: str, ingested_at: datetime) -> Rows:
    row = probe.model_dump(mode="python")
    row.update(tenant=tenant, region=probe.region or "", error=probe.error or "", ingested_at=ingested_at)
    return {"probes": [row]}
