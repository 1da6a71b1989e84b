"""The documented example report (docs/examples/w3c-call.json) moved to now. Its dates are fixed, and
the collector accepts reports from the last 29 days only, so tests that upload it shift it first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EXAMPLE_PATH = Path(__file__).resolve().parents[1] / "docs" / "examples" / "w3c-call.json"
_EXAMPLE = json.loads(EXAMPLE_PATH.read_text())


def shift_times(node: Any, delta_ms: int) -> Any:
    """Every numeric ``timestamp`` / ``at`` in the document moved by ``delta_ms``."""
    if isinstance(node, dict):
        return {k: v + delta_ms if k in ("timestamp", "at") and isinstance(v, int | float)
                else shift_times(v, delta_ms) for k, v in node.items()}
    if isinstance(node, list):
        return [shift_times(v, delta_ms) for v in node]
    return node


def example_doc(call_id: str | None = None, start: datetime | None = None) -> dict[str, Any]:
    """The example, starting at ``start`` (default: ten minutes ago, on a whole second)."""
    start = start or (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    first = _EXAMPLE["snapshots"][0]["timestamp"] - 1000
    doc: dict[str, Any] = shift_times(_EXAMPLE, int(start.timestamp() * 1000) - first)
    if call_id is not None:
        doc["call_id"] = call_id
    return doc


def example_bytes(call_id: str | None = None) -> bytes:
    return json.dumps(example_doc(call_id)).encode()


EXAMPLE_BODY = example_bytes()  # fixed for the test session: retries of it are identical
