"""Real WebRTC calls for tests: headless Chromium and coturn inside a network namespace.

``run_call(scenario, seconds)`` places one call between two RTCPeerConnections in a headless
Chromium page and returns the caller's report in the icewatch W3C format
(``{"format": "w3c", "call_id", "sdk", "browser", "ice_servers", "ice_transport_policy",
"events", "snapshots"}``). ``record_call`` also returns coturn's log of the call.

Each call gets its own pair of network namespaces (a veth with addresses from the
benchmarking range 198.18.0.0/15; the peer namespace holds nothing else), its own coturn and
Chromium processes and a temporary directory; everything is removed afterwards, also on failure.
Chromium's DevTools endpoint and the page's HTTP server listen on 127.0.0.1 inside the namespace
and are reached from a thread that has entered it (setns), so no traffic leaves the namespace.
The page is served from http://127.0.0.1 because getUserMedia needs a secure context
(about:blank and data: URLs are not one in Chromium 156).

Needs root (namespaces), ``ip`` (iproute2), ``nft`` (nftables), Debian's ``chromium`` and
``turnserver`` (coturn).
Regenerate the committed fixtures with ``python -m tests.webrtc_testbed --fixtures tests/fixtures/chromium``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import enum
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.cdp import CdpClient, CdpError, fetch_json

CHROMIUM = "/usr/lib/chromium/chromium"
TURNSERVER = "/usr/bin/turnserver"
_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
IP = shutil.which("ip", path=_SBIN) or "/usr/sbin/ip"
NFT = shutil.which("nft", path=_SBIN) or "/usr/sbin/nft"
PAGE_JS = Path(__file__).with_name("webrtc_page.js")

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)

NS_ADDRESS = "198.18.0.1"  # Chromium and coturn
PEER_ADDRESS = "198.18.0.2"  # the far end of the veth, in an otherwise empty namespace
PREFIX_LEN = 24
TURN_USER = "icewatch"
TURN_PASSWORD = "testbed-secret"
TURN_REALM = "testbed.icewatch"

_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class TestbedError(RuntimeError):
    """The testbed could not run a call; the message says what is missing or what failed."""

    __test__ = False  # not a pytest test class


class Scenario(enum.StrEnum):
    """What the caller's RTCConfiguration and its network look like."""

    HOST = "host"  # no ICE servers: host candidates only
    SRFLX = "srflx"  # coturn as STUN server behind a one-rule SNAT: host + srflx gathered, host pair used
    RELAY_UDP = "relay_udp"  # iceTransportPolicy relay, turn:...?transport=udp
    RELAY_TCP = "relay_tcp"  # iceTransportPolicy relay, turn:...?transport=tcp
    WRONG_PASSWORD = "wrong_password"  # relay over UDP with a wrong credential: 401
    TURN_STOPPED = "turn_stopped"  # relay over TCP to a stopped coturn: 701 at once
    TURN_STOPPED_UDP = "turn_stopped_udp"  # relay over UDP to a stopped coturn: 701 only after ~40 s
    DTLS_STALL = "dtls_stall"  # host path; nftables drops DTLS datagrams: ICE connects, DTLS stays connecting


@dataclass(frozen=True)
class _ScenarioSpec:
    url: str | None  # the caller's one ICE server ($ADDR, $PORT filled in); None = no ICE servers
    password: str = TURN_PASSWORD
    stop_turn_first: bool = False
    nft_ruleset: str | None = None  # loaded into the namespace before Chromium starts ($PORT filled in)
    wait_for_candidate: str | None = None  # the callee gets the offer once the caller gathered one of these


# Drops every UDP datagram whose first payload byte is 20..63: DTLS by the RFC 7983
# demultiplexing rule (STUN is 0..3, RTP/RTCP 128..191), so ICE works and DTLS never completes.
DROP_DTLS = """table inet icewatch_testbed {
  chain output {
    type filter hook output priority 0; policy accept;
    meta l4proto udp @th,64,8 20-63 counter drop
  }
}
"""
# Chromium drops a srflx candidate equal to its host address. Rewriting the source of what goes
# to the STUN server to MAPPED_ADDRESS (held on lo, where Chromium gathers nothing) makes coturn
# report a distinct mapped address, as a NAT would.
MAPPED_ADDRESS = "198.18.1.1"
SNAT_TO_STUN = f"""table ip icewatch_testbed_nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr {NS_ADDRESS} udp dport $PORT snat to {MAPPED_ADDRESS}
  }}
}}
"""

