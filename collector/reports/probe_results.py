"""Probe results sent over HTTP by a remote vantage point: a JSON array, or NDJSON, of ProbeResult
objects (collector/contract.py), at most ``MAX_PROBE_RESULTS`` per request, gzip accepted. Their
times must lie within what the probes table keeps (``check_probe_times``), as call reports' do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from pydantic import ValidationError

from collector.contract import ProbeResult
from collector.errors import InvalidInput, MalformedBody, PayloadTooLarge
from collector.reports.sniff import GZIP_MAGIC, gunzip
from collector.retention import PROBE_RESULT_MAX_AGE, outside_window

MAX_PROBE_RESULTS = 1000


def parse_probe_results(body: bytes, max_bytes: int) -> list[ProbeResult]:
    if body[:2] == GZIP_MAGIC:
        body = gunzip(body, max_bytes)
    text = body.strip()
    try:
        items = orjson.loads(text) if text[:1] == b"[" else [orjson.loads(line) for line in text.splitlines() if line]
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"body is not JSON or NDJSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise InvalidInput("expected a non-empty JSON array (or NDJSON) of probe results")
    if len(items) > MAX_PROBE_RESULTS:
        raise PayloadTooLarge(f"{len(items)} probe results; at most {MAX_PROBE_RESULTS} per request")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(ProbeResult.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(first["msg"], f"[{i}].{where}" if where else f"[{i}]") from None
    return out


def check_probe_times(results: Sequence[ProbeResult], now: datetime) -> None:
    """InvalidInput naming the first result whose ``at`` the probes table would drop on insert (older
    than it keeps) or that lies far ahead of ``now``: the request is refused whole, as parsing is."""
    for i, r in enumerate(results):
        reason = outside_window(r.at, now, PROBE_RESULT_MAX_AGE, "the probes table")
        if reason is not None:
            raise InvalidInput(reason, f"[{i}].at")
