"""The processor's HTTP endpoint: /healthz (every consumer loop alive), /metrics (Prometheus), and
the GET routes it is handed (the query route when it holds the embedded store)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

# (query parameters, request headers) -> (status, JSON body)
GetRoute = Callable[[Mapping[str, str], Mapping[str, str]], tuple[int, dict[str, Any]]]


def serve_health(port: int, registry: CollectorRegistry, healthy: Callable[[], bool],
                 host: str = "127.0.0.1", routes: Mapping[str, GetRoute] | None = None) -> ThreadingHTTPServer:
    extra = dict(routes or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                ok = healthy()
                body = b'{"status":"ok"}' if ok else b'{"status":"unhealthy"}'
                self._send(200 if ok else 503, "application/json", body)
            elif url.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif url.path in extra:
                try:
                    params = dict(parse_qsl(url.query, max_num_fields=64))
                except ValueError:
                    status, doc = 400, {"error": "too many query parameters"}
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, doc = extra[url.path](params, headers)
                self._send(status, "application/json", json.dumps(doc, default=str).encode())
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet: metrics are scraped often
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
