"""Push icewatch's folder, ClickHouse datasource and dashboards to Grafana through its HTTP API
(grafana-client), idempotently: what Grafana already holds is compared first, so pushing twice
changes nothing and reports every object "unchanged".

Endpoints (Grafana's HTTP API, docs/sources/developers/http_api/{folder,data_source,dashboard}.md;
the legacy /api routes, served by Grafana 11.6+):
  folder      GET /api/folders/:uid; 404 -> POST /api/folders {uid, title};
              another title -> PUT /api/folders/:uid {title, version}
  datasource  GET /api/datasources/uid/:uid; 404 -> POST /api/datasources; differs ->
              PUT /api/datasources/uid/:uid (the whole datasource; secureJsonData kept if not sent)
  dashboard   GET /api/dashboards/uid/:uid; absent or differs (ignoring id and version) ->
              POST /api/dashboards/db {dashboard, folderUid, overwrite: false, message}

Dashboards are saved with ``overwrite: false`` and, for an update, the ``version`` just read:
Grafana then refuses (412) instead of silently replacing a dashboard that someone saved while the
push ran (``version-mismatch``) or another dashboard with the same title in the folder
(``name-exists``; with ``overwrite: true`` Grafana would take that dashboard over, uid and all).

Every grafana-client and HTTP-library failure becomes one ``collector.errors.GrafanaError`` whose
message says what was being done and what to do. The token is never logged nor put in a message.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import niquests.exceptions
from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
)

from collector.errors import GrafanaError

log = logging.getLogger(__name__)

CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
PUSH_MESSAGE = "icewatch dashboards push"

Kind = Literal["folder", "datasource", "dashboard"]
Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class PushedObject:
    kind: Kind
    uid: str
    title: str  # the folder's or dashboard's title, the datasource's name
    outcome: Outcome


@dataclass(frozen=True)
class PushReport:
    """What one push did to each object, in the order pushed: the folder, the datasource, then
    each dashboard."""

    url: str  # Grafana's base URL, without any user:password
    objects: tuple[PushedObject, ...]

    def outcome(self, kind: Kind, uid: str) -> Outcome:
        for obj in self.objects:
            if obj.kind == kind and obj.uid == uid:
                return obj.outcome
        raise KeyError(f"no {kind} {uid!r} in this push")

    @property
    def changed(self) -> bool:
        return any(obj.outcome != "unchanged" for obj in self.objects)

    def lines(self) -> list[str]:
        """One line an object, e.g. ``dashboard  calls-overview  "Calls overview"  unchanged``."""
        return [f"{obj.kind:<10}  {obj.uid}  {obj.title!r}  {obj.outcome}" for obj in self.objects]


def clickhouse_datasource(*, uid: str, name: str, host: str, port: int, protocol: Literal["native", "http"],
                          secure: bool, username: str, database: str,
                          password: str | None = None) -> dict[str, Any]:
    """The datasource dict ``push`` expects for the Grafana ClickHouse plugin
    (grafana-clickhouse-datasource, jsonData of its provisioning format)."""
    ds: dict[str, Any] = {
        "uid": uid,
        "name": name,
        "type": CLICKHOUSE_PLUGIN,
        "access": "proxy",
        "jsonData": {
            "host": host,
            "port": port,
            "protocol": protocol,
            "secure": secure,
            "username": username,
            "defaultDatabase": database,
        },
    }
    if password is not None:
        ds["secureJsonData"] = {"password": password}
    return ds


def push(url: str, token: str, *, folder_uid: str, folder_title: str, datasource: dict[str, Any],
         dashboards: Sequence[dict[str, Any]], timeout: float = 10.0) -> PushReport:
    """Create or update, in Grafana at ``url``, the folder ``folder_uid`` titled ``folder_title``,
    the ``datasource`` and every dashboard of ``dashboards`` (saved in that folder), and report
    what each became: created, updated or unchanged.

    ``url``: Grafana's base URL (``https://grafana.example.com`` or ``http://host:3000/grafana``,
    the part before ``/api``); Grafana 11.6 or later.
    ``token``: a service-account token (Bearer) with the Admin role: by default only Admin may
    read and write datasources (Editor may write folders and dashboards).
    ``datasource``: Grafana's datasource shape: ``uid``, ``name``, ``type``, ``access`` and
    ``jsonData``, optionally ``secureJsonData`` (see ``clickhouse_datasource``). Grafana never
    returns secrets, so a datasource whose other fields match and whose secret fields are already
    set is "unchanged": a changed password alone is not pushed.
    ``dashboards``: Grafana dashboard JSON models, each with its own ``uid`` and ``title``; ``id``
    and ``version`` are ignored (Grafana's own). A dashboard equal to what Grafana holds (ignoring
    id and version) and in the folder already is "unchanged" and not saved.
    ``timeout``: seconds for each HTTP request.

    Raises ``collector.errors.GrafanaError`` (with ``status``) when Grafana refuses or cannot be
    reached; ``ValueError`` when the arguments themselves are malformed (missing uid or title).
    Objects pushed before the failure stay pushed; pushing again resumes.
    """
    _check_inputs(folder_uid, folder_title, datasource, dashboards)
    grafana = _Grafana(url, token, timeout)
    try:
        objects = [
            grafana.ensure_folder(folder_uid, folder_title),
            grafana.ensure_datasource(datasource),
        ]
        objects += [grafana.ensure_dashboard(dashboard, folder_uid, folder_title) for dashboard in dashboards]
    finally:
        grafana.close()
    report = PushReport(url=grafana.display_url, objects=tuple(objects))
    for obj in report.objects:
        log.info("grafana push to %s: %s %s %s", report.url, obj.kind, obj.uid, obj.outcome)
    return report


def _check_inputs(folder_uid: str, folder_title: str, datasource: dict[str, Any],
                  dashboards: Sequence[dict[str, Any]]) -> None:
    if not folder_uid or not folder_title:
        raise ValueError("push needs a folder uid and title")
    for key in ("uid", "name", "type", "access"):
        if not isinstance(datasource.get(key), str) or not datasource[key]:
            raise ValueError(f"datasource[{key!r}] must be a non-empty string")
    seen: set[str] = set()
    for i, dashboard in enumerate(dashboards):
        for key in ("uid", "title"):
            if not isinstance(dashboard.get(key), str) or not dashboard[key]:
                raise ValueError(f"dashboards[{i}][{key!r}] must be a non-empty string")
        if dashboard["uid"] in seen:
            raise ValueError(f"dashboards[{i}]: uid {dashboard['uid']!r} appears twice")
        seen.add(dashboard["uid"])


@dataclass(frozen=True)
class _Step:
    """What a request does, for messages: ``doing`` ("creating folder 'icewatch'"), ``endpoint``
    ("POST /api/folders"), and the object's kind and title or name (for 403, 409 and 412)."""

    doing: str
    endpoint: str
    kind: Kind
    name: str


