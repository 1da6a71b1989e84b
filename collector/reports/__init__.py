"""The pure parsing layer for SDK call reports: bytes in, canonical ``CallReport`` objects out.

No I/O besides ``parse_file``; no Kafka, ClickHouse or HTTP imports. ``parse_upload`` raises only
``collector.errors.InvalidInput`` (and its subclasses ``UnsupportedFormat``,
``PayloadTooLarge``) for bad input, with the failing JSON path when there is one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from pydantic import ValidationError

from collector.contract import FORMATS, CallReport
from collector.errors import InvalidInput
from collector.reports import rtcstats, telnyx, w3c, webrtc_internals
from collector.reports.budget import DUMP_OBJECT_BYTES, DUMP_SAMPLE_BYTES, Budget
from collector.reports.context import UploadContext
from collector.reports.sniff import sniff as _sniff

__all__ = ["FORMATS", "UploadContext", "parse_file", "parse_upload"]


def _dump_base(body: bytes, ctx: UploadContext) -> str:
    """The call id prefix of a multi-connection dump: the hint (file stem, x-call-id) or a
    digest of the content, so the same dump always yields the same call ids."""
    if ctx.call_id_hint:
        return ctx.call_id_hint
    return "dump-" + hashlib.sha256(body).hexdigest()[:16]


def _canonical_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(body: bytes, ctx: UploadContext) -> list[CallReport]:
    """Detect and normalize; a value the canonical report cannot hold (collector/contract.py's
    limits) is InvalidInput naming the canonical field."""
    try:
        return _parse_format(body, ctx)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidInput(f"{first['msg']}{more}", _canonical_path(first["loc"])) from None


def _parse_format(body: bytes, ctx: UploadContext) -> list[CallReport]:
    found = _sniff(body, ctx.format_hint, ctx.max_bytes)
    size = len(found.body)  # the work the upload may cause is in proportion (collector/reports/budget.py)
    if found.format == "telnyx":
        return telnyx.parse(found.document, ctx, Budget.for_body(size))
    if found.format == "w3c":
        return w3c.parse(found.document, ctx, Budget.for_body(size))
    if found.format == "webrtc-internals":
        budget = Budget.for_body(size, sample_bytes=DUMP_SAMPLE_BYTES, object_bytes=DUMP_OBJECT_BYTES)
        return webrtc_internals.parse(found.document, ctx, _dump_base(found.body, ctx), budget)
    base = _dump_base(found.body, ctx)
    if found.rtcstats_version == 3:
        return rtcstats.parse_v3(found.body, ctx, base, Budget.for_body(size))
    return rtcstats.parse_v1(found.body, ctx, base, Budget.for_body(size))


def parse_upload(body: bytes, ctx: UploadContext) -> list[CallReport]:
    """Gunzip, detect the format (or trust ``ctx.format_hint``) and normalize.

    Returns one CallReport per call (Telnyx, W3C) or per peer connection (dumps). Raises
    InvalidInput/UnsupportedFormat/PayloadTooLarge for bad input and nothing else.
    """
    try:
        return _parse(body, ctx)
    except InvalidInput:
        raise
    except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError) as e:
        # A parser bug must not turn bad input into a 500; the message keeps the cause.
        raise InvalidInput(f"malformed input ({type(e).__name__}: {e})") from e


def parse_file(path: str | Path, ctx: UploadContext | None = None) -> list[CallReport]:
    """Parse a capture on disk (``icewatch import/explain``). Dump call ids use the file stem."""
    p = Path(path)
    base = ctx or UploadContext()
    if base.call_id_hint is None:
        base = dataclasses.replace(base, call_id_hint=p.stem)
    return parse_upload(p.read_bytes(), base)
