"""Connection-level limits of the ingest server: trickled headers and bodies are cut off, and CORS
answers preflights only for the configured origins (the API key stays required)."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

import httpx

from collector.contract import Model
from collector.http_app import IngestConfig, build_app
from collector.http_server import HeaderDeadlineH11
from tests.example_report import EXAMPLE_BODY
from tests.http_server import serve

KEY = "a-key-of-sixteen-chars"


class Recording:
    def __init__(self) -> None:
        self.published: list[Model] = []

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        self.published.extend(payloads)

    def close(self) -> None:
        pass


def fast_deadline() -> type[HeaderDeadlineH11]:
    return type("FastDeadline", (HeaderDeadlineH11,), {"header_timeout_s": 1.0})


def test_trickled_headers_are_cut_off_but_a_normal_request_is_served() -> None:
    app = build_app(Recording(), IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k"))
    with serve(app, http=fast_deadline()) as base:
        port = int(base.rsplit(":", 1)[1])
        assert httpx.get(f"{base}/healthz").status_code == 200
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            closed = False
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                try:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.2)
                except OSError:
                    closed = True
                    break
            if not closed:
                sock.settimeout(5)
                closed = sock.recv(1024) == b""
            assert closed and time.monotonic() - started < 6


def test_a_trickled_body_is_408_and_nothing_is_published() -> None:
    pub = Recording()
    app = build_app(pub, IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k", body_timeout_s=1.0))
    with serve(app) as base:
        port = int(base.rsplit(":", 1)[1])
        body = EXAMPLE_BODY
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /v1/call-reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            sock.settimeout(5)
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert pub.published == []


def test_cors_preflight_only_for_configured_origins_and_the_key_stays_required() -> None:
    pub = Recording()
    app = build_app(pub, IngestConfig(api_keys={"app": KEY}, max_body_bytes=1 << 20, hash_key=b"k",
                                      cors_origins=("https://app.example.com",)))
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-call-report-id,x-call-id,x-voice-sdk-id"}
    with serve(app) as base, httpx.Client(base_url=base) as client:
        ok = client.options("/call_report", headers={**preflight, "Origin": "https://app.example.com"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "x-voice-sdk-id" in ok.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in ok.headers
        refused = client.options("/call_report", headers={**preflight, "Origin": "https://evil.example.net"})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        assert client.options("/healthz", headers={**preflight, "Origin": "https://app.example.com"}).status_code == 405
        origin = {"Origin": "https://app.example.com", "Content-Type": "application/json"}
        no_key = client.post("/v1/call-reports", content=EXAMPLE_BODY, headers=origin)
        assert no_key.status_code == 401 and pub.published == []
        keyed = client.post("/v1/call-reports", content=EXAMPLE_BODY,
                            headers={**origin, "Authorization": f"Bearer {KEY}"})
        assert keyed.status_code == 202
        assert keyed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert len(pub.published) == 1


def test_without_configured_origins_every_preflight_is_refused() -> None:
    app = build_app(Recording(), IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k"))
    with serve(app) as base:
        r = httpx.options(f"{base}/call_report", headers={"Origin": "https://app.example.com",
                                                          "Access-Control-Request-Method": "POST"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers


def test_a_simple_cross_origin_upload_without_preflight_is_refused() -> None:
    """sendBeacon / text/plain POSTs skip the preflight: the Origin header alone decides."""
    pub = Recording()
    app = build_app(pub, IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k",
                                      cors_origins=("https://app.example.com",)))
    with serve(app) as base, httpx.Client(base_url=base) as client:
        beacon = {"Origin": "https://evil.example.net", "Content-Type": "text/plain"}
        r = client.post("/call_report", content=EXAMPLE_BODY, headers=beacon)
        assert r.status_code == 403 and pub.published == []
        ok = client.post("/v1/call-reports", content=EXAMPLE_BODY,
                         headers={"Origin": "https://app.example.com", "Content-Type": "text/plain"})
        assert ok.status_code == 202 and len(pub.published) == 1
        server_side = client.post("/v1/call-reports", content=EXAMPLE_BODY,
                                  headers={"Content-Type": "text/plain"})
        assert server_side.status_code == 202  # no Origin: not a browser