class _Grafana:
    """grafana-client behind typed methods; every call goes through ``_call`` (the error map)."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GrafanaError(f"{url!r} is not a Grafana base URL (expected http(s)://host[:port][/path])")
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        if ":" in parts.hostname:  # IPv6 literal
            netloc = f"[{parts.hostname}]" if parts.port is None else f"[{parts.hostname}]:{parts.port}"
        path = parts.path.rstrip("/") + "/"  # grafana-client appends "api" to the path as is
        base = urlunsplit((parts.scheme, netloc, path, "", ""))
        self.display_url = base.rstrip("/")
        token = token.strip()  # e.g. read from a file with its newline
        if not token or any(c.isspace() or not c.isprintable() for c in token):
            raise GrafanaError("the Grafana token is empty or contains spaces or control characters: create a "
                               "service-account token with the Admin role and pass it as is", 401)
        self._token = token
        self._api = GrafanaApi.from_url(url=base, credential=token, timeout=timeout)

    def close(self) -> None:
        self._api.client.s.close()  # grafana-client's niquests session

    # -- the three objects ------------------------------------------------------------------

    def ensure_folder(self, uid: str, title: str) -> PushedObject:
        path = f"/api/folders/{quote(uid, safe='')}"
        step = _Step(f"reading folder {uid!r}", f"GET {path}", "folder", title)
        current = self._call(step, lambda: self._api.folder.get_folder(uid), absent_ok=True)
        if current is None:
            step = _Step(f"creating folder {title!r}", "POST /api/folders", "folder", title)
            self._call(step, lambda: self._api.folder.create_folder(title, uid=uid))
            return PushedObject("folder", uid, title, "created")
        if current.get("title") == title:
            return PushedObject("folder", uid, title, "unchanged")
        version = current.get("version")
        step = _Step(f"renaming folder {uid!r} to {title!r}", f"PUT {path}", "folder", title)
        self._call(step, lambda: self._api.folder.update_folder(uid, title=title, version=version))
        return PushedObject("folder", uid, title, "updated")

    def ensure_datasource(self, datasource: dict[str, Any]) -> PushedObject:
        uid: str = datasource["uid"]
        name: str = datasource["name"]
        path = f"/api/datasources/uid/{quote(uid, safe='')}"
        step = _Step(f"reading datasource {uid!r}", f"GET {path}", "datasource", name)
        current = self._call(step, lambda: self._api.datasource.get_datasource_by_uid(uid), absent_ok=True)
        body = copy.deepcopy(datasource)
        if current is None:
            step = _Step(f"creating datasource {name!r}", "POST /api/datasources", "datasource", name)
            self._call(step, lambda: self._api.datasource.create_datasource(body))
            return PushedObject("datasource", uid, name, "created")
        if _datasource_matches(current, datasource):
            return PushedObject("datasource", uid, name, "unchanged")
        step = _Step(f"updating datasource {name!r}", f"PUT {path}", "datasource", name)
        self._call(step, lambda: self._api.datasource.update_datasource_by_uid(uid, body))
        return PushedObject("datasource", uid, name, "updated")

    def ensure_dashboard(self, dashboard: dict[str, Any], folder_uid: str, folder_title: str) -> PushedObject:
        uid: str = dashboard["uid"]
        title: str = dashboard["title"]
        path = f"/api/dashboards/uid/{quote(uid, safe='')}"
        step = _Step(f"reading dashboard {uid!r}", f"GET {path}", "dashboard", title)
        current = self._call(step, lambda: self._api.dashboard.get_dashboard(uid), absent_ok=True)
        model = {k: copy.deepcopy(v) for k, v in dashboard.items() if k not in ("id", "version")}
        if current is not None:
            stored = current.get("dashboard")
            meta = current.get("meta")
            if not isinstance(stored, dict) or not isinstance(meta, dict):
                raise GrafanaError(f"{self.display_url} answered GET {path} without a dashboard and its meta — "
                                   f"is {self.display_url} a Grafana (11.6+) base URL?")
            same = {k: v for k, v in stored.items() if k not in ("id", "version")} == model
            if same and meta.get("folderUid") == folder_uid:
                return PushedObject("dashboard", uid, title, "unchanged")
            model["version"] = stored.get("version")
        body = {"dashboard": model, "folderUid": folder_uid, "overwrite": False, "message": PUSH_MESSAGE}
        doing = f"{'updating' if current is not None else 'creating'} dashboard {title!r} in folder {folder_title!r}"
        step = _Step(doing, "POST /api/dashboards/db", "dashboard", title)
        self._call(step, lambda: self._api.dashboard.update_dashboard(body))
        return PushedObject("dashboard", uid, title, "updated" if current is not None else "created")

    # -- the error map ----------------------------------------------------------------------

    def _call(self, step: _Step, request: Callable[[], Any], *, absent_ok: bool = False) -> dict[str, Any] | None:
        """Run one grafana-client request; ``None`` for a 404 when ``absent_ok`` (the object does
        not exist yet); a JSON object otherwise, or ``GrafanaError``."""
        try:
            answer = request()
        except GrafanaClientError as exc:
            if exc.status_code == 404 and absent_ok:
                return None
            raise self._refused(step, exc.status_code, exc.response) from exc
        except GrafanaServerError as exc:
            raise self._error(
                f"Grafana at {self.display_url} failed ({exc.status_code}) while {step.doing} ({step.endpoint}): "
                f"{_server_message(exc.response)}; see Grafana's log, then push again", exc.status_code) from exc
        except GrafanaTimeoutError as exc:
            raise self._error(
                f"cannot reach Grafana at {self.display_url}: no answer within the timeout while {step.doing} "
                f"({step.endpoint})") from exc
        except GrafanaException as exc:  # grafana-client's wrapper of other HTTP-library errors (status 0)
            raise self._error(f"cannot reach Grafana at {self.display_url} while {step.doing}: {exc.message}") from exc
        except niquests.exceptions.JSONDecodeError as exc:
            raise self._error(f"{self.display_url} answered {step.endpoint} with something other than JSON — "
                              f"is {self.display_url} a Grafana (11.6+) base URL?") from exc
        except niquests.exceptions.RequestException as exc:  # connection refused, DNS, TLS: not wrapped
            raise self._error(f"cannot reach Grafana at {self.display_url} while {step.doing}: "
                              f"{_connection_reason(exc)}") from exc
        if not isinstance(answer, dict):
            raise self._error(f"{self.display_url} answered {step.endpoint} with something other than a JSON object "
                              f"— is {self.display_url} a Grafana (11.6+) base URL?")
        return answer

    def _refused(self, step: _Step, status: int, response: Any) -> GrafanaError:
        said = _server_message(response)
        where = f"Grafana at {self.display_url}"
        if status == 401:
            return self._error(
                f"{where} answered 401 while {step.doing}: the token was refused (create a service-account "
                "token with the Admin role; Editor is enough for folders and dashboards, not the datasource)", status)
        if status == 403:
            hint = " (datasources need the Admin role)" if step.kind == "datasource" else ""
            return self._error(f"the token lacks permission for {step.doing} ({step.endpoint}){hint}: {said}", status)
        if status == 404 and step.endpoint.startswith("PUT"):
            return self._error(f"{step.kind} {step.name!r} was deleted in Grafana during this push ({step.endpoint} "
                               "answered 404); push again to create it", status)
        if status == 404:
            return self._error(f"{step.endpoint}: not found — is {self.display_url} a Grafana (11.6+) base URL?",
                               status)
        if status == 409:
            return self._error(self._conflict(step, said), status)
        if status == 412:
            return self._error(self._precondition(step, response, said), status)
        return self._error(f"{where} rejected {step.doing} ({step.endpoint}, {status}): {said}", status)

    def _conflict(self, step: _Step, said: str) -> str:
        if step.kind == "datasource" and "name" in said:
            other = self._datasource_uid_by_name(step.name)
            which = f" (uid {other!r})" if other else ""
            return (f"a datasource named {step.name!r} already exists{which} with another uid than the one pushed; "
                    "rename or delete it in Grafana (Connections > Data sources), or push with its uid")
        if step.kind == "datasource":
            return (f"Grafana refused {step.doing} (409): {said}; another change was saved meanwhile, "
                    "push again")
        if step.kind == "folder":
            return (f"a folder titled {step.name!r} already exists with another uid (409: {said}); "
                    "rename or delete it in Grafana, or push with its uid")
        return f"Grafana refused {step.doing} ({step.endpoint}, 409): {said}"

    def _precondition(self, step: _Step, response: Any, said: str) -> str:
        status = response.get("status") if isinstance(response, dict) else None
        if status == "version-mismatch":
            return (f"{step.kind} {step.name!r} was saved in Grafana by someone else during this push "
                    f"(412 version-mismatch while {step.doing}); look at their change, then push again: "
                    "the push replaces it")
        if status == "name-exists":
            return (f"another dashboard titled {step.name!r} already exists in the folder (412 name-exists while "
                    f"{step.doing}); rename or move it in Grafana, or delete it, then push again")
        if status == "plugin-dashboard":
            return (f"dashboard {step.name!r} belongs to a Grafana plugin (412 plugin-dashboard); "
                    "remove the plugin's dashboard, then push again")
        return f"Grafana refused {step.doing} ({step.endpoint}, 412): {said}"

    def _datasource_uid_by_name(self, name: str) -> str | None:
        """Best effort, for the 409 message only: the uid of the datasource holding ``name``."""
        step = _Step(f"reading datasource named {name!r}", f"GET /api/datasources/name/{quote(name, safe='')}",
                     "datasource", name)
        try:
            found = self._call(step, lambda: self._api.datasource.get_datasource_by_name(name), absent_ok=True)
        except GrafanaError:
            return None
        uid = found.get("uid") if found else None
        return uid if isinstance(uid, str) else None

    def _error(self, message: str, status: int | None = None) -> GrafanaError:
        if self._token:
            message = message.replace(self._token, "<token>")
        return GrafanaError(message, status)


def _server_message(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("message"), str):
        return str(response["message"])
    text = str(response or "").strip()
    return text[:200] if text else "no message"


def _connection_reason(exc: Exception) -> str:
    """The part of an HTTP library's connection error an operator acts on."""
    text = str(exc)
    if isinstance(exc, niquests.exceptions.SSLError):
        return f"TLS failed ({text[:300]})"
    if "Connection refused" in text:
        return "connection refused (is Grafana running, and on this host and port?)"
    if "Failed to resolve" in text or "Name or service not known" in text:
        return "the host name does not resolve"
    return f"{type(exc).__name__}: {text[:300]}"


def _datasource_matches(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Grafana's datasource ``current`` already is ``desired``: every field sent is equal
    (``jsonData`` as a whole), and every secret field sent is set (Grafana returns only
    ``secureJsonFields: {name: true}``, never the value)."""
    for key, value in desired.items():
        if key == "secureJsonData":
            fields = current.get("secureJsonFields") or {}
            if not all(fields.get(name) for name in value):
                return False
        elif current.get(key) != value:
            return False
    return True
