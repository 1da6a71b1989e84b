"""A fake Grafana HTTP API (tests only). No real Grafana server can run on these machines, so this
in-process stand-in (stdlib ``http.server`` on 127.0.0.1, a free port) serves only the endpoints
``dashboards/push.py`` uses, enforces their documented request shapes and answers with the
documented status codes and bodies; anything else is refused, so a push that passes against it
sent what the docs ask for. It keeps what it was sent (``folders``, ``datasources``, ``secrets``,
``dashboards``, ``requests``) for the tests to assert.

What was checked, and where (grafana/grafana, the legacy /api routes that Grafana 11.6 serves):
- docs/sources/developers/http_api/folder.md: GET /api/folders/:uid (200 folder, 404); POST
  /api/folders {uid?, title} (200 folder, 400, 409 "Folder already exists"); PUT
  /api/folders/:uid {title, version, overwrite?} (200, 404, 412 ``version-mismatch`` when the
  version is not the current one and overwrite is not set).
- docs/sources/developers/http_api/data_source.md: GET /api/datasources/uid/:uid and
  /api/datasources/name/:name (200 datasource, 404); POST /api/datasources (name, type, access;
  secrets under secureJsonData, answered only as secureJsonFields; 200 {datasource, id, message:
  "Datasource added", name}); PUT /api/datasources/uid/:uid (the whole datasource, 200 "Datasource
  updated"). 409 for a name or uid already taken, and for a stale ``version`` on update: Grafana's
  pkg/api/datasources.go (response.Error(409, ...)) and pkg/services/datasources errors.
- docs/sources/developers/http_api/dashboard.md: POST /api/dashboards/db {dashboard, folderUid,
  overwrite, message} (200 {id, uid, url, status: "success", version, slug}; 400 missing or
  invalid fields; 412 {message, status} with ``version-mismatch``, ``name-exists``); GET
  /api/dashboards/uid/:uid (200 {dashboard, meta: {folderUid, ...}}, 404). Which conflict gives
  which status follows pkg/services/dashboards/errors.go (ErrDashboardVersionMismatch and
  ErrDashboardWithSameNameInFolderExists: 412; ErrDashboardTitleEmpty: 400 ``empty-name``) and the
  save in pkg/services/dashboards/database (a different version is refused unless overwrite; a
  same-titled dashboard in the folder is refused unless overwrite, which takes it over).
- Authorization: Bearer <service-account token>; 401 without or with an unknown token; 403
  {accessErrorId, message: "You'll need additional permissions ... Permissions needed: <action>",
  title: "Access denied"} when the token's role lacks the action. Roles are Grafana's defaults
  (pkg/api/accesscontrol.go: fixed:datasources:reader/writer are granted to Admin only): Viewer
  reads folders and dashboards; Editor also writes them; Admin also reads and writes datasources.
- POST and PUT bodies must be ``Content-Type: application/json`` (Grafana's binding), else 400.
A path outside ``<prefix>/api/`` answers Grafana's HTML 404 page, as a wrong base URL would.
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

Role = Literal["Viewer", "Editor", "Admin"]

_ROLE_ACTIONS: dict[Role, frozenset[str]] = {
    "Viewer": frozenset({"folders:read", "dashboards:read"}),
    "Editor": frozenset({"folders:read", "folders:create", "folders:write",
                         "dashboards:read", "dashboards:create", "dashboards:write"}),
    "Admin": frozenset({"folders:read", "folders:create", "folders:write",
                        "dashboards:read", "dashboards:create", "dashboards:write",
                        "datasources:read", "datasources:create", "datasources:write"}),
}
_UID = re.compile(r"^[a-zA-Z0-9\-_]{1,40}$")


class _Answer(Exception):
    """Raised by a route to answer ``status`` with the JSON ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _refuse(code: int, message: str, **extra: Any) -> _Answer:
    return _Answer(code, {"message": message, **extra})


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@dataclass
class Request:
    method: str
    path: str  # without the prefix
    body: Any  # the decoded JSON body (None for GET)


