"""Envelope encoding: payload <-> JSON bytes on Kafka."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import orjson
from pydantic import Field, ValidationError
from pydantic_core import PydanticSerializationError

from collector.contract import (
    SCHEMA_VERSION,
    CallReport,
    Envelope,
    Model,
    schema_of,
    utcnow,
)


def encode(payload: Model, *, source_host: str, tenant: str, produced_at: datetime | None = None) -> bytes:
    """The envelope's JSON with the payload written by the model's own (Rust) serializer straight
    into bytes: the same document as ``model_dump(mode="json", exclude_none=True)`` inside the
    envelope, without the intermediate dict (a 300-interval report: ~0.7 ms -> ~0.5 ms)."""
    schema = schema_of(payload)
    head = orjson.dumps(
        {
            "schema": schema,
            "version": SCHEMA_VERSION[schema],
            "produced_at": (produced_at or utcnow()).isoformat(),
            "source_host": source_host,
            "tenant": tenant,
        }
    )
    try:
        body = type(payload).__pydantic_serializer__.to_json(payload, exclude_none=True)
    except PydanticSerializationError as exc:  # e.g. a lone surrogate: what orjson raised before
        raise TypeError(str(exc)) from None
    return b"".join((head[:-1], b',"payload":', body, b"}"))


def decode_envelope(value: bytes) -> Envelope:
    """The envelope of one message (its tenant is known even when its payload is bad)."""
    return Envelope.model_validate(orjson.loads(value))


def decode(value: bytes) -> tuple[Envelope, Model]:
    """Parse one message. Raises orjson.JSONDecodeError, pydantic.ValidationError or KeyError."""
    env = Envelope.model_validate(orjson.loads(value))
    return env, env.decode()


class _CallReportEnvelope(Envelope):
    """An envelope whose payload is validated as a call report in the same pass as the JSON parse."""

    schema_name: Literal["call_report"] = Field(alias="schema")
    payload: CallReport  # type: ignore[assignment]


# How encode() starts every call report (orjson writes the keys in order, without spaces).
_CALL_REPORT_HEAD = b'{"schema":"call_report",'


def decode_call_report(value: bytes) -> tuple[Envelope, CallReport] | None:
    """A call report message in one pass (pydantic parses the bytes and validates envelope and
    payload in Rust: no orjson document, no dict[str, Any] copy, contract.Time's era check in Rust too;
    ~1.2 ms less per 300-interval report), or None: the message is not a call report as encode()
    writes it, or this pass refuses it. On None the caller decodes in two steps (decode_envelope,
    then Envelope.decode), which accept the same messages with the same values, name what is wrong
    and keep the tenant of a valid envelope around a bad payload. Every constraint is the
    contract's own: nothing is trusted because a collector may have checked it (any producer with
    access can write the topic)."""
    if not value.startswith(_CALL_REPORT_HEAD):
        return None
    try:
        env = _CallReportEnvelope.model_validate_json(value)
    except ValidationError:
        return None
    return env, env.payload
