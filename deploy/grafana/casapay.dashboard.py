"""The casapay Grafana dashboard, built with grafanalib (pinned in scripts/check-dashboard).

Regenerate deploy/grafana/dashboards/casapay.json after a change:

    bash scripts/check-dashboard --write

Every query names only metrics the server exports (the check scrapes a live server).
Gauges that every replica reports alike (backlogs, queues: database-wide figures) are
taken with max(); per-process series (requests, attempts, pool) are summed.
"""

import attr
from grafanalib.core import (
    Dashboard, GridPos, RowPanel, Stat, Target, Template, Templating, Time, TimeSeries,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
WIDTH = 24


def series(title, exprs, unit="short", legend="", description="", stack=False):
    """A time series panel; `exprs` is a list of (expression, legend) pairs."""
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[
            Target(expr=expr, legendFormat=legend_format, refId=chr(ord("A") + i), datasource=DATASOURCE)
            for i, (expr, legend_format) in enumerate(exprs)
        ],
        unit=unit,
        legendDisplayMode="table" if legend == "table" else "list",
        legendCalcs=["lastNotNull", "max"] if legend == "table" else [],
        stacking={"mode": "normal", "group": "A"} if stack else {},
        fillOpacity=20 if stack else 0,
        tooltipMode="multi",
    )


def stat(title, expr, unit="short", description="", thresholds=None):
    return Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[Target(expr=expr, refId="A", datasource=DATASOURCE, instant=True)],
        format=unit,
        reduceCalc="lastNotNull",
        thresholds=thresholds or [{"color": "green", "value": None}],
    )


def layout(rows):
    """Places rows of (panel, width, height) on the grid, each row under a header."""
    panels, y = [], 0
    for title, row in rows:
        panels.append(RowPanel(title=title, gridPos=GridPos(h=1, w=WIDTH, x=0, y=y)))
        y += 1
        x, height = 0, 0
        for panel, w, h in row:
            if x + w > WIDTH:
                x, y = 0, y + height
                height = 0
            panels.append(attr.evolve(panel, gridPos=GridPos(h=h, w=w, x=x, y=y)))
            x += w
            height = max(height, h)
        y += height
    return panels


RED_AT_ONE = [{"color": "green", "value": None}, {"color": "red", "value": 1}]

rows = [
    ("HTTP", [
        (series("Requests by route", [
            (f"sum by (method, route) (rate(casapay_http_requests_total[{RATE}]))", "{{method}} {{route}}"),
        ], unit="reqps", legend="table"), 12, 9),
        (series("Answers by status", [
            (f"sum by (status) (rate(casapay_http_requests_total[{RATE}]))", "{{status}}"),
        ], unit="reqps", stack=True), 12, 9),
        (series("Latency p50 / p99 by route", [
            ("histogram_quantile(0.5, sum by (le, route) "
             f"(rate(casapay_http_request_duration_seconds_bucket[{RATE}])))", "p50 {{route}}"),
            ("histogram_quantile(0.99, sum by (le, route) "
             f"(rate(casapay_http_request_duration_seconds_bucket[{RATE}])))", "p99 {{route}}"),
        ], unit="s", legend="table"), 16, 9),
        (series("Server errors (5xx share)", [
            (f'sum(rate(casapay_http_requests_total{{status=~"5.."}}[{RATE}])) '
             f"/ sum(rate(casapay_http_requests_total[{RATE}]))", "5xx"),
        ], unit="percentunit"), 8, 9),
    ]),
    ("Claims", [
        (series("Reviews by outcome", [
            (f"sum by (outcome) (rate(casapay_claims_reviewed_total[{RATE}]))", "{{outcome}}"),
        ], unit="ops", stack=True,
           description="approved and denied: decisions, by the engine or an operator; "
                       "referred: the engine handed the claim to a person."), 8, 8),
        (series("Engine backlog", [
            ("max by (queue) (casapay_engine_backlog)", "{{queue}}"),
        ], description="Claims waiting for automated review; payouts waiting to settle."), 8, 8),
        (series("Waiting for people", [
            ("max by (awaiting) (casapay_review_queue)", "{{awaiting}}"),
            ("max(casapay_review_overdue)", "overdue"),
        ], description="Claims under review that wait for an operator, a second approval or evidence; "
                       "overdue: past their review deadline (5 business days)."), 5, 8),
        (stat("Overdue reviews", "max(casapay_review_overdue)", thresholds=RED_AT_ONE), 3, 8),
    ]),
    ("Webhooks", [
        (series("Delivery attempts by outcome", [
            (f"sum by (outcome) (rate(casapay_webhook_attempts_total[{RATE}]))", "{{outcome}}"),
        ], unit="ops", stack=True,
           description="delivered: a 2xx; rejected: another answer; no_response: timeout, "
                       "connection error or refused address."), 12, 8),
        (series("Deliveries pending", [("max(casapay_webhook_pending)", "pending")]), 8, 8),
        (stat("Delivered share (1h)",
              'sum(increase(casapay_webhook_attempts_total{outcome="delivered"}[1h])) '
              "/ sum(increase(casapay_webhook_attempts_total[1h]))", unit="percentunit"), 4, 8),
    ]),
    ("Process", [
        (series("Database pool", [
            ("sum by (instance, state) (casapay_db_pool_connections)", "{{instance}} {{state}}"),
        ], stack=True), 16, 7),
        (stat("Versions running", "count by (version) (casapay_build_info)"), 8, 7),
    ]),
]

dashboard = Dashboard(
    title="casapay",
    uid="casapay",
    description="Requests, the claims engine, the review queue, webhooks and the database pool "
                "(metrics of GET /metrics, docs/operations.md).",
    tags=["casapay"],
    timezone="utc",
    time=Time("now-1h", "now"),
    refresh="30s",
    templating=Templating(list=[
        Template(name="datasource", label="Data source", query="prometheus", type="datasource"),
    ]),
    panels=layout(rows),
).auto_panel_ids()