@dataclass
class FakeGrafana:
    """State and semantics; ``serve_fake_grafana`` puts it behind HTTP. ``tokens``: token -> role."""

    tokens: dict[str, Role]
    prefix: str = ""  # the path Grafana is served under, e.g. "/grafana"
    url: str = ""
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)  # as answered, by uid
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # secureJsonData, by datasource uid
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # {dashboard, folderUid, message}
    requests: list[Request] = field(default_factory=list)
    _next_id: int = 1
    _save_after_read: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- for tests --------------------------------------------------------------------------

    def save_dashboard_after_next_read(self, uid: str) -> None:
        """Someone else saves dashboard ``uid`` (its version goes up) right after the next GET of
        it: the race a push's version check is for."""
        self._save_after_read.add(uid)

    def add_datasource(self, ds: dict[str, Any]) -> None:
        """A datasource made by someone else (e.g. by hand in the UI)."""
        with self._lock:
            self._create_datasource(ds)

    def add_dashboard(self, dashboard: dict[str, Any], folder_uid: str) -> None:
        """A dashboard made by someone else, in folder ``folder_uid`` (which must exist)."""
        with self._lock:
            self._save_dashboard({"dashboard": dashboard, "folderUid": folder_uid, "overwrite": False})

    # -- the HTTP side ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
               ) -> tuple[int, str, bytes]:
        """Answer one request: (status, content type, body)."""
        path = urlsplit(raw_path).path
        if not path.startswith(self.prefix + "/api/"):
            return 404, "text/html; charset=UTF-8", b"<!doctype html><title>Grafana</title><h1>Page not found</h1>"
        path = path[len(self.prefix):]
        try:
            role = self._role(headers.get("authorization", ""))
            body: Any = None
            if method in ("POST", "PUT"):
                if not headers.get("content-type", "").startswith("application/json"):
                    raise _refuse(400, "bad request data")
                try:
                    body = json.loads(raw_body or b"null")
                except ValueError:
                    raise _refuse(400, "bad request data") from None
            with self._lock:
                self.requests.append(Request(method, path, copy.deepcopy(body)))
                status, answer = self._route(method, path, role, body)
        except _Answer as exc:
            status, answer = exc.status, exc.body
        return status, "application/json", json.dumps(answer).encode()

    def _role(self, authorization: str) -> Role:
        scheme, _, token = authorization.partition(" ")
        role = self.tokens.get(token) if scheme == "Bearer" else None
        if role is None:
            raise _refuse(401, "Unauthorized", messageId="auth.unauthorized", statusCode=401)
        return role

    @staticmethod
    def _allow(role: Role, action: str) -> None:
        if action not in _ROLE_ACTIONS[role]:
            raise _refuse(403, "You'll need additional permissions to perform this action. "
                               f"Permissions needed: {action}", accessErrorId="ACE0000000001", title="Access denied")

    def _route(self, method: str, path: str, role: Role, body: Any) -> tuple[int, dict[str, Any]]:
        parts = [unquote(p) for p in path.split("/")[2:]]  # after "/api/"
        match method, parts:
            case "GET", ["folders", uid]:
                self._allow(role, "folders:read")
                return 200, self._folder(uid)
            case "POST", ["folders"]:
                self._allow(role, "folders:create")
                return 200, self._create_folder(body)
            case "PUT", ["folders", uid]:
                self._allow(role, "folders:write")
                return 200, self._update_folder(uid, body)
            case "GET", ["datasources", "uid", uid]:
                self._allow(role, "datasources:read")
                return 200, self._datasource(uid)
            case "GET", ["datasources", "name", name]:
                self._allow(role, "datasources:read")
                for ds in self.datasources.values():
                    if ds["name"] == name:
                        return 200, copy.deepcopy(ds)
                raise _refuse(404, "Data source not found")
            case "POST", ["datasources"]:
                self._allow(role, "datasources:create")
                ds = self._create_datasource(body)
                return 200, {"datasource": ds, "id": ds["id"], "message": "Datasource added", "name": ds["name"]}
            case "PUT", ["datasources", "uid", uid]:
                self._allow(role, "datasources:write")
                ds = self._update_datasource(uid, body)
                return 200, {"datasource": ds, "id": ds["id"], "message": "Datasource updated", "name": ds["name"]}
            case "GET", ["dashboards", "uid", uid]:
                self._allow(role, "dashboards:read")
                return 200, self._dashboard(uid)
            case "POST", ["dashboards", "db"]:
                self._allow(role, "dashboards:write")
                return 200, self._save_dashboard(body)
        raise _refuse(404, "Not found")

    # -- folders --------------------------------------------------------------------------------

    def _folder(self, uid: str) -> dict[str, Any]:
        if uid not in self.folders:
            raise _refuse(404, "folder not found", status="not-found")
        return copy.deepcopy(self.folders[uid])

    def _create_folder(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) - {"uid", "title", "parentUid", "description"}:
            raise _refuse(400, "bad request data")
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _refuse(400, "folder title cannot be empty")
        uid = body.get("uid") or f"f{self._next_id:08d}"
        if not isinstance(uid, str) or not _UID.match(uid):
            raise _refuse(400, "invalid uid for folder provided")
        if uid in self.folders or uid in self.dashboards:
            raise _refuse(409, "a folder/dashboard with the same uid already exists")
        if any(f["title"] == title for f in self.folders.values()):
            raise _refuse(409, "a folder or dashboard in the general folder with the same name already exists")
        folder = {"id": self._take_id(), "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/{_slug(title)}",
                  "hasAcl": False, "canSave": True, "canEdit": True, "canAdmin": True, "version": 1}
        self.folders[uid] = folder
        return copy.deepcopy(folder)

    def _update_folder(self, uid: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) - {"uid", "title", "description", "version", "overwrite"}:
            raise _refuse(400, "bad request data")
        folder = self._folder(uid)
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            raise _refuse(412, "the folder has been changed by someone else", status="version-mismatch")
        title = body.get("title", folder["title"])
        if not isinstance(title, str) or not title.strip():
            raise _refuse(400, "folder title cannot be empty")
        if any(f["title"] == title and f["uid"] != uid for f in self.folders.values()):
            raise _refuse(409, "a folder or dashboard in the general folder with the same name already exists")
        folder.update(title=title, version=folder["version"] + 1, url=f"/dashboards/f/{uid}/{_slug(title)}")
        self.folders[uid] = folder
        return copy.deepcopy(folder)

    # -- datasources ----------------------------------------------------------------------------

    def _datasource(self, uid: str) -> dict[str, Any]:
        if uid not in self.datasources:
            raise _refuse(404, "Data source not found")
        return copy.deepcopy(self.datasources[uid])

    @staticmethod
    def _check_datasource(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _refuse(400, "bad request data")
        for key in ("name", "type", "access"):  # binding:"Required" in Grafana's add/update commands
            if not isinstance(body.get(key), str) or not body[key]:
                raise _refuse(400, f"bad request data: {key} is required")
        if body["access"] not in ("proxy", "direct"):
            raise _refuse(400, "bad request data: access must be proxy or direct")
        for key in ("jsonData", "secureJsonData"):
            if body.get(key) is not None and not isinstance(body[key], dict):
                raise _refuse(400, f"bad request data: {key} must be an object")
        uid = body.get("uid")
        if uid is not None and (not isinstance(uid, str) or not _UID.match(uid)):
            raise _refuse(400, "invalid uid for data source")
        return body

    def _create_datasource(self, body: Any) -> dict[str, Any]:
        body = self._check_datasource(body)
        uid = body.get("uid") or f"d{self._next_id:08d}"
        if any(ds["name"] == body["name"] for ds in self.datasources.values()):
            raise _refuse(409, "data source with the same name already exists")
        if uid in self.datasources:
            raise _refuse(409, "data source with the same uid already exists")
        secrets = dict(body.get("secureJsonData") or {})
        ds = self._datasource_dto(self._take_id(), uid, body, secrets, version=1)
        self.datasources[uid] = ds
        self.secrets[uid] = secrets
        return copy.deepcopy(ds)

    def _update_datasource(self, uid: str, body: Any) -> dict[str, Any]:
        current = self._datasource(uid)
        body = self._check_datasource(body)
        if any(ds["name"] == body["name"] and key != uid for key, ds in self.datasources.items()):
            raise _refuse(409, "Failed to update datasource: data source with the same name already exists")
        if body.get("version") and body["version"] < current["version"]:
            raise _refuse(409, "Datasource has already been updated by someone else. Please reload and try again")
        new_uid = body.get("uid") or uid
        secrets = {**self.secrets.pop(uid, {}), **(body.get("secureJsonData") or {})}  # kept unless sent
        ds = self._datasource_dto(current["id"], new_uid, body, secrets, version=current["version"] + 1)
        del self.datasources[uid]
        self.datasources[new_uid] = ds
        self.secrets[new_uid] = secrets
        return copy.deepcopy(ds)

    @staticmethod
    def _datasource_dto(ds_id: int, uid: str, body: dict[str, Any], secrets: dict[str, Any], *,
                        version: int) -> dict[str, Any]:
        return {
            "id": ds_id, "uid": uid, "orgId": 1, "name": body["name"], "type": body["type"], "typeLogoUrl": "",
            "access": body["access"], "url": body.get("url", ""), "user": body.get("user", ""),
            "database": body.get("database", ""), "basicAuth": body.get("basicAuth", False),
            "basicAuthUser": body.get("basicAuthUser", ""), "withCredentials": body.get("withCredentials", False),
            "isDefault": body.get("isDefault", False), "jsonData": copy.deepcopy(body.get("jsonData") or {}),
            "secureJsonFields": {key: True for key in secrets}, "version": version, "readOnly": False,
        }

    # -- dashboards ------------------------------------------------------------------------------

    def _dashboard(self, uid: str) -> dict[str, Any]:
        if uid not in self.dashboards:
            raise _refuse(404, "Dashboard not found", status="not-found")
        stored = self.dashboards[uid]
        dashboard = stored["dashboard"]
        folder = self.folders.get(stored["folderUid"])
        slug = _slug(dashboard["title"])
        answer = {
            "dashboard": copy.deepcopy(dashboard),
            "meta": {"isStarred": False, "url": f"/d/{uid}/{slug}", "slug": slug,
                     "folderId": folder["id"] if folder else 0, "folderUid": stored["folderUid"],
                     "folderTitle": folder["title"] if folder else "General", "version": dashboard["version"]},
        }
        if uid in self._save_after_read:  # someone else saves it now, after this read
            self._save_after_read.discard(uid)
            dashboard["version"] += 1
        return answer

    def _save_dashboard(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) - {"dashboard", "folderId", "folderUid", "overwrite", "message"}:
            raise _refuse(400, "bad request data")
        model = body.get("dashboard")
        if not isinstance(model, dict):
            raise _refuse(400, "bad request data: dashboard is required")
        title = model.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _refuse(400, "Dashboard title cannot be empty", status="empty-name")
        folder_uid = body.get("folderUid") or ""
        if folder_uid and folder_uid not in self.folders:
            raise _refuse(400, "folder not found")
        overwrite = body.get("overwrite") is True
        model = copy.deepcopy(model)
        uid = model.get("uid")
        if uid is not None and (not isinstance(uid, str) or not _UID.match(uid)):
            raise _refuse(400, "uid contains illegal characters" if isinstance(uid, str) and len(uid) <= 40
                          else "uid too long, max 40 characters")
        existing: dict[str, Any] | None = None
        if model.get("id"):
            existing = next((d["dashboard"] for d in self.dashboards.values() if d["dashboard"]["id"] == model["id"]),
                            None)
            if existing is None:
                raise _refuse(404, "Dashboard not found", status="not-found")
        elif uid and uid in self.dashboards:
            existing = self.dashboards[uid]["dashboard"]
        if existing is not None and model.get("version") != existing["version"] and not overwrite:
            raise _refuse(412, "The dashboard has been changed by someone else", status="version-mismatch")
        same_title = next((d["dashboard"] for d in self.dashboards.values()
                           if d["folderUid"] == folder_uid and _slug(d["dashboard"]["title"]) == _slug(title)
                           and (existing is None or d["dashboard"]["id"] != existing["id"])), None)
        if same_title is not None:
            if not overwrite:
                raise _refuse(412, "A dashboard with the same name in the folder already exists", status="name-exists")
            existing = same_title  # Grafana takes the same-titled dashboard over, its uid included
        if existing is not None:
            del self.dashboards[existing["uid"]]
            model.update(id=existing["id"], uid=existing["uid"], version=existing["version"] + 1)
        else:
            model.update(id=self._take_id(), uid=uid or f"b{self._next_id:08d}", version=1)
        self.dashboards[model["uid"]] = {"dashboard": model, "folderUid": folder_uid, "message": body.get("message")}
        slug = _slug(title)
        return {"id": model["id"], "uid": model["uid"], "url": f"/d/{model['uid']}/{slug}", "status": "success",
                "version": model["version"], "slug": slug}

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeGrafana  # set on the subclass made per server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, content_type, body = self.fake.handle(self.command, self.path, headers, raw)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_fake_grafana(tokens: dict[str, Role], prefix: str = "") -> Iterator[FakeGrafana]:
    """A running fake Grafana; ``.url`` is its base URL (``http://127.0.0.1:PORT`` + ``prefix``)."""
    fake = FakeGrafana(tokens=tokens, prefix=prefix.rstrip("/"))
    handler = type("FakeGrafanaHandler", (_Handler,), {"fake": fake})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{fake.prefix}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
