"""`icewatch run` with every secret configured, driven through the paths that use them, watched from
outside: nothing it logged (at DEBUG) or served on /metrics carries a secret, and its /metrics shows
each component it runs (collector, TURN tailer, probes, alert evaluator; docs/metrics.md).

The stack is real: coturn with the probe's credentials (long-term user + password, or the TURN REST
API shared secret), its log tailed by icewatch, a receiver standing in for Alertmanager and the
signed webhook (it answers 500, so the failed deliveries are logged too).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.example_report import EXAMPLE_BODY
from tests.integration.test_probes_coturn import USER, Coturn, running
from tests.paging import ICEWATCH, SERVER_ID, IcewatchRun, write_inventory
from tests.services import HOST, REPO_ROOT, log_tail

DOC = REPO_ROOT / "docs" / "metrics.md"


class Receiver:
    """Takes POSTs, remembers their paths and headers, answers 500."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Observed:
    secrets: dict[str, str]
    log: str
    metrics: list[str]  # every /metrics body served during the run
    receiver: list[tuple[str, dict[str, str]]]


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:  # not listening (yet)
        return 0, str(exc).encode()


def sample(metrics: str, name: str) -> float:
    """The sum of a metric's samples (0 when absent)."""
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", metrics, re.MULTILINE))


@pytest.fixture(scope="module", params=["static-credentials", "rest-secret"])
def observed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    directory = tmp_path_factory.mktemp(f"secrets-{request.param}")
    values = {
        "api key a": "ik-a-" + secrets.token_hex(16),
        "api key b": "ik-b-" + secrets.token_hex(16),
        "hash key": "hk-" + secrets.token_hex(16),
        "webhook secret": "ws-" + secrets.token_hex(16),
    }
    if request.param == "static-credentials":
        values["TURN password"] = "tp-" + secrets.token_hex(12)
        auth = ["--lt-cred-mech", f"--user={USER}:{values['TURN password']}"]
        probe_env = {"ICEWATCH_PROBES_TURN_USERNAME": USER, "ICEWATCH_PROBES_TURN_PASSWORD": values["TURN password"]}
    else:
        values["TURN REST secret"] = "ts-" + secrets.token_hex(16)
        auth = ["--use-auth-secret", f"--static-auth-secret={values['TURN REST secret']}"]
        probe_env = {"ICEWATCH_PROBES_TURN_SECRET": values["TURN REST secret"]}
    (directory / "coturn").mkdir()
    with running(Coturn(directory / "coturn", auth)) as coturn, Receiver() as receiver:
        inventory = write_inventory(directory, coturn.port)
        run = IcewatchRun.configure(directory, inventory, receiver.url + "/am", extra={
            "ICEWATCH_API_KEYS": json.dumps({"tenant-a": values["api key a"], "tenant-b": values["api key b"]}),
            "ICEWATCH_HASH_KEY": values["hash key"],
            "ICEWATCH_ALERTS__WEBHOOK_URL": receiver.url + "/hook",
            "ICEWATCH_ALERTS__WEBHOOK_SECRET": values["webhook secret"],
            "ICEWATCH_PROBES_INTERVAL_S": "2",
            "ICEWATCH_TURN_LOGS": json.dumps([{"path": str(coturn.log), "server_id": SERVER_ID, "region": "eu"}]),
            **probe_env,
        })
        if request.param == "rest-secret":  # configure() gives static credentials: one kind only
            for name in ("ICEWATCH_PROBES_TURN_USERNAME", "ICEWATCH_PROBES_TURN_PASSWORD"):
                run.env.pop(name)
        log = directory / "run.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*ICEWATCH, "--log-level", "DEBUG", "run"], env=run.env, cwd=REPO_ROOT,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        run.proc, run.logs = proc, [log]
        try:
            deadline = time.monotonic() + 90
            while http("GET", f"{run.base}/healthz")[0] != 200:
                assert proc.poll() is None and time.monotonic() < deadline, log_tail(log, 60)
                time.sleep(0.2)
            served = drive(run.base, values, receiver)
        finally:
            run.stop()
        yield Observed(values, log.read_text(errors="replace"), served, receiver.requests)


