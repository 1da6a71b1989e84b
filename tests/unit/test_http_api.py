"""The HTTP API's answers. The publisher here records what it is given (the real Kafka path is in
tests/integration/test_delivery.py); everything else is the real app served by uvicorn."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.contract import CallReport, DeadLetter, Model
from collector.errors import BrokerUnavailable
from collector.http_app import IngestConfig, build_app
from collector.openapi import OPENAPI
from tests.example_report import EXAMPLE_BODY
from tests.http_server import serve

JSON = {"Content-Type": "application/json"}


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Model] = []
        self.down = False

    def publish(self, payloads: Sequence[Model], tenant: str = "default") -> None:
        if self.down:
            raise BrokerUnavailable("broker down (test)", retry_after=7)
        self.published.extend(payloads)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[httpx.Client, RecordingPublisher]]:
    pub = RecordingPublisher()
    app = build_app(pub, IngestConfig(api_keys={"app-a": "secret-a", "app-b": "secret-b"}, max_body_bytes=200_000,
                                      hash_key=b"k"))
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client, pub


AUTH = {**JSON, "Authorization": "Bearer secret-a"}


def test_accepts_the_example_after_publishing(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, pub = api
    pub.published.clear()
    r = client.post("/v1/call-reports", content=EXAMPLE_BODY, headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json()["call_ids"] == ["example-call-0001"]
    assert [type(p) for p in pub.published] == [CallReport]


def test_gzip_body_is_accepted(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, _ = api
    r = client.post("/v1/call-reports", content=gzip.compress(EXAMPLE_BODY),
                    headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 202, r.text


def test_api_key_is_required_and_selects_the_tenant(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, _ = api
    assert client.post("/v1/call-reports", content=EXAMPLE_BODY, headers=JSON).status_code == 401
    bad = {**JSON, "X-API-Key": "secret-x"}
    assert client.post("/v1/call-reports", content=EXAMPLE_BODY, headers=bad).status_code == 401
    ok = {**JSON, "X-API-Key": "secret-b"}
    assert client.post("/v1/call-reports", content=EXAMPLE_BODY, headers=ok).status_code == 202


def test_wrong_content_type_is_415(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, _ = api
    r = client.post("/v1/call-reports", content=b"<xml/>", headers={**AUTH, "Content-Type": "application/xml"})
    assert r.status_code == 415 and "content type" in r.json()["error"]


def test_body_limits_are_413_also_after_decompression(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, _ = api
    big = b"[" + b"0," * 150_000 + b"0]"
    assert client.post("/v1/call-reports", content=big, headers=AUTH).status_code == 413
    bomb = gzip.compress(b" " * 5_000_000)
    r = client.post("/v1/call-reports", content=bomb, headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 413


def test_invalid_report_is_422_with_path_and_dead_lettered(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, pub = api
    pub.published.clear()
    body = b'{"format": "w3c", "call_id": "x", "snapshots": [{"timestamp": "soon", "stats": []}]}'
    r = client.post("/v1/call-reports", content=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["path"].startswith("snapshots[0]")
    assert len(pub.published) == 1 and isinstance(pub.published[0], DeadLetter)
    assert pub.published[0].raw == body.decode()


def test_not_json_is_400(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, _ = api
    assert client.post("/v1/call-reports", content=b"{oops", headers=AUTH).status_code == 400


def test_broker_down_is_503_with_retry_after(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, pub = api
    pub.down = True
    try:
        r = client.post("/v1/call-reports", content=EXAMPLE_BODY, headers=AUTH)
    finally:
        pub.down = False
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"


def test_telnyx_route_takes_the_sdk_headers(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, pub = api
    pub.published.clear()
    t0 = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    t1 = (datetime.now(UTC) - timedelta(minutes=5) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = {
        "summary": {"callId": "tx-1", "sdkVersion": "2.27.10", "direction": "OUTBOUND",
                    "callerNumber": "+15551234567", "startTimestamp": t0},
        "stats": [{"intervalStartUtc": t0, "intervalEndUtc": t1, "connection": {"roundTripTimeAvg": 0.05}}],
    }
    r = client.post("/call_report", content=orjson.dumps(report),
                    headers={**AUTH, "x-call-report-id": "rep-9", "x-call-id": "tx-1", "User-Agent": "UA/1"})
    assert r.status_code == 202, r.text
    rep = pub.published[0]
    assert isinstance(rep, CallReport)
    assert rep.call_id == "tx-1" and rep.source_format == "telnyx" and rep.user_agent == "UA/1"
    assert "5551234567" not in rep.model_dump_json()


def test_openapi_document_lists_the_routes(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, _ = api
    doc = client.get("/openapi.json").json()
    assert doc == orjson.loads(orjson.dumps(OPENAPI))
    assert {"/v1/call-reports", "/call_report"} <= set(doc["paths"])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # stdlib: also emits integers beyond 64 bits


_keys = st.sampled_from(["format", "call_id", "snapshots", "stats", "summary", "PeerConnections", "events",
                         "timestamp", "type", "id", "intervalStartUtc"])
_shaped = st.dictionaries(_keys, _json, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=300), _json.map(_dumps), _shaped.map(_dumps)))
def test_arbitrary_bodies_never_500(api: tuple[httpx.Client, RecordingPublisher], body: bytes) -> None:
    client, _ = api
    r = client.post("/v1/call-reports", content=body, headers=AUTH)
    assert r.status_code in (202, 400, 413, 422), (r.status_code, r.text)
    if r.status_code != 202:
        assert r.json()["error"]


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    config = IngestConfig(api_keys={}, max_body_bytes=1, hash_key=b"")
    assert config.client_address("127.0.0.1", "203.0.113.9, 10.0.0.1") == "203.0.113.9"
    assert config.client_address("198.51.100.7", "203.0.113.9") == "198.51.100.7"
    assert config.client_address("127.0.0.1", None) == "127.0.0.1"
    assert config.client_address(None, "203.0.113.9") is None


def test_gzip_is_decompressed_once_within_the_body_limit(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    """A gzip body inside gzip is refused, not decompressed a second time (no second, bigger limit)."""
    client, pub = api
    pub.published.clear()
    nested = gzip.compress(gzip.compress(b" " * 5_000_000))
    r = client.post("/v1/call-reports", content=nested, headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip inside gzip" in r.json()["error"]
    assert [type(p) for p in pub.published] == [DeadLetter]


def test_truncated_gzip_is_bad_gzip_and_other_encodings_are_415(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    client, pub = api
    whole = gzip.compress(EXAMPLE_BODY)
    r = client.post("/v1/call-reports", content=whole[: len(whole) // 2], headers={**AUTH, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["error"]
    pub.published.clear()
    for encoding in ("br", "deflate"):
        headers = {**AUTH, "Content-Encoding": encoding}
        r = client.post("/v1/call-reports", content=EXAMPLE_BODY, headers=headers)
        assert r.status_code == 415 and encoding in r.json()["error"]
    assert pub.published == []


def test_probe_results_from_a_remote_vantage_point(api: tuple[httpx.Client, RecordingPublisher]) -> None:
    from collector.contract import ProbeResult

    client, pub = api
    pub.published.clear()
    now = datetime.now(UTC).isoformat()
    one = {"probe_id": "p1", "server_id": "turn-eu-1", "vantage": "remote-1", "kind": "turn_allocate",
           "transport": "tls", "target": "turn-eu.example.net:443", "at": now, "success": True, "latency_ms": 4.2}
    ndjson = "\n".join(json.dumps({**one, "probe_id": f"p{i}"}) for i in range(3)).encode()
    r = client.post("/v1/probe-results", content=ndjson, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202 and r.json() == {"accepted": 3}
    assert [type(p) for p in pub.published] == [ProbeResult] * 3
    pub.published.clear()
    too_many = json.dumps([{**one, "probe_id": f"p{i}"} for i in range(1001)]).encode()
    assert client.post("/v1/probe-results", content=too_many, headers=AUTH).status_code == 413
    bad = client.post("/v1/probe-results", content=json.dumps([one, {**one, "latency_ms": -1}]).encode(), headers=AUTH)
    assert bad.status_code == 422 and bad.json()["path"] == "[1].latency_ms"
    assert client.post("/v1/probe-results", content=b"[1,", headers=AUTH).status_code == 400
    assert client.post("/v1/probe-results", content=ndjson, headers=JSON).status_code == 401
    dead = [p for p in pub.published if isinstance(p, DeadLetter)]
    # the 1,001 results are over this app's 200 kB body limit: refused while reading, like any body
    assert len(dead) == len(pub.published) == 2 and {d.intended for d in dead} == {"probe_result"}
