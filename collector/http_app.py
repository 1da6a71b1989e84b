"""HTTP ingest of SDK call reports (ASGI, Starlette).

POST /v1/call-reports   any supported format (detected, or ?format= / X-Icewatch-Format)
POST /call_report       the Telnyx SDK's own route and headers (x-call-report-id, x-call-id)
GET  /healthz, /metrics, /openapi.json

202 only after the publisher acknowledged (Kafka acks=all, or the embedded write);
503 + Retry-After when it cannot; 4xx with the failing field otherwise, and the raw body
goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.auth import app_for_key, check_tenant, key_from_headers
from collector.contract import FORMATS, CallReport, DeadLetter, ProbeResult, dead_letter_raw, utcnow
from collector.errors import (
    ConflictingReport,
    InvalidInput,
    MalformedBody,
    PayloadTooLarge,
    Unavailable,
    UnsupportedFormat,
)
from collector.openapi import OPENAPI
from collector.publisher import Publisher
from collector.reports import UploadContext, parse_upload
from collector.reports.probe_results import check_probe_times, parse_probe_results
from collector.reports.window import check_queryable

log = logging.getLogger(__name__)

ACCEPTED_TYPES = ("application/json", "application/x-ndjson", "text/plain", "application/gzip",
                  "application/octet-stream")


@dataclass(frozen=True)
class IngestConfig:
    api_keys: dict[str, str]  # app id -> key; empty: open
    max_body_bytes: int
    hash_key: bytes
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
    body_timeout_s: float = 30.0  # the whole body must arrive within this
    cors_origins: tuple[str, ...] = ()  # origins whose pages may POST reports; "*" only when configured

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: the first X-Forwarded-For hop when the peer is a trusted proxy."""
        if peer is None or not forwarded_for:
            return peer
        try:
            trusted = any(ip_address(peer) in net for net in self.trusted_proxies)
        except ValueError:
            return peer
        first = forwarded_for.split(",")[0].strip()
        return first if trusted and first else peer


