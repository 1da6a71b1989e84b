"""One call made by the unmodified Telnyx WebRTC SDK (npm ``@telnyx/webrtc``) in the Chromium testbed.

The page (served from 127.0.0.1 inside the testbed's namespace) loads fake_verto.js, which replaces
only ``window.WebSocket`` with an in-page Verto server, then the SDK's own UMD bundle from
node_modules, then call.js, which drives ``TelnyxRTC`` through login, a call and the server's
hangup. The SDK's host is an icewatch HTTP ingest (the ASGI app passed in) listening on 127.0.0.1
inside the same namespace, so the SDK's call-report collector posts its own body to icewatch's
``/call_report`` across origins (CORS preflight included). ``record_sdk_call`` returns what the
page saw and every upload icewatch received, byte for byte.

Install the SDK with ``bash deploy/local/npm_assets.sh tests/telnyx_sdk`` (``npm ci``, cached; ``make test`` runs it).
Regenerate the committed report bodies with
``.venv/bin/python -m tests.telnyx_sdk.sdk_call --fixtures tests/fixtures/telnyx-sdk``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.cdp import CdpClient
from tests.webrtc_testbed import Scenario, TestbedError, in_netns, open_page, serve_pages, testbed

HERE = Path(__file__).parent
SDK_VERSION = "2.27.10"
SDK_PACKAGE = HERE / "node_modules" / "@telnyx" / "webrtc"
SDK_BUNDLE = SDK_PACKAGE / "lib" / "bundle.js"
SCENARIOS = (Scenario.HOST, Scenario.RELAY_UDP, Scenario.RELAY_TCP)
CALL_REPORT_PATH = "/call_report"


@dataclass(frozen=True)
class Upload:
    """One POST to /call_report as icewatch received it, and icewatch's answer."""

    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int


@dataclass
class UploadRecorder:
    """ASGI middleware: passes everything to ``app``; notes every request's method and path, and keeps
    each /call_report POST (headers, body) with icewatch's status."""

    app: ASGIApp
    uploads: list[Upload] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path), in arrival order

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((str(scope["method"]), str(scope["path"])))
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != CALL_REPORT_PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status: list[int] = []

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive_body, send_status)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.uploads.append(Upload(headers, b"".join(chunks), status[0] if status else 0))


@dataclass(frozen=True)
class SdkCall:
    """A finished SDK call: what the page saw and what icewatch received."""

    scenario: Scenario
    call_report_id: str
    voice_sdk_id: str
    ice_servers: list[dict[str, Any]]  # what the SDK was given (RTCIceServer objects)
    page: dict[str, Any]  # callId, states, warnings, errors, sdkSent, serverSent, socketUrls, ...
    uploads: list[Upload]
    requests: list[tuple[str, str]]  # every (method, path) icewatch's ingest received
    page_origin: str
    turn_log: str


