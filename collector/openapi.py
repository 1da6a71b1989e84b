"""The published OpenAPI document of the collector's HTTP API."""

from __future__ import annotations

from typing import Any

from collector.contract import FORMATS

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "path": {"type": "string"}},
}


def _resp(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_UPLOAD_RESPONSES: dict[str, Any] = {
    "202": {
        "description": "Accepted: durably published (Kafka acknowledged, or written in embedded mode)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
    },
    "400": _resp("Malformed body (not JSON, bad gzip, unknown format name)"),
    "401": _resp("Missing or invalid API key"),
    "413": _resp("Body or a normalized report exceeds the size limit"),
    "415": _resp("Unsupported content type"),
    "422": _resp("Well-formed but invalid or unsupported report; `path` names the failing field"),
    "503": _resp("Not accepted: the broker is unavailable; retry after the Retry-After header"),
}

_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "icewatch collector", "version": "1"},
    "paths": {
        "/v1/call-reports": {
            "post": {
                "summary": "Upload a call report in any supported format (gzip accepted)",
                "parameters": [
                    {"name": "format", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": list(FORMATS)}},
                ],
                "requestBody": _BODY,
                "responses": _UPLOAD_RESPONSES,
            }
        },
        "/call_report": {
            "post": {
                "summary": "The Telnyx WebRTC SDK's own upload route (x-call-report-id, x-call-id)",
                "requestBody": _BODY,
                "responses": _UPLOAD_RESPONSES,
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "schemas": {
            "Error": _ERROR,
            "Accepted": {
                "type": "object",
                "properties": {
                    "accepted": {"type": "integer"},
                    "call_ids": {"type": "array", "items": {"type": "string"}},
                    "report_ids": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}