class Rejected(Exception):
    def __init__(self, status: int, error: str, path: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.path = path
        self.headers = headers or {}


class Ingest:
    def __init__(self, publisher: Publisher, config: IngestConfig) -> None:
        self.publisher = publisher
        self.config = config
        self.registry = CollectorRegistry()
        self.requests = Counter("icewatch_collector_requests", "Upload requests by outcome", ["status"],
                                registry=self.registry)
        self.reports = Counter("icewatch_collector_reports", "Call reports accepted", registry=self.registry)
        self.latency = Histogram("icewatch_collector_request_seconds", "Upload latency (to acknowledged)",
                                 registry=self.registry)

    def authenticate(self, request: Request) -> str:
        """The app id (tenant) of the request's API key."""
        if not self.config.api_keys:
            try:
                return check_tenant(request.headers.get("x-icewatch-app", "default"), "x-icewatch-app")
            except InvalidInput as exc:
                raise Rejected(400, exc.message, exc.path) from exc
        found = app_for_key(self.config.api_keys, key_from_headers(request.headers))
        if found is None:
            raise Rejected(401, "missing or invalid API key (Authorization: Bearer <key> or X-API-Key)")
        return found

    async def read_body(self, request: Request) -> bytes:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ACCEPTED_TYPES:
            raise Rejected(415, f"unsupported content type {ctype or '(none)'!r}; send application/json")
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            raise Rejected(415, f"unsupported content encoding {encoding!r}; send gzip or no encoding")
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise Rejected(413, f"body of {declared} bytes exceeds the limit of {limit}")
        chunks: list[bytes] = []
        size = 0

        async def receive_all() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Rejected(413, f"body exceeds the limit of {limit} bytes")
                chunks.append(chunk)

        try:
            await asyncio.wait_for(receive_all(), timeout=self.config.body_timeout_s)
        except TimeoutError:
            raise Rejected(408, f"the body did not arrive within {self.config.body_timeout_s:g} s") from None
        return b"".join(chunks)  # a gzip body is decompressed once, by the parser, within the same limit

    def accept(self, body: bytes, ctx: UploadContext, tenant: str, origin: str) -> list[CallReport]:
        """Parse and publish (blocking); raises Rejected."""
        try:
            reports = parse_upload(body, ctx)
        except InvalidInput as exc:
            status = 413 if isinstance(exc, PayloadTooLarge) else 400 if isinstance(exc, MalformedBody) else 422
            self.dead_letter(body, exc, tenant, origin)
            raise Rejected(status, exc.message, exc.path) from exc
        if not reports:
            exc2 = UnsupportedFormat("the upload contains no call")
            self.dead_letter(body, exc2, tenant, origin)
            raise Rejected(422, exc2.message)
        try:
            now = utcnow()
            for report in reports:
                check_queryable(report, now)
        except InvalidInput as exc:
            self.dead_letter(body, exc, tenant, origin)
            raise Rejected(422, exc.message, exc.path) from exc
        try:
            self.publisher.publish(reports, tenant=tenant)
        except InvalidInput as exc:  # refused by what it was written to (size, conflict, the store)
            self.dead_letter(body, exc, tenant, origin)
            status = 413 if isinstance(exc, PayloadTooLarge) else 409 if isinstance(exc, ConflictingReport) else 422
            raise Rejected(status, exc.message, exc.path) from exc
        except Unavailable as exc:
            raise Rejected(503, f"not accepted, retry later: {exc}",
                           headers={"Retry-After": str(max(1, int(exc.retry_after)))}) from exc
        return reports

    def accept_probes(self, body: bytes, tenant: str, origin: str) -> list[ProbeResult]:
        """Validate and publish probe results (blocking); raises Rejected. All or none."""
        try:
            results = parse_probe_results(body, self.config.max_body_bytes)
            check_probe_times(results, utcnow())
            self.publisher.publish(results, tenant=tenant)
        except InvalidInput as exc:
            self.dead_letter(body, exc, tenant, origin, intended="probe_result")
            raise Rejected(413 if isinstance(exc, PayloadTooLarge) else 400 if isinstance(exc, MalformedBody)
                           else 422, exc.message, exc.path) from exc
        except Unavailable as exc:
            raise Rejected(503, f"not accepted, retry later: {exc}",
                           headers={"Retry-After": str(max(1, int(exc.retry_after)))}) from exc
        return results

    def dead_letter(self, body: bytes, exc: InvalidInput, tenant: str, origin: str,
                    intended: str = "call_report") -> None:
        raw, truncated, size = dead_letter_raw(body)
        dl = DeadLetter(stage="collector", intended=intended, reason=exc.message, path=exc.path,
                        raw=raw, raw_truncated=truncated, raw_bytes=size, origin=origin)
        try:
            self.publisher.publish([dl], tenant=tenant)
        except Unavailable as unavailable:
            # The rejection must not be lost either: make the client retry until it can be recorded.
            raise Rejected(503, f"input rejected ({exc}) but the dead-letter stream is unavailable; retry",
                           headers={"Retry-After": str(max(1, int(unavailable.retry_after)))}) from unavailable


def _error(exc: Rejected) -> JSONResponse:
    content: dict[str, Any] = {"error": exc.error}
    if exc.path:
        content["path"] = exc.path
    return JSONResponse(content, status_code=exc.status, headers=exc.headers)


def build_app(publisher: Publisher, config: IngestConfig, extra_routes: Sequence[Route] = ()) -> Starlette:
    ingest = Ingest(publisher, config)

    async def upload(request: Request, telnyx_route: bool) -> Response:
        with ingest.latency.time():
            try:
                tenant = ingest.authenticate(request)
                fmt = request.query_params.get("format") or request.headers.get("x-icewatch-format")
                if telnyx_route:
                    fmt = "telnyx"
                if fmt is not None and fmt not in FORMATS:
                    raise Rejected(400, f"unknown format {fmt!r}; one of {', '.join(FORMATS)}", "format")
                body = await ingest.read_body(request)
                client = request.client.host if request.client else None
                ctx = UploadContext(
                    client_address=config.client_address(client, request.headers.get("x-forwarded-for")),
                    user_agent=request.headers.get("user-agent"),
                    format_hint=fmt,
                    call_id_hint=request.headers.get("x-call-id"),
                    report_id_hint=request.headers.get("x-call-report-id"),
                    voice_sdk_id_hint=request.headers.get("x-voice-sdk-id"),
                    hash_key=config.hash_key,
                    max_bytes=config.max_body_bytes,
                )
                reports = await run_in_threadpool(ingest.accept, body, ctx, tenant, f"http:{client}")
            except Rejected as exc:
                ingest.requests.labels(str(exc.status)).inc()
                return _error(exc)
        ingest.requests.labels("202").inc()
        ingest.reports.inc(len(reports))
        return JSONResponse(
            {"accepted": len(reports), "call_ids": [r.call_id for r in reports],
             "report_ids": [r.report_id for r in reports]},
            status_code=202,
        )

    async def probe_results(request: Request) -> Response:
        """Probe results from a remote vantage point: a JSON array or NDJSON of ProbeResult objects."""
        try:
            tenant = ingest.authenticate(request)
            body = await ingest.read_body(request)
            client = request.client.host if request.client else None
            results = await run_in_threadpool(ingest.accept_probes, body, tenant, f"http:{client}")
        except Rejected as exc:
            ingest.requests.labels(str(exc.status)).inc()
            return _error(exc)
        ingest.requests.labels("202").inc()
        return JSONResponse({"accepted": len(results)}, status_code=202)

    async def call_reports(request: Request) -> Response:
        return await upload(request, telnyx_route=False)

    async def telnyx(request: Request) -> Response:
        return await upload(request, telnyx_route=True)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(ingest.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    routes = [
        Route(INGEST_PATHS[0], call_reports, methods=["POST"]),
        Route(INGEST_PATHS[1], telnyx, methods=["POST"]),
        Route(INGEST_PATHS[2], probe_results, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *extra_routes,
    ]
    app = Starlette(routes=routes, middleware=[Middleware(IngestCors, origins=config.cors_origins)])
    app.state.metrics_registry = ingest.registry  # for routes showing this process's own metrics
    return app


INGEST_PATHS = ("/v1/call-reports", "/call_report", "/v1/probe-results")
# What SDKs send with a report (the Telnyx JS SDK: x-call-report-id, x-call-id, x-voice-sdk-id).
CORS_HEADERS = ["content-type", "content-encoding", "authorization", "x-api-key", "x-call-report-id", "x-call-id",
                "x-voice-sdk-id", "x-icewatch-app", "x-icewatch-format"]


class IngestCors:
    """CORS on the ingest routes only: preflights from the configured origins are answered, others
    refused (400); an upload that names another origin is refused too (403), since a browser sends
    "simple" requests (text/plain, sendBeacon) without asking first. No credentials (cookies) are
    ever allowed, and an API key is still required."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=["POST"],
                                   allow_headers=CORS_HEADERS, allow_credentials=False, max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in INGEST_PATHS:
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        if origin is not None and scope["method"] != "OPTIONS" and "*" not in self.origins \
                and origin not in self.origins:
            refused = JSONResponse({"error": f"uploads from origin {origin[:100]!r} are not allowed "
                                             "(ICEWATCH_CORS_ORIGINS)"}, status_code=403)
            await refused(scope, receive, send)
            return
        await self.cors(scope, receive, send)
