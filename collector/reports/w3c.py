"""icewatch's generic W3C snapshot-series format (documented in docs/formats/w3c.md).

Any SDK can send it: a list of ``getStats()`` snapshots (RTCStats objects as the browser returns
them) plus the peer-connection events it saw. Unknown keys and unknown event types are ignored
so clients can send more than icewatch reads; the keys icewatch reads are type-checked and a bad
one is reported with its path (``snapshots[2].stats[5].type``).
"""

from __future__ import annotations

from typing import Any

from collector.contract import MAX_CANDIDATE_ERRORS, MAX_SAMPLES, MAX_STATES, CallReport, Candidate
from collector.errors import InvalidInput, PayloadTooLarge
from collector.reports import candidates as cand
from collector.reports._events import MAX_CANDIDATE_EVENTS, STATE_EVENTS, candidate_error, transport_policy
from collector.reports._values import (
    browser_from_user_agent,
    optional_text,
    require_list,
    require_obj,
    require_text,
    require_time,
    text,
)
from collector.reports.budget import Budget, check_properties
from collector.reports.context import UploadContext
from collector.reports.stats_series import SeriesEvents, SeriesMeta, Snapshot, build_report, state_change

_POLICIES = ("all", "relay")


def _ice_servers(value: object) -> list[list[str]]:
    out: list[list[str]] = []
    for i, server in enumerate(require_list(value, "ice_servers")):
        urls = require_obj(server, f"ice_servers[{i}]").get("urls")
        if isinstance(urls, str):
            out.append([urls])
        elif isinstance(urls, list) and all(isinstance(u, str) for u in urls):
            out.append(list(urls))
        else:
            raise InvalidInput("expected a URL string or a list of URL strings", path=f"ice_servers[{i}].urls")
    return out


def _candidate(value: dict[str, Any], path: str, at: Any) -> Candidate | None:
    is_remote = value.get("isRemote") is True
    ctype = cand.candidate_type(value.get("candidateType", value.get("type")))
    if ctype is None:
        line = value.get("candidate")
        if isinstance(line, str) and line:
            c = cand.from_sdp(line, is_remote, at)
            if c is None:
                raise InvalidInput("not an SDP candidate line", path=f"{path}.candidate")
            return c
        raise InvalidInput("expected candidateType host|srflx|prflx|relay", path=f"{path}.candidateType")
    cid = text(value.get("id")) or "ev-{}-{}-{}-{}-{}".format(
        "remote" if is_remote else "local",
        ctype,
        value.get("protocol"),
        value.get("address"),
        value.get("port"),
    )
    return cand.from_stats(cid, {**value, "candidateType": ctype}, is_remote, at)


def _too_many(what: str, limit: int, path: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"more than {limit} {what} events in one report", path=path)


def _events(value: object) -> SeriesEvents:
    events = SeriesEvents()
    for i, raw in enumerate(require_list(value, "events")):
        path = f"events[{i}]"
        ev = require_obj(raw, path)
        at = require_time(ev.get("at"), f"{path}.at")
        typ = require_text(ev.get("type"), f"{path}.type")
        kind = STATE_EVENTS.get(typ)
        if kind is not None:
            if len(events.states) >= MAX_STATES:
                raise _too_many("state change", MAX_STATES, path)
            events.states.append(state_change(at, kind, require_text(ev.get("state"), f"{path}.state")))
        elif typ == "icecandidateerror":
            err = candidate_error(at, ev)
            if err is None:
                raise InvalidInput("expected an integer errorCode", path=f"{path}.errorCode")
            if len(events.errors) >= MAX_CANDIDATE_ERRORS:
                raise _too_many("icecandidateerror", MAX_CANDIDATE_ERRORS, path)
            events.errors.append(err)
        elif typ == "icecandidate":
            c = ev.get("candidate")
            if c is None:
                continue  # end of gathering
            if len(events.candidates) >= MAX_CANDIDATE_EVENTS:
                raise _too_many("icecandidate", MAX_CANDIDATE_EVENTS, path)
            found = _candidate(require_obj(c, f"{path}.candidate"), f"{path}.candidate", at)
            if found is not None:
                events.candidates.append(found)
    return events


def _stats_object(value: object, path: str, sid: object) -> tuple[str, dict[str, Any]]:
    o = require_obj(value, path)
    sid = o.get("id", sid)
    if not isinstance(sid, str) or not sid:
        raise InvalidInput("expected a non-empty string id", path=f"{path}.id")
    check_properties(len(o), path)
    require_text(o.get("type"), f"{path}.type")
    return sid, o


def _snapshots(value: object, budget: Budget) -> list[Snapshot]:
    out: list[Snapshot] = []
    raws = require_list(value, "snapshots")
    if len(raws) > MAX_SAMPLES:
        raise PayloadTooLarge(f"{len(raws)} snapshots; at most {MAX_SAMPLES} per report", path="snapshots")
    budget.charge_samples(len(raws))
    for i, raw in enumerate(raws):
        path = f"snapshots[{i}]"
        snap = require_obj(raw, path)
        at = require_time(snap.get("timestamp"), f"{path}.timestamp")
        stats = snap.get("stats")
        if isinstance(stats, list | dict):
            budget.charge_objects(len(stats))
        objects: dict[str, dict[str, Any]] = {}
        if isinstance(stats, list):
            for j, o in enumerate(stats):
                sid, report = _stats_object(o, f"{path}.stats[{j}]", None)
                objects[sid] = report
        elif isinstance(stats, dict):
            for key, o in stats.items():
                sid, report = _stats_object(o, f"{path}.stats.{key}", key)
                objects[sid] = report
        else:
            raise InvalidInput("expected a list of RTCStats objects or an {id: RTCStats} map", path=f"{path}.stats")
        out.append((at, objects))
    return out


def parse(document: object, ctx: UploadContext, budget: Budget | None = None) -> list[CallReport]:
    budget = budget or Budget.for_body(0)
    d = require_obj(document, "$")
    call_id = d.get("call_id", ctx.call_id_hint)
    call_id = require_text(call_id, "call_id")
    sdk = d.get("sdk")
    sdk_name = sdk_version = None
    if sdk is not None:
        sdk_obj = require_obj(sdk, "sdk")
        sdk_name = optional_text(sdk_obj.get("name"), "sdk.name")
        sdk_version = optional_text(sdk_obj.get("version"), "sdk.version")
    policy_raw = d.get("ice_transport_policy")
    if policy_raw is not None and policy_raw not in _POLICIES:
        raise InvalidInput('expected "all" or "relay"', path="ice_transport_policy")
    meta = SeriesMeta(
        call_id=call_id,
        source_format="w3c",
        sdk_name=sdk_name,
        sdk_version=sdk_version,
        browser=optional_text(d.get("browser"), "browser") or browser_from_user_agent(ctx.user_agent),
        user_agent=ctx.user_agent,
        client_address=ctx.client_address,
        ice_servers=_ice_servers(d["ice_servers"]) if d.get("ice_servers") is not None else [],
        ice_transport_policy=transport_policy(policy_raw),
    )
    events = _events(d["events"]) if d.get("events") is not None else SeriesEvents()
    return [build_report(meta, _snapshots(d.get("snapshots"), budget), events)]
