"""Browser uploads across origins, in real headless Chromium: a page from an allowed origin uploads a
report with ``fetch`` and the Telnyx SDK's headers (so the browser sends a CORS preflight); a page
from another origin is blocked by the browser. The store shows which call arrived."""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.http_app import IngestConfig, build_app
from processors.facts.call_facts import FactsEnv
from processors.rows.builder import RowBuilder
from processors.service.embedded import EmbeddedPublisher
from processors.store.chdb import ChdbSink
from processors.store.migrate import migrate
from tests.cdp import CdpClient, CdpError, fetch_json
from tests.http_server import free_port, serve
from tests.integration.test_hostile_clients import telnyx
from tests.webrtc_testbed import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.chromium

PAGE = b"<!doctype html><html><body>an SDK page</body></html>"


@contextlib.contextmanager
def page_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(workdir: Path) -> Iterator[int]:
    port = free_port()
    profile = workdir / "profile"
    profile.mkdir()
    log = workdir / "chromium.out"
    with log.open("wb") as out:
        proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                 "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={port}"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch_json("127.0.0.1", port, "/json/version", timeout=1.0)
                break
            except (OSError, CdpError, ValueError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chromium did not start:\n{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def upload_from(devtools_port: int, page_url: str, collector: str, call_id: str) -> str:
    """Open ``page_url`` and, from it, POST a Telnyx report the way the SDK does; the outcome as text."""
    body = json.dumps(telnyx(call_id))
    script = f"""(async () => {{
      try {{
        const r = await fetch({json.dumps(collector + "/call_report")}, {{
          method: "POST", body: {json.dumps(body)},
          headers: {{"content-type": "application/json", "x-call-report-id": "r-1",
                     "x-call-id": {json.dumps(call_id)}, "x-voice-sdk-id": "sdk-1"}}}});
        return "status " + r.status;
      }} catch (e) {{ return "blocked " + e.message; }}
    }})()"""
    client = CdpClient("127.0.0.1", devtools_port)
    try:
        target = client.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = client.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        client.call("Page.navigate", {"url": page_url}, session_id=session)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(CdpError):
                if client.evaluate("location.href", session, timeout=5) == page_url + "/":
                    break
            assert time.monotonic() < deadline, f"{page_url} did not load"
            time.sleep(0.05)
        result = client.evaluate(script, session, timeout=30)
        return str(result)
    finally:
        client.close()


def test_an_allowed_origin_uploads_and_another_is_blocked(tmp_path: Path) -> None:
    store = ChdbSink(tmp_path / "store")
    migrate(store)
    try:
        with page_server() as allowed, page_server() as other:
            app = build_app(EmbeddedPublisher(store, RowBuilder(FactsEnv())),
                            IngestConfig(api_keys={}, max_body_bytes=1 << 20, hash_key=b"k", cors_origins=(allowed,)))
            with serve(app) as collector, chromium(tmp_path) as devtools:
                ok_call, blocked_call = f"cors-ok-{uuid.uuid4().hex[:8]}", f"cors-no-{uuid.uuid4().hex[:8]}"
                assert upload_from(devtools, allowed, collector, ok_call) == "status 202"
                assert upload_from(devtools, other, collector, blocked_call).startswith("blocked")
        stored = {r["call_id"] for r in store.query("SELECT call_id FROM calls FINAL")}
        assert ok_call in stored and blocked_call not in stored
    finally:
        store.close()
