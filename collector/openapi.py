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
    "400": _resp("Malformed body (not JSON, bad or truncated gzip, gzip inside gzip, unknown format name)"),
    "401": _resp("Missing or invalid API key"),
    "403": _resp("The request's Origin is not an allowed CORS origin"),
    "408": _resp("The body did not arrive in time"),
    "409": _resp("Embedded mode: the call and segment are stored from another format"),
    "413": _resp("Body, a normalized report, or a count (snapshots, peer connections) exceeds its limit"),
    "415": _resp("Unsupported content type or content encoding"),
    "422": _resp("Well-formed but invalid, out of range, outside the accepted time window, or unsupported; "
                 "`path` names the failing field"),
    "503": _resp("Not accepted: the broker or store is unavailable, or too many connections; retry after "
                 "the Retry-After header"),
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
        "/v1/probe-results": {
            "post": {
                "summary": "Probe results of a remote vantage point: a JSON array or NDJSON of ProbeResult objects "
                           "(at most 1,000)",
                "requestBody": _BODY,
                "responses": {
                    "202": {"description": "Accepted: durably published",
                            "content": {"application/json": {"schema": {"type": "object", "properties": {
                                "accepted": {"type": "integer"}}}}}},
                    "400": _resp("Not JSON or NDJSON"),
                    "401": _resp("Missing or invalid API key"),
                    "413": _resp("More than 1,000 results, or the body over its limit"),
                    "422": _resp("A result is invalid, or its `at` lies more than 89 days back (the probes "
                                 "table keeps 90) or 1 day ahead; `path` names it"),
                    "503": _resp("Not accepted; retry"),
                },
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
