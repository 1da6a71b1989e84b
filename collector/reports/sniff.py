"""Decompression and format detection of an uploaded body.

- gzip magic ``1f 8b``: decompressed once, within the upload's limit (gzip inside gzip is refused);
- ``RTCStatsDump`` first line: rtcstats v3;
- a JSON object with ``PeerConnections`` (or ``getUserMedia``): a webrtc-internals dump;
- a JSON object with ``snapshots`` or ``"format": "w3c"``: icewatch's W3C snapshot series;
- a JSON object with ``summary``, ``stats`` or ``android_extra``: a Telnyx call report;
- JSON arrays, one per line, starting with a method name: rtcstats v1.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

from collector.contract import FORMATS, SourceFormat
from collector.errors import InvalidInput, MalformedBody, PayloadTooLarge, UnsupportedFormat
from collector.reports.context import MAX_DECOMPRESSED_BYTES

Format = SourceFormat

GZIP_MAGIC = b"\x1f\x8b"
RTCSTATS_V3_MAGIC = b"RTCStatsDump"


@dataclass(frozen=True)
class Sniffed:
    format: Format
    body: bytes  # decompressed, BOM and leading whitespace removed
    document: object = None  # the parsed JSON document when the whole body is one
    rtcstats_version: int = 1


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body once, never past ``limit`` bytes (a small bomb cannot cost more)."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, limit)
    except zlib.error as e:
        raise MalformedBody(f"invalid gzip body: {e}") from None
    if d.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
    if not d.eof:
        raise MalformedBody("invalid gzip body: truncated")
    return out


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise MalformedBody(f"body is not valid JSON: {e}") from None


def _is_ndjson_arrays(body: bytes) -> bool:
    first = body.split(b"\n", 1)[0].strip()
    try:
        item = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(item, list) and bool(item) and isinstance(item[0], str)


def _classify(document: object) -> Format:
    if isinstance(document, dict):
        if "PeerConnections" in document or "getUserMedia" in document:
            return "webrtc-internals"
        if document.get("format") == "w3c" or "snapshots" in document:
            return "w3c"
        if "summary" in document or "stats" in document or "android_extra" in document:
            return "telnyx"
        keys = ", ".join(sorted(str(k) for k in document)[:8])
        raise UnsupportedFormat(f"unrecognised JSON object (keys: {keys})")
    if isinstance(document, list) and document and isinstance(document[0], str):
        return "rtcstats"
    raise UnsupportedFormat("unrecognised JSON document: expected an object")


def sniff(body: bytes, hint: str | None = None, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> Sniffed:
    if body[:2] == GZIP_MAGIC:
        body = gunzip(body, max_bytes)
        if body[:2] == GZIP_MAGIC:
            raise MalformedBody("gzip inside gzip: compress the body once")
    body = body.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not body:
        raise InvalidInput("empty body")
    if hint is not None and hint not in FORMATS:
        raise UnsupportedFormat(f"unknown format {hint!r}; expected one of {', '.join(FORMATS)}")
    if body.startswith(RTCSTATS_V3_MAGIC):
        if hint not in (None, "rtcstats"):
            raise UnsupportedFormat(f"an RTCStatsDump is not {hint}")
        return Sniffed("rtcstats", body, rtcstats_version=3)
    if hint == "rtcstats" or (hint is None and body[:1] == b"[" and _is_ndjson_arrays(body)):
        return Sniffed("rtcstats", body)
    if body[:1] not in (b"{", b"["):
        raise UnsupportedFormat("unrecognised body: not JSON, NDJSON or an RTCStatsDump")
    document = _json(body)
    fmt: Format
    if hint is None:
        fmt = _classify(document)
    elif hint == "telnyx":
        fmt = "telnyx"
    elif hint == "w3c":
        fmt = "w3c"
    else:
        fmt = "webrtc-internals"
    return Sniffed(fmt, body, document)