_TURN_UDP = "turn:$ADDR:$PORT?transport=udp"
_TURN_TCP = "turn:$ADDR:$PORT?transport=tcp"
_SPECS: dict[Scenario, _ScenarioSpec] = {
    Scenario.HOST: _ScenarioSpec(None),
    Scenario.SRFLX: _ScenarioSpec("stun:$ADDR:$PORT", nft_ruleset=SNAT_TO_STUN, wait_for_candidate="srflx"),
    Scenario.RELAY_UDP: _ScenarioSpec(_TURN_UDP),
    Scenario.RELAY_TCP: _ScenarioSpec(_TURN_TCP),
    Scenario.WRONG_PASSWORD: _ScenarioSpec(_TURN_UDP, password="not-the-password"),
    Scenario.TURN_STOPPED: _ScenarioSpec(_TURN_TCP, stop_turn_first=True),
    Scenario.TURN_STOPPED_UDP: _ScenarioSpec(_TURN_UDP, stop_turn_first=True),
    Scenario.DTLS_STALL: _ScenarioSpec(None, nft_ruleset=DROP_DTLS),
}


@dataclass(frozen=True)
class CallRun:
    """One finished call: the caller's W3C report and coturn's log text ("" without coturn)."""

    scenario: Scenario
    report: dict[str, Any]
    turn_log: str


