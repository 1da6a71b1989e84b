"""Benchmark: CPU time of the report readers on crafted bodies at the upload size limit, as a ratio
to decoding the same bytes with orjson in the same run (not a pytest test).

The floor is the JSON decoding the format itself implies: the whole document (Telnyx, W3C), each
line (rtcstats), or the document plus every ``values`` string of its series (webrtc-internals
nests JSON in strings). The readers may refuse a body (413/422): the time to refuse counts.

    .venv/bin/python -m tests.bench.bench_hostile_parse [--size BYTES] [--repeat N] [--case SUBSTRING]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import orjson

from collector.errors import InvalidInput
from collector.reports import UploadContext, parse_upload
from collector.settings import Settings
from tests.bench.hostile_bodies import CASES
from tests.bench.table import Row, emit, machine

GOAL = 10.0  # the aim: any crafted body within ~10x of decoding its JSON


def decode_floor(body: bytes) -> None:
    """Decode every JSON text the body holds, as the format nests them."""
    if body.startswith(b"RTCStatsDump"):
        for line in body.splitlines()[2:]:
            if line.strip():
                orjson.loads(line)
        return
    if body.startswith(b'["'):
        for line in body.splitlines():
            if line.strip():
                orjson.loads(line)
        return
    doc = orjson.loads(body)
    pcs = doc.get("PeerConnections") if isinstance(doc, dict) else None
    for pc in pcs.values() if isinstance(pcs, dict) else ():
        for series in pc.get("stats", {}).values():
            if isinstance(series, dict) and isinstance(series.get("values"), str):
                orjson.loads(series["values"])


def cpu(fn: Callable[[], object], repeat: int) -> float:
    """The least process CPU time of ``repeat`` runs (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def outcome(body: bytes, size: int) -> str:
    try:
        reports = parse_upload(body, UploadContext(max_bytes=size))
    except InvalidInput as e:
        return f"{type(e).__name__}: {str(e)[:100]}"
    return f"accepted: {len(reports)} report(s)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=Settings().max_body_bytes, help="body size (default: the HTTP limit)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--case", default="", help="only the cases whose name holds this")
    args = ap.parse_args()
    print(f"# {machine()}; bodies of about {args.size / 2**20:.1f} MiB")
    worst: tuple[float, str, float, float] | None = None
    for name, make in CASES.items():
        if args.case not in name:
            continue
        body = make(args.size)
        limit = max(args.size, len(body))
        floor = cpu(functools.partial(decode_floor, body), args.repeat)
        parsed = cpu(functools.partial(outcome, body, limit), args.repeat)
        ratio = parsed / floor if floor > 0 else float("inf")
        mb = len(body) / 2**20
        print(f"{name:48s} {mb:5.1f} MiB  orjson {floor * 1000:7.1f} ms ({floor / mb * 1000:6.1f} ms/MiB)  "
              f"readers {parsed * 1000:7.1f} ms ({parsed / mb * 1000:7.1f} ms/MiB)  {ratio:6.1f}x  "
              f"{outcome(body, limit)}", flush=True)
        if worst is None or ratio > worst[0]:
            worst = (ratio, name, parsed, floor)
    if worst is not None:
        ratio, name, parsed, floor = worst
        emit(Row(figure=f"hostile report bodies, worst case ({name})", ratio=f"{ratio:.1f}x",
                 measured=f"{parsed * 1000:.0f} ms CPU", floor=f"{floor * 1000:.0f} ms orjson", goal=f"<= {GOAL:.0f}x",
                 met=ratio <= GOAL))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
