"""icewatch itself: is the pipeline taking reports in and writing them?"""

from __future__ import annotations

from dashboards.filters import TENANT, tenant_is
from dashboards.model import Dashboard, Link, Panel, Row

UID = "icewatch-self"

DASHBOARD = Dashboard(
    uid=UID,
    title="icewatch itself",
    description="Ingest rate by report format and dead letters from the store; request outcomes, processor lag, "
                "batch latency and write failures from icewatch's Prometheus metrics.",
    variables=(TENANT,),
    links=(Link("Call quality overview", "icewatch-overview"),),
    rows=(
        Row("Ingest", (
            Panel("ingest_rate", "Reports ingested per minute, by format", "timeseries", width=12,
                  sql="SELECT $__timeInterval(minute) AS time, source_format, "
                      "round(uniqExactMerge(reports) * 60 / $__interval_s, 2) AS reports_per_min FROM ingest_minute "
                      f"WHERE $__timeFilter(minute) AND {tenant_is()} GROUP BY time, source_format "
                      "ORDER BY time, source_format"),
            Panel("dead_letters", "Dead letters by stage and reason", "table", width=12,
                  sql="SELECT stage, intended, substring(reason, 1, 160) AS reason, count() AS dead_letters, "
                      "max(received_at) AS last_at FROM dead_letters "
                      f"WHERE $__timeFilter(received_at) AND {tenant_is()} GROUP BY stage, intended, reason "
                      "ORDER BY dead_letters DESC, last_at DESC LIMIT 50"),
        )),
        Row("Processes (Prometheus metrics)", (
            Panel("requests", "Upload requests by outcome", "table", width=6,
                  metric="icewatch_collector_requests",
                  promql="sum by (status) (rate(icewatch_collector_requests_total[5m]))"),
            Panel("processor_lag", "Processor lag", "table", unit="s", width=6,
                  metric="icewatch_processor_lag_seconds", promql="max(icewatch_processor_lag_seconds)",
                  thresholds=((None, "green"), (30.0, "yellow"), (120.0, "red"))),
            Panel("batch_latency", "Batch write latency", "table", unit="s", width=6,
                  metric="icewatch_processor_batch_seconds",
                  promql="histogram_quantile(0.95, sum by (le) (rate(icewatch_processor_batch_seconds_bucket[5m])))"),
            Panel("write_failures", "Failed batch writes", "table", width=6,
                  metric="icewatch_processor_write_failures",
                  promql="sum(increase(icewatch_processor_write_failures_total[5m]))"),
        )),
    ),
)
