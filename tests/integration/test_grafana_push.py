"""dashboards/push.py against a fake Grafana (tests/fake_grafana.py). No real Grafana server can run
on these machines: the fake stands in, serving only the endpoints push uses and refusing any
request whose shape differs from Grafana's HTTP API docs, so a push that passes here sent the
documented requests. The input dashboards are small dicts, not the rendered icewatch dashboards."""

from __future__ import annotations

import copy
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from collector.errors import GrafanaError
from dashboards.push import PushReport, clickhouse_datasource, push
from tests.fake_grafana import FakeGrafana, serve_fake_grafana
from tests.http_server import free_port

ADMIN = "glsa_adminTOKENsecret_0a1b2c"
EDITOR = "glsa_editorTOKENsecret_3d4e5f"
VIEWER = "glsa_viewerTOKENsecret_6a7b8c"
WRONG = "glsa_wrongTOKENsecret_9d0e1f"
TOKENS = (ADMIN, EDITOR, VIEWER, WRONG)
PASSWORD = "ch-password-42"

FOLDER_UID = "icewatch"
FOLDER_TITLE = "icewatch"


def _datasource(host: str = "clickhouse.internal") -> dict[str, Any]:
    return clickhouse_datasource(uid="icewatch-clickhouse", name="icewatch ClickHouse", host=host, port=9000,
                                 protocol="native", secure=False, username="grafana", database="icewatch",
                                 password=PASSWORD)


def _dashboards() -> list[dict[str, Any]]:
    def panel(pid: int, title: str, sql: str) -> dict[str, Any]:
        return {"id": pid, "type": "timeseries", "title": title,
                "datasource": {"type": "grafana-clickhouse-datasource", "uid": "icewatch-clickhouse"},
                "targets": [{"refId": "A", "rawSql": sql}]}

    return [
        {"uid": "iw-calls", "title": "Calls", "schemaVersion": 39, "tags": ["icewatch"],
         "panels": [panel(1, "Calls per minute", "SELECT minute AS time, calls FROM call_minute")]},
        {"uid": "iw-relays", "title": "Relays", "schemaVersion": 39, "tags": ["icewatch"],
         "panels": [panel(1, "Relay usage", "SELECT day AS time, relayed FROM relay_usage_daily")]},
    ]


def _push(fake_or_url: FakeGrafana | str, token: str = ADMIN, **kw: Any) -> PushReport:
    url = fake_or_url if isinstance(fake_or_url, str) else fake_or_url.url
    args: dict[str, Any] = {"folder_uid": FOLDER_UID, "folder_title": FOLDER_TITLE, "datasource": _datasource(),
                            "dashboards": _dashboards(), "timeout": 5.0}
    args.update(kw)
    return push(url, token, **args)


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with serve_fake_grafana({ADMIN: "Admin", EDITOR: "Editor", VIEWER: "Viewer"}) as fake:
        yield fake


def _assert_no_token(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    """No token, right or wrong, in the error, anything it was raised from, or the logs."""
    seen: BaseException | None = exc
    while seen is not None:
        for text in (str(seen), repr(seen), repr(seen.args)):
            for token in TOKENS:
                assert token not in text
        seen = seen.__cause__ or seen.__context__
    for token in TOKENS:
        assert token not in caplog.text


def _writes(fake: FakeGrafana) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method != "GET"]


# -- creates, then unchanged, then updates ---------------------------------------------------------


def test_push_creates_folder_datasource_and_dashboards(grafana: FakeGrafana) -> None:
    report = _push(grafana)

    assert [(o.kind, o.uid, o.outcome) for o in report.objects] == [
        ("folder", "icewatch", "created"), ("datasource", "icewatch-clickhouse", "created"),
        ("dashboard", "iw-calls", "created"), ("dashboard", "iw-relays", "created")]
    assert report.changed and report.url == grafana.url
    assert grafana.folders["icewatch"]["title"] == "icewatch"
    ds = grafana.datasources["icewatch-clickhouse"]
    assert (ds["name"], ds["type"], ds["access"]) == ("icewatch ClickHouse", "grafana-clickhouse-datasource", "proxy")
    assert ds["jsonData"] == {"host": "clickhouse.internal", "port": 9000, "protocol": "native", "secure": False,
                              "username": "grafana", "defaultDatabase": "icewatch"}
    assert ds["secureJsonFields"] == {"password": True}
    assert grafana.secrets["icewatch-clickhouse"] == {"password": PASSWORD}
    for sent in _dashboards():
        stored = grafana.dashboards[sent["uid"]]
        assert stored["folderUid"] == "icewatch"
        assert stored["message"] == "icewatch dashboards push"
        assert stored["dashboard"]["version"] == 1
        assert {k: v for k, v in stored["dashboard"].items() if k not in ("id", "version")} == sent
    saves = [r.body for r in grafana.requests if (r.method, r.path) == ("POST", "/api/dashboards/db")]
    assert len(saves) == 2
    assert all(body["overwrite"] is False and body["folderUid"] == "icewatch" for body in saves)
    assert all("id" not in body["dashboard"] and "version" not in body["dashboard"] for body in saves)
    assert grafana.requests[0].path == "/api/folders/icewatch"  # looked up before created
    assert next(r for r in grafana.requests if r.method == "POST").body == {"title": "icewatch", "uid": "icewatch"}


