#!/usr/bin/env python3
"""Writes deploy/grafana/sluice.json, the sluice dashboard, from the panel list below.

Kept as code so that panels stay uniform; run it after editing and commit both files.
Every metric named here must exist in a live scrape (CI checks: tests/deploy_manifests.rs).
"""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(pid, title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries", legend=None):
    targets = []
    for i, e in enumerate(exprs):
        expr, fmt = e if isinstance(e, tuple) else (e, None)
        t = {"datasource": DS, "expr": expr, "refId": chr(65 + i)}
        if fmt:
            t["legendFormat"] = fmt
        targets.append(t)
    p = {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": targets,
        "options": {},
    }
    if kind == "table":
        p["targets"][0]["format"] = "table"
        p["targets"][0]["instant"] = True
    return p


S = 'job=~"$job"'
panels = [
    panel(1, "Decisions/s by verdict",
          [(f'sum by (verdict) (rate(sluice_decisions_total{{{S}}}[$__rate_interval]))', "{{verdict}}")],
          0, 0, unit="reqps"),
    panel(2, "Denied decisions/s by protocol and operation",
          [(f'sum by (protocol, operation) (rate(sluice_decisions_total{{{S},verdict="deny"}}[$__rate_interval]))',
            "{{protocol}} {{operation}}")],
          12, 0, unit="reqps"),
    panel(3, "Top denied targets (last 1h)",
          [f'topk(10, sum by (protocol, target) (increase(sluice_denied_targets_total{{{S}}}[1h])))'],
          0, 8, kind="table"),
    panel(4, "Top denied MQTT topics (last 1h)",
          [f'topk(10, sum by (topic) (increase(sluice_denied_topics_total{{{S}}}[1h])))'],
          12, 8, kind="table"),
    panel(5, "Decision cache hit ratio",
          [(f'sum(rate(sluice_decision_cache_hits_total{{{S}}}[$__rate_interval])) / '
            f'(sum(rate(sluice_decision_cache_hits_total{{{S}}}[$__rate_interval])) + '
            f'sum(rate(sluice_decision_cache_misses_total{{{S}}}[$__rate_interval])))', "hit ratio")],
          0, 16, unit="percentunit"),
    panel(6, "Policy evaluation latency (cache misses)",
          [(f'histogram_quantile({q}, sum by (le) (rate(sluice_policy_evaluation_seconds_bucket{{{S}}}[$__rate_interval])))',
            f"p{int(q * 1000) / 10:g}") for q in (0.5, 0.99, 0.999)],
          12, 16, unit="s"),
    panel(7, "Bytes forwarded/s",
          [(f'sum by (protocol, direction) (rate(sluice_forwarded_bytes_total{{{S}}}[$__rate_interval]))',
            "{{protocol}} {{direction}}")],
          0, 24, unit="Bps"),
    panel(8, "Open sessions",
          [(f'sum by (protocol) (sluice_connections_open{{{S}}})', "{{protocol}}")],
          12, 24),
    panel(9, "Policy generation in force",
          [(f'max by (instance) (sluice_policy_generation{{{S}}})', "{{instance}}")],
          0, 32),
    panel(10, "Policy reloads and evaluation failures",
          [(f'sum by (result) (increase(sluice_policy_reloads_total{{{S}}}[$__rate_interval]))', "reload {{result}}"),
           (f'sum(increase(sluice_policy_eval_errors_total{{{S}}}[$__rate_interval]))', "eval errors"),
           (f'sum(increase(sluice_policy_eval_timeouts_total{{{S}}}[$__rate_interval]))', "eval timeouts")],
          12, 32),
    panel(11, "Decision log: written and dropped",
          [(f'sum(rate(sluice_decision_log_written_total{{{S}}}[$__rate_interval]))', "written/s"),
           (f'sum(rate(sluice_decision_log_dropped_total{{{S}}}[$__rate_interval]))', "dropped/s")],
          0, 40, unit="reqps"),
    panel(12, "Errors by kind",
          [(f'sum by (protocol, kind) (rate(sluice_errors_total{{{S}}}[$__rate_interval]))', "{{protocol}} {{kind}}")],
          12, 40, unit="reqps"),
    panel(13, "Ready gateways",
          [(f'sum(sluice_ready{{{S}}})', "ready"), (f'count(sluice_ready{{{S}}})', "total")],
          0, 48),
    panel(14, "Admission reviews/s by verdict (webhook)",
          [('sum by (verdict) (rate(sluice_admission_requests_total[$__rate_interval]))', "{{verdict}}")],
          12, 48, unit="reqps"),
    panel(15, "Export bridges: spooled messages",
          [(f'sum by (bridge) (sluice_bridge_spool_messages{{{S}}})', "{{bridge}} messages")],
          0, 56),
    panel(16, "Export bridges: spool fill and oldest message",
          [(f'max by (bridge) (sluice_bridge_spool_bytes{{{S}}} / sluice_bridge_spool_max_bytes{{{S}}})', "{{bridge}} fill"),
           (f'max by (bridge) (sluice_bridge_spool_oldest_age_seconds{{{S}}}) / 86400', "{{bridge}} oldest (days)")],
          12, 56, unit="percentunit"),
    panel(17, "Export bridges: messages/s",
          [(f'sum by (bridge) (rate(sluice_bridge_received_total{{{S}}}[$__rate_interval]))', "{{bridge}} received"),
           (f'sum by (bridge) (rate(sluice_bridge_sent_total{{{S}}}[$__rate_interval]))', "{{bridge}} sent"),
           (f'sum by (bridge) (rate(sluice_bridge_denied_total{{{S}}}[$__rate_interval]))', "{{bridge}} denied"),
           (f'sum by (bridge) (rate(sluice_bridge_denied_on_replay_total{{{S}}}[$__rate_interval]))', "{{bridge}} denied on replay")],
          0, 64, unit="reqps"),
    panel(18, "Export bridges: expired, dropped, redelivered",
          [(f'sum by (bridge) (increase(sluice_bridge_expired_total{{{S}}}[$__rate_interval]))', "{{bridge}} expired"),
           (f'sum by (bridge, reason) (increase(sluice_bridge_dropped_total{{{S}}}[$__rate_interval]))', "{{bridge}} dropped {{reason}}"),
           (f'sum by (bridge) (increase(sluice_bridge_redelivered_total{{{S}}}[$__rate_interval]))', "{{bridge}} redelivered")],
          12, 64),
    panel(19, "Export bridges: uplink and plant sessions up",
          [(f'min by (bridge) (sluice_bridge_uplink_up{{{S}}})', "{{bridge}} uplink"),
           (f'min by (bridge) (sluice_bridge_local_up{{{S}}})', "{{bridge}} plant broker")],
          0, 72),
    panel(20, "Export bridges: errors by kind",
          [(f'sum by (bridge, kind) (rate(sluice_bridge_errors_total{{{S}}}[$__rate_interval]))', "{{bridge}} {{kind}}")],
          12, 72, unit="reqps"),
]

dashboard = {
    "uid": "sluice-overview",
    "title": "sluice: data locality",
    "tags": ["sluice"],
    "timezone": "utc",
    "schemaVersion": 39,
    "version": 1,
    "refresh": "30s",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {"name": "job", "type": "query", "datasource": DS, "label": "job", "includeAll": True,
         "multi": True, "current": {"text": "All", "value": "$__all"},
         "query": "label_values(sluice_decisions_total, job)", "refresh": 2},
    ]},
    "annotations": {"list": []},
    "panels": panels,
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sluice.json")
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
