"""Rows for one probe result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.contract import ProbeResult


def rows_for_probe(probe: ProbeResult, tenant: str, ingested_at: datetime) -> dict[str, list[dict[str, Any]]]:
    row = probe.model_dump(mode="python")
    row.update(tenant=tenant, region=probe.region or "", error=probe.error or "", ingested_at=ingested_at)
    return {"probes": [row]}
