"""The variables and WHERE fragments the dashboards share: one home for each filter, so every
panel of a dashboard narrows the same way when a variable changes."""

from __future__ import annotations

from dashboards.model import Variable

TENANT = Variable(
    "tenant", "App", multi=False, include_all=False, default="default",
    sql="SELECT tenant FROM (SELECT DISTINCT tenant FROM call_minute WHERE $__timeFilter(minute) "
        "UNION ALL SELECT DISTINCT tenant FROM turn_server_minute WHERE $__timeFilter(minute)) "
        "GROUP BY tenant ORDER BY tenant")
REGION = Variable(
    "region", "Client region",
    sql="SELECT DISTINCT client_region FROM call_minute WHERE $__timeFilter(minute) "
        "AND tenant = ${tenant:singlequote} AND client_region != '' ORDER BY client_region")
TURN_SERVER = Variable(
    "turn_server", "TURN server",
    sql="SELECT server_id FROM (SELECT DISTINCT server_id FROM probe_minute WHERE $__timeFilter(minute) "
        "AND tenant = ${tenant:singlequote} UNION ALL SELECT DISTINCT server_id FROM turn_server_minute "
        "WHERE $__timeFilter(minute) AND tenant = ${tenant:singlequote}) WHERE server_id != '' "
        "GROUP BY server_id ORDER BY server_id")
TURN_REGION = Variable(
    "turn_region", "TURN region",
    sql="SELECT region FROM (SELECT DISTINCT region FROM probe_minute WHERE $__timeFilter(minute) "
        "AND tenant = ${tenant:singlequote} UNION ALL SELECT DISTINCT region FROM turn_server_minute "
        "WHERE $__timeFilter(minute) AND tenant = ${tenant:singlequote}) WHERE region != '' "
        "GROUP BY region ORDER BY region")
SDK_VERSION = Variable(
    "sdk_version", "SDK version",
    sql="SELECT DISTINCT sdk_version FROM call_minute WHERE $__timeFilter(minute) "
        "AND tenant = ${tenant:singlequote} AND sdk_version != '' ORDER BY sdk_version")
CALL_ID = Variable("call_id", "Call id", kind="textbox", multi=False, include_all=False)


def one_of(column: str, variable: str) -> str:
    """``column`` among the selected values of ``variable``; no condition when All is selected."""
    return f"$__conditionalAll({column} IN (${{{variable}:singlequote}}), ${variable})"


def tenant_is(column: str = "tenant") -> str:
    return f"{column} = ${{tenant:singlequote}}"


def where(*conditions: str) -> str:
    return " AND ".join(conditions)


# Calls (call_minute, calls, candidate_errors): the overview's four variables
CALLS = where(tenant_is(), one_of("client_region", "region"), one_of("turn_server_id", "turn_server"),
              one_of("sdk_version", "sdk_version"))
# Where a table has no SDK version (candidate_errors)
CALL_PLACES = where(tenant_is(), one_of("client_region", "region"), one_of("turn_server_id", "turn_server"))
# RTT bands (rtt_band_minute) carry the client region only
RTT = where(tenant_is(), one_of("client_region", "region"))
# TURN servers (turn_server_minute, turn_sessions, probe_minute, probes)
TURN = where(tenant_is(), one_of("region", "turn_region"), one_of("server_id", "turn_server"))
