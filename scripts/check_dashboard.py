"""The checks of scripts/check-dashboard: python3 scripts/check_dashboard.py DASHBOARD METRICS.

DASHBOARD is the Grafana dashboard JSON, METRICS a scrape of a live server's /metrics.
"""

import json
import os
import re
import sys

import yaml
from prometheus_client.parser import text_string_to_metric_families

METRIC = re.compile(r"\bcasapay_[a-z0-9_]+\b")


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def queries(dashboard):
    """(panel title, expression) of every query of the dashboard."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def check_dashboard(dashboard, exported):
    """Every query names exported metrics only, and every exported metric is shown."""
    if dashboard.get("uid") != "casapay" or not dashboard.get("panels"):
        fail("the dashboard has no uid casapay or no panels")
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        fail(f"panel ids repeat: {ids}")
    shown = set()
    for title, expr in queries(dashboard):
        names = set(METRIC.findall(expr))
        if not names:
            fail(f"panel {title!r}: the query names no casapay metric: {expr}")
        missing = names - exported["samples"]
        if missing:
            fail(f"panel {title!r}: {sorted(missing)} not exported by the server (query: {expr})")
        shown |= names
    for panel in dashboard["panels"]:
        if panel["type"] != "row" and panel.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"panel {panel['title']!r} does not use the dashboard's datasource variable")
    not_shown = [f for f in exported["families"] if not any(s.startswith(f) for s in shown)]
    if not_shown:
        fail(f"exported but on no panel: {not_shown}")
    print(f"dashboard: {len(list(queries(dashboard)))} queries, all on the "
          f"{len(exported['families'])} metrics the server exports")


def exported_metrics(text):
    families, samples = [], set()
    for family in text_string_to_metric_families(text):
        if family.name.startswith("casapay_"):
            families.append(family.name)
            samples |= {s.name for s in family.samples}
    expected = {"casapay_http_requests", "casapay_http_request_duration_seconds", "casapay_claims_reviewed",
                "casapay_engine_backlog", "casapay_review_queue", "casapay_review_overdue",
                "casapay_webhook_attempts", "casapay_webhook_pending", "casapay_db_pool_connections",
                "casapay_build_info"}
    if set(families) != expected:
        fail(f"the server exports {sorted(families)}, SPEC section 8 lists {sorted(expected)}")
    return {"families": sorted(families), "samples": samples}


def check_compose():
    """compose.yaml's observability profile mounts what exists and scrapes the server."""
    compose = yaml.safe_load(open("compose.yaml"))
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        service = services.get(name) or fail(f"compose.yaml has no {name} service")
        if service.get("profiles") != ["observability"]:
            fail(f"compose.yaml: {name} is not in the observability profile alone")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                if not os.path.exists(source):
                    fail(f"compose.yaml: {name} mounts {source}, which does not exist")
            elif source not in (compose.get("volumes") or {}):
                fail(f"compose.yaml: {name} uses the volume {source}, which is not declared")
    if "profiles" in services["casapay"] or "profiles" in services["postgres"]:
        fail("compose.yaml: casapay and postgres must run without a profile")
    listen = services["casapay"]["environment"]["CASAPAY_LISTEN"]
    port = listen.rsplit(":", 1)[1]
    prometheus = yaml.safe_load(open("deploy/prometheus/prometheus.yml"))
    targets = [t for job in prometheus["scrape_configs"] if job.get("metrics_path", "/metrics") == "/metrics"
               for sc in job["static_configs"] for t in sc["targets"]]
    if f"casapay:{port}" not in targets:
        fail(f"deploy/prometheus/prometheus.yml scrapes {targets}, not casapay:{port}")
    datasources = yaml.safe_load(open("deploy/grafana/provisioning/datasources/prometheus.yml"))["datasources"]
    if not any(d["type"] == "prometheus" and d["url"] == "http://prometheus:9090" for d in datasources):
        fail("the Grafana datasource is not compose.yaml's Prometheus")
    providers = yaml.safe_load(open("deploy/grafana/provisioning/dashboards/casapay.yml"))["providers"]
    mounted = [v.split(":")[1] for v in services["grafana"]["volumes"] if v.startswith("./deploy/grafana/dashboards")]
    if [p["options"]["path"] for p in providers] != mounted:
        fail(f"Grafana loads dashboards from {[p['options']['path'] for p in providers]}, compose mounts {mounted}")
    print("compose.yaml, Prometheus and Grafana provisioning: consistent")


def main():
    dashboard = json.load(open(sys.argv[1]))
    exported = exported_metrics(open(sys.argv[2]).read())
    check_dashboard(dashboard, exported)
    check_compose()


if __name__ == "__main__":
    main()