def drive(base: str, values: dict[str, str], receiver: Receiver) -> list[str]:
    """Every path that touches a secret, then /metrics until a probe round, a TURN line and a
    delivery attempt of both notifiers were seen."""
    a, b = values["api key a"], values["api key b"]
    json_type = {"Content-Type": "application/json"}
    bearer_a = {**json_type, "Authorization": f"Bearer {a}"}
    assert http("POST", f"{base}/v1/call-reports", EXAMPLE_BODY, bearer_a)[0] == 202
    assert http("POST", f"{base}/v1/call-reports", EXAMPLE_BODY, {**json_type, "X-API-Key": b})[0] == 202
    # a key one character off (as a typo would be): refused, and not echoed anywhere
    assert http("POST", f"{base}/v1/call-reports", EXAMPLE_BODY, {**json_type, "X-API-Key": a[:-1]})[0] == 401
    assert http("POST", f"{base}/v1/call-reports", b'{"format": "w3c"', {**json_type, "X-API-Key": a})[0] in (400, 422)
    assert http("GET", f"{base}/v1/query?name=path-mix&since=1d", headers={"Authorization": f"Bearer {b}"})[0] == 200
    assert http("POST", f"{base}/v1/sql", json.dumps({"sql": "SELECT nope FROM calls"}).encode(),
                {**json_type, "Authorization": f"Bearer {a}"})[0] >= 400
    served: list[str] = []
    deadline = time.monotonic() + 60
    while True:
        status, body = http("GET", f"{base}/metrics", headers={"Authorization": f"Bearer {a}"})
        assert status == 200, body[:300]
        served.append(body.decode())
        paths = {p for p, _ in receiver.requests}
        done = (sample(served[-1], "icewatch_probe_results_total") > 0
                and sample(served[-1], "icewatch_turn_tailer_published_total") > 0
                and any(p.startswith("/am") for p in paths) and "/hook" in paths)
        if done:
            return served
        assert time.monotonic() < deadline, f"not every path ran within 60 s: {paths}\n{served[-1][-2000:]}"
        time.sleep(0.5)


def test_no_secret_in_what_run_logged_or_served(observed: Observed) -> None:
    assert len(observed.log.splitlines()) > 20 and '"level": "DEBUG"' in observed.log
    # the paths ran: the webhook signed with the secret, the probes authenticated with the credentials
    hook = [h for p, h in observed.receiver if p == "/hook"]
    assert hook and all(re.fullmatch(r"sha256=[0-9a-f]{64}", h.get("x-icewatch-signature", "")) for h in hook), hook
    assert re.search(r"^icewatch_probe_results_total\{outcome=\"success\"} [1-9]", observed.metrics[-1], re.MULTILINE)
    for what, value in observed.secrets.items():
        assert value not in observed.log, f"the {what} is in the log"
        for body in observed.metrics:
            assert value not in body, f"the {what} is on /metrics"


def test_run_serves_the_metrics_of_every_component_it_runs(observed: Observed) -> None:
    last = observed.metrics[-1]
    documented = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(icewatch_\w+)` \| \w+ \|[^|]*\| ([^|]+) \|",
                                                               DOC.read_text(), re.MULTILINE)}
    components = {"collector", "tailer", "probes", "alert evaluator"}
    wanted = {name for name, component in documented.items() if component.strip() in components}
    assert len(wanted) >= 12
    families = set(re.findall(r"^# TYPE (\w+) ", last, re.MULTILINE))
    missing = {n for n in wanted if n not in families and n.removesuffix("_total") not in families}
    assert not missing, f"documented for icewatch run, not served: {sorted(missing)}"
    assert sample(last, "icewatch_collector_reports_total") == 2
    refused = re.search(r'^icewatch_collector_requests_total\{status="401"} (\S+)$', last, re.MULTILINE)
    assert refused and float(refused.group(1)) == 1
    assert sample(last, "icewatch_alerts_rules") >= 10
    firing = re.search(r'^icewatch_alerts\{phase="firing",rule="watchdog"} (\S+)$', last, re.MULTILINE)
    assert firing and float(firing.group(1)) == 1, last[-3000:]


def test_run_logs_json_lines_with_the_ids_they_are_about(observed: Observed) -> None:
    lines = [line for line in observed.log.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(parsed) == len(lines), [line for line in lines if not line.startswith("{")][:5]
    transitions = [p for p in parsed if p["logger"] == "alerts.evaluator" and p["msg"].startswith("alert watchdog")]
    assert transitions and all(isinstance(p.get("labels"), dict) for p in transitions), transitions[:3]