def test_second_push_reports_all_unchanged_and_writes_nothing(grafana: FakeGrafana,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dashboards.push")
    _push(grafana)
    versions = {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()}
    before = (copy.deepcopy(grafana.folders), copy.deepcopy(grafana.datasources), copy.deepcopy(grafana.dashboards))
    writes = len(_writes(grafana))

    report = _push(grafana)

    assert {o.outcome for o in report.objects} == {"unchanged"} and len(report.objects) == 4
    assert not report.changed
    assert len(_writes(grafana)) == writes
    assert {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()} == versions
    assert (grafana.folders, grafana.datasources, grafana.dashboards) == before
    assert all(line.endswith("unchanged") for line in report.lines())
    assert f"grafana push to {grafana.url}: dashboard iw-relays unchanged" in caplog.text
    assert ADMIN not in caplog.text


def test_a_changed_dashboard_is_updated_and_its_version_bumped(grafana: FakeGrafana) -> None:
    _push(grafana)
    dashboards = _dashboards()
    dashboards[1]["panels"][0]["title"] = "Relay usage per day"
    dashboards[1]["id"] = 999  # another install's id: ignored
    dashboards[1]["version"] = 77  # likewise

    report = _push(grafana, dashboards=dashboards)

    assert report.outcome("dashboard", "iw-relays") == "updated"
    assert report.outcome("dashboard", "iw-calls") == "unchanged"
    assert report.outcome("folder", "icewatch") == report.outcome("datasource", "icewatch-clickhouse") == "unchanged"
    stored = grafana.dashboards["iw-relays"]["dashboard"]
    assert stored["version"] == 2 and stored["id"] != 999
    assert stored["panels"][0]["title"] == "Relay usage per day"
    assert grafana.dashboards["iw-calls"]["dashboard"]["version"] == 1
    update = [r.body for r in grafana.requests if r.path == "/api/dashboards/db"][-1]
    assert update["dashboard"]["version"] == 1 and update["overwrite"] is False  # the version read, checked


def test_a_retitled_folder_and_a_changed_datasource_are_updated(grafana: FakeGrafana) -> None:
    _push(grafana)
    datasource = _datasource(host="clickhouse-2.internal")
    del datasource["secureJsonData"]  # not sent: Grafana keeps the password it has

    report = _push(grafana, folder_title="icewatch (prod)", datasource=datasource)

    assert report.outcome("folder", "icewatch") == "updated"
    assert report.outcome("datasource", "icewatch-clickhouse") == "updated"
    assert grafana.folders["icewatch"]["title"] == "icewatch (prod)"
    assert grafana.folders["icewatch"]["version"] == 2
    assert grafana.datasources["icewatch-clickhouse"]["jsonData"]["host"] == "clickhouse-2.internal"
    assert grafana.datasources["icewatch-clickhouse"]["version"] == 2
    assert grafana.secrets["icewatch-clickhouse"] == {"password": PASSWORD}
    rename = next(r for r in grafana.requests if r.method == "PUT" and r.path == "/api/folders/icewatch")
    assert rename.body == {"title": "icewatch (prod)", "version": 1}
    assert _push(grafana, folder_title="icewatch (prod)", datasource=datasource).changed is False


def test_a_dashboard_moved_into_the_folder_is_updated(grafana: FakeGrafana) -> None:
    _push(grafana)
    grafana.dashboards["iw-calls"]["folderUid"] = ""  # someone moved it to the root

    report = _push(grafana)

    assert report.outcome("dashboard", "iw-calls") == "updated"
    assert grafana.dashboards["iw-calls"]["folderUid"] == "icewatch"


def test_grafana_under_a_sub_path() -> None:
    with serve_fake_grafana({ADMIN: "Admin"}, prefix="/grafana") as fake:
        report = _push(fake.url + "/")
        assert report.url == fake.url
        assert set(fake.dashboards) == {"iw-calls", "iw-relays"}


# -- errors: one class, a message saying what to do, never the token ----------------------------------


def test_401_a_refused_token(grafana: FakeGrafana, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GrafanaError) as raised:
        _push(grafana, token=WRONG)
    assert raised.value.status == 401
    assert "the token was refused (create a service-account token with the Admin role" in str(raised.value)
    assert grafana.url in str(raised.value)
    _assert_no_token(raised.value, caplog)
    assert not grafana.folders and not grafana.datasources and not grafana.dashboards


@pytest.mark.parametrize("token", ["", "  ", "glsa_two words", "glsa_nul\x00"])
def test_a_token_that_cannot_be_sent_is_refused_before_any_request(grafana: FakeGrafana, token: str) -> None:
    with pytest.raises(GrafanaError, match="the Grafana token is empty or contains spaces") as raised:
        _push(grafana, token=token)
    assert raised.value.status == 401 and not grafana.requests
    if token.strip():
        assert token not in str(raised.value)


def test_a_token_read_with_its_newline_is_sent_without_it(grafana: FakeGrafana) -> None:
    assert _push(grafana, token=ADMIN + "\n").changed


def test_403_a_viewer_token_cannot_create_the_folder(grafana: FakeGrafana, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GrafanaError) as raised:
        _push(grafana, token=VIEWER)
    assert raised.value.status == 403
    message = str(raised.value)
    assert message.startswith("the token lacks permission for creating folder 'icewatch' (POST /api/folders)")
    assert "folders:create" in message  # what Grafana said is missing
    _assert_no_token(raised.value, caplog)


def test_403_an_editor_token_cannot_read_the_datasource(grafana: FakeGrafana,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GrafanaError) as raised:
        _push(grafana, token=EDITOR)
    assert raised.value.status == 403
    assert str(raised.value).startswith(
        "the token lacks permission for reading datasource 'icewatch-clickhouse' "
        "(GET /api/datasources/uid/icewatch-clickhouse) (datasources need the Admin role)")
    assert "icewatch" in grafana.folders  # what came before stays pushed
    _assert_no_token(raised.value, caplog)


def test_404_not_a_grafana_base_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serve_fake_grafana({ADMIN: "Admin"}, prefix="/grafana") as fake, pytest.raises(GrafanaError) as raised:
        _push(fake.url.removesuffix("/grafana") + "/monitoring")
    wrong = fake.url.removesuffix("/grafana") + "/monitoring"
    assert raised.value.status == 404
    assert str(raised.value) == f"POST /api/folders: not found — is {wrong} a Grafana (11.6+) base URL?"
    assert not fake.folders
    _assert_no_token(raised.value, caplog)


def test_409_a_datasource_name_taken_by_another_uid(grafana: FakeGrafana, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    grafana.add_datasource({"uid": "hand-made", "name": "icewatch ClickHouse", "type": "grafana-clickhouse-datasource",
                            "access": "proxy", "jsonData": {"host": "old"}})
    with pytest.raises(GrafanaError) as raised:
        _push(grafana)
    assert raised.value.status == 409
    assert str(raised.value).startswith(
        "a datasource named 'icewatch ClickHouse' already exists (uid 'hand-made') with another uid than the one "
        "pushed; rename or delete it in Grafana")
    assert set(grafana.datasources) == {"hand-made"}
    assert grafana.datasources["hand-made"]["jsonData"] == {"host": "old"}
    _assert_no_token(raised.value, caplog)


def test_412_a_dashboard_saved_by_someone_else_during_the_push(grafana: FakeGrafana,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _push(grafana)
    dashboards = _dashboards()
    dashboards[0]["tags"] = ["icewatch", "calls"]
    grafana.save_dashboard_after_next_read("iw-calls")

    with pytest.raises(GrafanaError) as raised:
        _push(grafana, dashboards=dashboards)
    assert raised.value.status == 412
    message = str(raised.value)
    assert message.startswith("dashboard 'Calls' was saved in Grafana by someone else during this push "
                              "(412 version-mismatch")
    assert "then push again" in message
    assert grafana.dashboards["iw-calls"]["dashboard"]["tags"] == ["icewatch"]  # their version kept
    _assert_no_token(raised.value, caplog)

    report = _push(grafana, dashboards=dashboards)  # as the message says: push again
    assert report.outcome("dashboard", "iw-calls") == "updated"
    assert grafana.dashboards["iw-calls"]["dashboard"]["tags"] == ["icewatch", "calls"]


def test_412_a_dashboard_title_taken_in_the_folder(grafana: FakeGrafana, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _push(grafana, dashboards=[])
    grafana.add_dashboard({"uid": "hand-made", "title": "Calls", "panels": []}, "icewatch")

    with pytest.raises(GrafanaError) as raised:
        _push(grafana)
    assert raised.value.status == 412
    assert str(raised.value).startswith(
        "another dashboard titled 'Calls' already exists in the folder (412 name-exists while creating dashboard "
        "'Calls' in folder 'icewatch'); rename or move it in Grafana")
    assert set(grafana.dashboards) == {"hand-made"}  # not taken over
    _assert_no_token(raised.value, caplog)


def test_unreachable_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GrafanaError) as raised:
        _push(url)
    assert raised.value.status is None
    assert str(raised.value).startswith(f"cannot reach Grafana at {url} while reading folder 'icewatch'")
    _assert_no_token(raised.value, caplog)


def test_unreachable_no_answer_within_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(GrafanaError) as raised:
            _push(url, timeout=0.5)
    assert raised.value.status is None
    assert str(raised.value).startswith(f"cannot reach Grafana at {url}")
    _assert_no_token(raised.value, caplog)


def test_a_url_that_is_not_http() -> None:
    with pytest.raises(GrafanaError, match="is not a Grafana base URL"):
        _push("grafana.example.com:3000")


def test_user_and_password_in_the_url_are_not_repeated(grafana: FakeGrafana) -> None:
    url = grafana.url.replace("http://", "http://admin:hunter2@")
    with pytest.raises(GrafanaError) as raised:
        _push(url, token=WRONG)
    assert "hunter2" not in str(raised.value) and grafana.url in str(raised.value)


def test_malformed_arguments_are_refused_before_any_request(grafana: FakeGrafana) -> None:
    with pytest.raises(ValueError, match=r"dashboards\[1\]\['uid'\]"):
        _push(grafana, dashboards=[{"uid": "a", "title": "A"}, {"title": "B"}])
    with pytest.raises(ValueError, match="appears twice"):
        _push(grafana, dashboards=[{"uid": "a", "title": "A"}, {"uid": "a", "title": "B"}])
    assert not grafana.requests


# -- the fake itself refuses what the docs do not allow --------------------------------------------------


def _raw(fake: FakeGrafana, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
         token: str = ADMIN) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(fake.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_fake_refuses_undocumented_shapes(grafana: FakeGrafana) -> None:
    assert _raw(grafana, "POST", "/api/folders", {"uid": "x", "title": "X"}, content_type="text/plain")[0] == 400
    assert _raw(grafana, "POST", "/api/folders", {"uid": "x"})[0] == 400  # no title
    assert _raw(grafana, "POST", "/api/datasources", {"name": "n", "type": "t"})[0] == 400  # no access
    assert _raw(grafana, "POST", "/api/dashboards/db", {"dashboard": {"uid": "d"}})[1]["status"] == "empty-name"
    assert _raw(grafana, "POST", "/api/dashboards/db", {"title": "D"})[0] == 400  # no dashboard object
    assert _raw(grafana, "GET", "/api/folders/x", token=WRONG)[0] == 401
    assert _raw(grafana, "POST", "/api/folders", {"uid": "x", "title": "X"}, token=VIEWER)[0] == 403

    assert _raw(grafana, "POST", "/api/folders", {"uid": "x", "title": "X"})[0] == 200
    assert _raw(grafana, "PUT", "/api/folders/x", {"title": "Y"})[1]["status"] == "version-mismatch"  # no version
    assert _raw(grafana, "POST", "/api/dashboards/db", {"dashboard": {"uid": "d", "title": "D"},
                                                        "folderUid": "nope"})[0] == 400  # unknown folder
    saved = {"dashboard": {"uid": "d", "title": "D"}, "folderUid": "x", "overwrite": False}
    assert _raw(grafana, "POST", "/api/dashboards/db", saved)[1]["version"] == 1
    status, body = _raw(grafana, "POST", "/api/dashboards/db", saved)  # no version: someone else's change?
    assert (status, body["status"]) == (412, "version-mismatch")
    other = {"dashboard": {"uid": "e", "title": "D"}, "folderUid": "x", "overwrite": False}
    assert _raw(grafana, "POST", "/api/dashboards/db", other)[1]["status"] == "name-exists"