# --------------------------------------------------------------------------------------------
# Network namespaces
# --------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(netns: str, fn: Callable[[], T], timeout: float) -> T:
    """Run ``fn`` in a new thread that has entered network namespace ``netns``.

    Sockets keep the namespace they were created in, so a socket made here may be used later
    from any thread. The thread ends with ``fn``; the caller's namespace never changes.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise TestbedError(f"setns into {netns} failed: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TestbedError(f"{getattr(fn, '__name__', 'task')} in {netns} did not finish in {timeout:.0f} s")
    if error:
        raise error[0]
    return result[0]


def _ip(*args: str) -> None:
    proc = subprocess.run([IP, *args], capture_output=True, text=True, timeout=15, check=False)
    if proc.returncode != 0:
        raise TestbedError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip() or proc.returncode}")


@contextlib.contextmanager
def netns_pair() -> Iterator[str]:
    """Two fresh namespaces joined by a veth; yields the name of the one Chromium runs in."""
    base = f"iwtb-{os.getpid()}-{secrets.token_hex(3)}"
    main, peer = base, f"{base}-peer"
    created: list[str] = []
    try:
        for name in (main, peer):
            _ip("netns", "add", name)
            created.append(name)
        _ip("-n", main, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", peer)
        for name, dev, addr in ((main, "veth0", NS_ADDRESS), (peer, "veth1", PEER_ADDRESS)):
            _ip("-n", name, "addr", "add", f"{addr}/{PREFIX_LEN}", "dev", dev)
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "link", "set", dev, "up")
        # The "public" address of the SNAT scenario; Chromium gathers no candidate on lo.
        _ip("-n", main, "addr", "add", f"{MAPPED_ADDRESS}/32", "dev", "lo")
        # IPv4 only: no IPv6 link-local candidates, no IPv6 chatter on the veth.
        for name in (main, peer):
            in_netns(name, _disable_ipv6, timeout=5)
        yield main
    finally:
        for name in reversed(created):
            _kill_remaining(name)
            with contextlib.suppress(TestbedError):
                _ip("netns", "del", name)


def _nft(netns: str, ruleset: str) -> None:
    """Load an nftables ruleset into the namespace (it goes away with the namespace)."""
    proc = subprocess.run(
        [IP, "netns", "exec", netns, NFT, "-f", "-"], input=ruleset, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise TestbedError(f"nft in {netns} failed (is nftables installed?): {proc.stderr.strip()}")


def _disable_ipv6() -> None:
    """(Inside the namespace.) Nothing to do on a kernel without IPv6."""
    for key in ("all", "default"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6").write_text("1\n")


def _kill_remaining(netns: str) -> None:
    """SIGKILL whatever still runs in a namespace this module created (only our processes)."""
    proc = subprocess.run([IP, "netns", "pids", netns], capture_output=True, text=True, check=False)
    for pid in proc.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _free_port(host: str) -> int:
    """A port free for both TCP and UDP on ``host`` (call inside the namespace)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((host, port))
            except OSError:
                continue
            return port
    raise TestbedError(f"no free TCP+UDP port on {host}")


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a process this module started; it leads its own process group, so its children go too.

    Does nothing once the process has been reaped (its id may belong to someone else by then);
    stragglers inside the namespace are killed when the namespace is removed.
    """
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _start(
    what: str, netns: str, argv: list[str], output: Path, ready: Callable[[], bool], timeout: float
) -> subprocess.Popen[bytes]:
    """Start ``argv`` inside the namespace (its own session) and wait until ``ready()``.

    Fails with the tail of its output when it exits or is not ready within ``timeout`` seconds.
    """
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [IP, "netns", "exec", netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise TestbedError(f"{what} exited with {proc.returncode}:\n{_tail(output)}")
            if time.monotonic() > deadline:
                raise TestbedError(f"{what} not ready after {timeout:.0f} s:\n{_tail(output)}")
            time.sleep(0.1)
    except BaseException:
        _stop(proc)
        raise
    return proc


def _start_turnserver(netns: str, port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / "turnserver.log"
    output = workdir / "turnserver.out"
    argv = [
        TURNSERVER, "-n",
        f"--listening-ip={NS_ADDRESS}", f"--listening-port={port}", f"--relay-ip={NS_ADDRESS}",
        "--lt-cred-mech", f"--user={TURN_USER}:{TURN_PASSWORD}", f"--realm={TURN_REALM}",
        "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--verbose",
        f"--log-file={log}", "--simple-log",
        # Keep coturn off the system paths: its own pid file and (empty) user database.
        f"--pidfile={workdir / 'turnserver.pid'}", f"--userdb={workdir / 'turndb'}",
    ]  # fmt: skip

    def listening() -> bool:
        # Readiness from the log, not a probe connection (that would log a session of its own).
        text = log.read_text(errors="replace") if log.exists() else ""
        return "Total General servers" in text and f"UDP listener opened on: {NS_ADDRESS}:{port}" in text

    return _start("turnserver", netns, argv, output, listening, timeout=15), log


def _start_chromium(netns: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    output = workdir / "chromium.out"
    profile = workdir / "profile"
    profile.mkdir()
    argv = [
        CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={port}",
    ]  # fmt: skip

    def devtools_up() -> bool:
        try:
            fetch_json("127.0.0.1", port, "/json/version", timeout=1.0)
            return True
        except (OSError, CdpError, ValueError):
            return False

    return _start("chromium", netns, argv, output, lambda: in_netns(netns, devtools_up, timeout=5), timeout=30)


# --------------------------------------------------------------------------------------------
# The page and the DevTools session
# --------------------------------------------------------------------------------------------


def _page_server(pages: dict[str, tuple[bytes, str]]) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 (call inside the namespace) serving ``pages``: path -> (body, type)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = pages.get(self.path, (b"", "text/plain"))
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextlib.contextmanager
def serve_pages(netns: str, pages: dict[str, tuple[bytes, str]]) -> Iterator[str]:
    """Serve ``pages`` (path -> (body, content type)) from 127.0.0.1 inside ``netns``; yields the origin URL."""
    server = in_netns(netns, lambda: _page_server(pages), timeout=5)
    threading.Thread(target=server.serve_forever, name="testbed-page", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def open_page(client: CdpClient, page_url: str, ready_expression: str, timeout: float = 15.0) -> str:
    """Open ``page_url`` in a new tab; wait until ``ready_expression`` is true there; the session id.

    Call inside the namespace.
    """
    target = client.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = str(client.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"])
    client.call("Page.navigate", {"url": page_url}, session_id=session)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(CdpError):  # the context may be replaced while it loads
            if client.evaluate(ready_expression, session, timeout=5) is True:
                return session
        if time.monotonic() > deadline:
            raise TestbedError(f"the test page {page_url} did not load in Chromium")
        time.sleep(0.05)


def _drive(devtools_port: int, page_url: str, call_config: dict[str, Any], timeout: float) -> str:
    """Open the page in Chromium, run the call, return the report JSON text (inside the namespace)."""
    client = CdpClient("127.0.0.1", devtools_port)
    try:
        version = client.call("Browser.getVersion")["product"].split("/")[-1]
        session = open_page(client, page_url, 'typeof icewatchCall === "function"')
        config = dict(call_config, sdkVersion=version)
        text = client.evaluate(f"icewatchCall({json.dumps(config)})", session, timeout=timeout)
        if not isinstance(text, str):
            raise TestbedError(f"the page returned {type(text).__name__}, not the report text")
        return text
    finally:
        client.close()


def _fill(template: str, port: int) -> str:
    return template.replace("$ADDR", NS_ADDRESS).replace("$PORT", str(port))


def _caller_config(spec: _ScenarioSpec, port: int) -> dict[str, Any]:
    if spec.url is None:
        return {"iceServers": [], "iceTransportPolicy": "all"}
    url = _fill(spec.url, port)
    if url.startswith("stun:"):
        return {"iceServers": [{"urls": [url]}], "iceTransportPolicy": "all"}
    return {
        "iceServers": [{"urls": [url], "username": TURN_USER, "credential": spec.password}],
        "iceTransportPolicy": "relay",
    }


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def check_prerequisites() -> list[str]:
    """What this machine lacks to run a call (empty when everything is there)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("network namespaces need root (ip netns add); run the chromium tests as root")
    for path, package in ((CHROMIUM, "chromium"), (TURNSERVER, "coturn"), (IP, "iproute2"), (NFT, "nftables")):
        if not os.access(path, os.X_OK):
            problems.append(f"{path} is missing: install Debian's {package}")
    return problems


