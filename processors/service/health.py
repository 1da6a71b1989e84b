"""The processor's HTTP endpoint: /healthz (every consumer loop alive), /metrics (Prometheus), and
the routes it is handed: GET (the query route when it holds the embedded store) and POST (the SQL
route; a body needs a Content-Length of at most ``max_post_bytes``), and ``pages``, which answers
every other GET (the built-in dashboard pages: HTML, scripts and JSON)."""

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
# (request body, request headers) -> (status, content type, body)
PostRoute = Callable[[bytes, Mapping[str, str]], tuple[int, str, bytes]]
# (path, query string, request headers) -> (status, content type, body, more response headers)
PagesRoute = Callable[[str, str, Mapping[str, str]], tuple[int, str, bytes, Mapping[str, str]]]


def serve_health(port: int, registry: CollectorRegistry, healthy: Callable[[], bool],
                 host: str = "127.0.0.1", routes: Mapping[str, GetRoute] | None = None,
                 post_routes: Mapping[str, PostRoute] | None = None,
                 max_post_bytes: int = 1024 * 1024, pages: PagesRoute | None = None) -> ThreadingHTTPServer:
    extra = dict(routes or {})
    posts = dict(post_routes or {})

    class Handler(BaseHTTPRequestHandler):
        timeout = 60  # seconds a client may take to send a request (a trickled body ends here)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path not in posts:
                self._send(404, "text/plain", b"not found")
                return
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self._send(411, "application/json", b'{"error":"a Content-Length is required"}')
                return
            if int(length) > max_post_bytes:
                self._send(413, "application/json", b'{"error":"the body is too large"}')
                self.close_connection = True
                return
            body = self.rfile.read(int(length))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, ctype, out = posts[path](body, headers)
            self._send(status, ctype, out)

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
            elif pages is not None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, ctype, body, more = pages(url.path, url.query, headers)
                self._send(status, ctype, body, more)
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, ctype: str, body: bytes, more: Mapping[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (more or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet: metrics are scraped often
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