def sdk_problems() -> list[str]:
    """What is missing to load the SDK in the page (empty when it is installed at the pinned version)."""
    try:
        version = json.loads((SDK_PACKAGE / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return [f"@telnyx/webrtc is not installed in {HERE}: run `bash deploy/local/npm_assets.sh tests/telnyx_sdk`"]
    if version != SDK_VERSION:
        return [f"@telnyx/webrtc {version} is installed in {HERE}, not {SDK_VERSION}: "
                "run `bash deploy/local/npm_assets.sh tests/telnyx_sdk`"]
    if not SDK_BUNDLE.is_file():
        return [f"{SDK_BUNDLE} is missing: run `bash deploy/local/npm_assets.sh --force tests/telnyx_sdk`"]
    return []


def _pages() -> dict[str, tuple[bytes, str]]:
    js = "text/javascript; charset=utf-8"
    html = (
        "<!doctype html><meta charset=utf-8><title>icewatch Telnyx SDK testbed</title>\n"
        '<script src="/fake_verto.js"></script>\n'
        '<script src="/telnyx-webrtc.js"></script>\n'
        '<script src="/call.js"></script>\n'
    )
    return {
        "/": (html.encode(), "text/html; charset=utf-8"),
        "/fake_verto.js": ((HERE / "fake_verto.js").read_bytes(), js),
        "/telnyx-webrtc.js": (SDK_BUNDLE.read_bytes(), js),
        "/call.js": ((HERE / "call.js").read_bytes(), js),
    }


@contextmanager
def _serve_in_netns(netns: str, app: ASGIApp) -> Iterator[int]:
    """Serve ``app`` with uvicorn on 127.0.0.1 inside ``netns`` (the socket is made there); the port."""

    def bind() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        return sock

    sock = in_netns(netns, bind, timeout=5)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name="icewatch-ingest", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise TestbedError("icewatch's ingest (uvicorn) did not start inside the namespace")
            time.sleep(0.02)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def record_sdk_call(
    scenario: Scenario | str, seconds: int, ingest: Callable[[str], ASGIApp], call_report_id: str | None = None
) -> SdkCall:
    """Place one SDK call in a fresh testbed; ``ingest(page_origin)`` builds the icewatch app.

    ``seconds``: how long the call stays up once the SDK says it is active. Raises TestbedError
    when a prerequisite is missing or the page cannot run.
    """
    scenario = Scenario(scenario)
    if scenario not in SCENARIOS:
        raise ValueError(f"the SDK call runs only {', '.join(SCENARIOS)}")
    problems = sdk_problems()
    if problems:
        raise TestbedError("cannot run the Telnyx SDK call: " + "; ".join(problems))
    report_id = call_report_id or f"testbed-{uuid.uuid4()}"
    voice_sdk_id = f"testbed-voice-sdk-{scenario.value}"
    pages = _pages()
    with testbed(scenario) as bed, serve_pages(bed.netns, pages) as origin:
        recorder = UploadRecorder(ingest(origin))
        with _serve_in_netns(bed.netns, recorder) as port:
            config = {
                "host": f"ws://127.0.0.1:{port}",
                "callReportId": report_id,
                "voiceSdkId": voice_sdk_id,
                "iceServers": bed.caller_config["iceServers"],
                "forceRelayCandidate": bed.caller_config["iceTransportPolicy"] == "relay",
                "seconds": seconds,
            }
            timeout = seconds + 60.0
            devtools = bed.devtools_port

            def drive() -> str:
                client = CdpClient("127.0.0.1", devtools)
                try:
                    session = open_page(client, origin + "/", 'typeof icewatchTelnyxCall === "function"')
                    text = client.evaluate(f"icewatchTelnyxCall({json.dumps(config)})", session, timeout=timeout)
                finally:
                    client.close()
                if not isinstance(text, str):
                    raise TestbedError(f"the page returned {type(text).__name__}, not its summary text")
                return text

            page: dict[str, Any] = json.loads(in_netns(bed.netns, drive, timeout + 15))
        bed.stop()
        turn_log = bed.turn_log()
    uploads, requests = list(recorder.uploads), list(recorder.requests)
    return SdkCall(scenario, report_id, voice_sdk_id, config["iceServers"], page, uploads, requests, origin, turn_log)


# --------------------------------------------------------------------------------------------
# Fixtures: the SDK's own report bodies
# --------------------------------------------------------------------------------------------


def _fixture_ingest(store_dir: Path) -> tuple[Callable[[str], ASGIApp], Callable[[], None]]:
    """An icewatch ingest on an embedded chDB store in ``store_dir``, and how to close the store."""
    from collector.http_app import IngestConfig, build_app
    from processors.facts.call_facts import FactsEnv
    from processors.rows.builder import RowBuilder
    from processors.service.embedded import EmbeddedPublisher
    from processors.store.chdb import ChdbSink
    from processors.store.migrate import migrate

    store = ChdbSink(store_dir)
    migrate(store)

    def ingest(origin: str) -> ASGIApp:
        config = IngestConfig(api_keys={}, max_body_bytes=8 << 20, hash_key=b"fixtures", cors_origins=(origin,))
        return build_app(EmbeddedPublisher(store, RowBuilder(FactsEnv())), config)

    return ingest, store.close


def write_fixtures(directory: Path, seconds: int) -> list[Path]:
    """One final report body per scenario, as the SDK posted it, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="icewatch-telnyx-fixtures-") as tmp:
        ingest, close = _fixture_ingest(Path(tmp) / "store")
        try:
            for scenario in SCENARIOS:
                call = record_sdk_call(scenario, seconds, ingest, call_report_id=f"testbed-{scenario.value}")
                if call.page["errors"] or not call.uploads:
                    raise TestbedError(f"the {scenario} call failed: {call.page}")
                upload = call.uploads[-1]
                path = directory / f"{scenario.value}.json"
                path.write_text(json.dumps(json.loads(upload.body), indent=1) + "\n")
                headers = {k: v for k, v in upload.headers.items() if k.startswith("x-") or k == "content-type"}
                (directory / f"{scenario.value}.headers.json").write_text(json.dumps(headers, indent=1) + "\n")
                written += [path]
        finally:
            close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fixtures", type=Path, required=True, help="write one report body per scenario here")
    parser.add_argument("--seconds", type=int, default=6, help="how long each call stays up once active")
    args = parser.parse_args()
    for path in write_fixtures(args.fixtures, args.seconds):
        print(path)


if __name__ == "__main__":
    main()