@dataclass
class Testbed:
    """A running testbed: the namespace, the scenario's coturn (if any) and Chromium in it."""

    __test__ = False  # not a pytest test class

    scenario: Scenario
    netns: str
    devtools_port: int
    caller_config: dict[str, Any]  # the scenario's RTCConfiguration: iceServers, iceTransportPolicy
    workdir: Path
    turn_log_path: Path | None
    processes: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        """Stop Chromium and coturn (also done on leaving ``testbed()``; stopping twice is harmless)."""
        for proc in reversed(self.processes):
            _stop(proc)

    def turn_log(self) -> str:
        """coturn's log so far ("" without coturn); complete once ``stop()`` has run."""
        path = self.turn_log_path
        return path.read_text(errors="replace") if path is not None and path.exists() else ""


@contextlib.contextmanager
def testbed(scenario: Scenario | str) -> Iterator[Testbed]:
    """A fresh namespace pair with the scenario's nftables rules, coturn and a headless Chromium.

    Raises TestbedError with the reason when a prerequisite is missing or a process fails;
    everything is stopped and removed on leaving, also on failure.
    """
    scenario = Scenario(scenario)
    spec = _SPECS[scenario]
    problems = check_prerequisites()
    if problems:
        raise TestbedError("cannot run a Chromium call: " + "; ".join(problems))
    workdir = Path(tempfile.mkdtemp(prefix="icewatch-testbed-"))
    try:
        with netns_pair() as netns:
            processes: list[subprocess.Popen[bytes]] = []
            try:
                turn_port = in_netns(netns, lambda: _free_port(NS_ADDRESS), timeout=5)
                if spec.nft_ruleset is not None:
                    _nft(netns, _fill(spec.nft_ruleset, turn_port))
                turn_log: Path | None = None
                if spec.url is not None:
                    turn, turn_log = _start_turnserver(netns, turn_port, workdir)
                    processes.append(turn)
                    if spec.stop_turn_first:
                        _stop(turn)
                devtools_port = in_netns(netns, lambda: _free_port("127.0.0.1"), timeout=5)
                processes.append(_start_chromium(netns, devtools_port, workdir))
                yield Testbed(
                    scenario, netns, devtools_port, _caller_config(spec, turn_port), workdir, turn_log, processes
                )
            finally:
                for proc in reversed(processes):
                    _stop(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def record_call(scenario: Scenario | str, seconds: int = 5, call_id: str | None = None) -> CallRun:
    """Place one call in a fresh namespace and return the caller's W3C report and coturn's log.

    ``seconds`` is how many getStats() snapshots (one a second) the report holds. Raises
    TestbedError with the reason when a prerequisite is missing or a process fails.
    """
    scenario = Scenario(scenario)
    if seconds < 1:
        raise ValueError("seconds must be at least 1")
    html = (
        f"<!doctype html><meta charset=utf-8><title>icewatch testbed</title><script>\n{PAGE_JS.read_text()}\n</script>"
    ).encode()
    with testbed(scenario) as bed:
        call_config = {
            "callId": call_id or str(uuid.uuid4()),
            "callerConfig": bed.caller_config,
            "seconds": seconds,
            "waitForCandidateType": _SPECS[scenario].wait_for_candidate,
        }
        timeout = seconds + 30.0
        with serve_pages(bed.netns, {"/": (html, "text/html; charset=utf-8")}) as origin:
            port = bed.devtools_port
            text = in_netns(bed.netns, lambda: _drive(port, origin + "/", call_config, timeout), timeout + 15)
        bed.stop()
        log_text = bed.turn_log()
    report: dict[str, Any] = json.loads(text)
    return CallRun(scenario=scenario, report=report, turn_log=log_text)


def run_call(scenario: Scenario | str, seconds: int = 5) -> dict[str, Any]:
    """The caller's report of one real call, in the icewatch W3C format."""
    return record_call(scenario, seconds).report


# --------------------------------------------------------------------------------------------
# The W3C format, checked
# --------------------------------------------------------------------------------------------

_STATE_EVENTS = {
    "iceconnectionstatechange",
    "connectionstatechange",
    "icegatheringstatechange",
    "dtlsstatechange",
}
_CANDIDATE_KEYS = {"address", "port", "protocol", "candidateType", "relayProtocol", "url", "priority"}
_ERROR_KEYS = {"url", "errorCode", "errorText", "address", "port"}


def w3c_format_problems(report: Any) -> list[str]:
    """Where ``report`` departs from the icewatch W3C upload format (empty when it conforms)."""
    if not isinstance(report, dict):
        return ["report is not an object"]
    problems: list[str] = []
    expected = {
        "format",
        "call_id",
        "sdk",
        "browser",
        "ice_servers",
        "ice_transport_policy",
        "events",
        "snapshots",
    }
    if set(report) != expected:
        problems.append(f"top-level keys {sorted(report)} != {sorted(expected)}")
    if report.get("format") != "w3c":
        problems.append("format is not 'w3c'")
    if not isinstance(report.get("call_id"), str) or not report.get("call_id"):
        problems.append("call_id is not a non-empty string")
    sdk = report.get("sdk")
    if not (
        isinstance(sdk, dict) and set(sdk) == {"name", "version"} and all(isinstance(v, str) for v in sdk.values())
    ):
        problems.append("sdk is not {name: str, version: str}")
    if report.get("ice_transport_policy") not in ("all", "relay"):
        problems.append("ice_transport_policy is not 'all' or 'relay'")
    servers = report.get("ice_servers")
    if not isinstance(servers, list) or any(
        not isinstance(s, dict) or set(s) != {"urls"} or not all(isinstance(u, str) for u in s["urls"]) for s in servers
    ):
        problems.append("ice_servers is not a list of {urls: [str]}")
    for i, event in enumerate(report.get("events") or []):
        problems.extend(f"events[{i}]: {p}" for p in _event_problems(event))
    snapshots = report.get("snapshots")
    if not isinstance(snapshots, list) or not snapshots:
        problems.append("snapshots is empty")
    else:
        for i, snap in enumerate(snapshots):
            if not isinstance(snap, dict) or not isinstance(snap.get("timestamp"), int | float):
                problems.append(f"snapshots[{i}] has no numeric timestamp")
            elif not isinstance(snap.get("stats"), list) or any(
                not isinstance(s, dict) or not {"id", "type", "timestamp"} <= set(s) for s in snap["stats"]
            ):
                problems.append(f"snapshots[{i}].stats is not a list of RTCStats objects")
    return problems


def _event_problems(event: Any) -> list[str]:
    if not isinstance(event, dict) or not isinstance(event.get("at"), int):
        return ["not an object with an integer 'at'"]
    kind = event.get("type")
    keys = set(event) - {"at", "type"}
    if kind in _STATE_EVENTS:
        return [] if keys == {"state"} and isinstance(event["state"], str) else ["state event without a state"]
    if kind == "icecandidateerror":
        return [] if keys == _ERROR_KEYS and isinstance(event["errorCode"], int) else ["malformed error"]
    if kind == "icecandidate":
        cand = event.get("candidate")
        ok = keys == {"candidate"} and (cand is None or (isinstance(cand, dict) and set(cand) == _CANDIDATE_KEYS))
        return [] if ok else ["malformed candidate"]
    return [f"unknown event type {kind!r}"]


def write_fixtures(directory: Path, seconds: int = 3) -> list[Path]:
    """Record one small report per scenario (except the slow UDP outage) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for scenario in Scenario:
        if scenario is Scenario.TURN_STOPPED_UDP:
            continue
        report = record_call(scenario, seconds, call_id=f"chromium-testbed-{scenario.value}").report
        path = directory / f"{scenario.value}.json"
        path.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fixtures", type=Path, help="write one report per scenario into this directory")
    parser.add_argument("--scenario", choices=[s.value for s in Scenario], default=Scenario.HOST.value)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if args.fixtures:
        for path in write_fixtures(args.fixtures, args.seconds):
            print(path)
    else:
        print(json.dumps(run_call(args.scenario, args.seconds), indent=1))


if __name__ == "__main__":
    main()
