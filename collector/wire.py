"""Envelope encoding: payload <-> JSON bytes on Kafka."""

from __future__ import annotations

from datetime import datetime

import orjson
from pydantic_core import PydanticSerializationError

from collector.contract import SCHEMA_VERSION, Envelope, Model, schema_of, utcnow


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
