"""Envelope encoding: payload <-> JSON bytes on Kafka."""

from __future__ import annotations

from datetime import datetime

import orjson

from collector.contract import SCHEMA_VERSION, Envelope, Model, schema_of, utcnow


def encode(payload: Model, *, source_host: str, tenant: str, produced_at: datetime | None = None) -> bytes:
    schema = schema_of(payload)
    return orjson.dumps(
        {
            "schema": schema,
            "version": SCHEMA_VERSION[schema],
            "produced_at": (produced_at or utcnow()).isoformat(),
            "source_host": source_host,
            "tenant": tenant,
            "payload": payload.model_dump(mode="json", exclude_none=True),
        }
    )


def decode_envelope(value: bytes) -> Envelope:
    """The envelope of one message (its tenant is known even when its payload is bad)."""
    return Envelope.model_validate(orjson.loads(value))


def decode(value: bytes) -> tuple[Envelope, Model]:
    """Parse one message. Raises orjson.JSONDecodeError, pydantic.ValidationError or KeyError."""
    env = Envelope.model_validate(orjson.loads(value))
    return env, env.decode()
