"""What the HTTP layer (or the CLI) knows about an upload besides its body."""

from __future__ import annotations

from dataclasses import dataclass

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024  # files given to the CLI; HTTP passes its body limit


@dataclass(frozen=True)
class UploadContext:
    client_address: str | None = None  # the request's source address
    user_agent: str | None = None  # the request's User-Agent header
    format_hint: str | None = None  # one of collector.contract.FORMATS
    call_id_hint: str | None = None  # HTTP header x-call-id (or a file name stem)
    # HTTP header x-call-report-id. Kept for tracing only (a note of the report): report ids are
    # derived from the content (call id, segment, first interval) so that retries converge.
    report_id_hint: str | None = None
    voice_sdk_id_hint: str | None = None  # HTTP header x-voice-sdk-id (Telnyx), kept as a note
    hash_key: bytes = b""  # HMAC-SHA256 key for phone numbers (never stored in clear)
    max_bytes: int = MAX_DECOMPRESSED_BYTES  # limit of the body once decompressed
