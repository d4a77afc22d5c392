"""The Grafana dashboard and the Prometheus alert rules in deploy/ name only metrics PayQL exports,
and the alerts the README's runbooks cover are all there, each naming its runbook."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import payql.metrics  # noqa: F401 - registers every metric

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC_NAME = re.compile(r"\bpayql_[a-z_]+")


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("payql_"):
            continue
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
            "gauge": ("",),
        }[family.type]
        names |= {family.name + suffix for suffix in suffixes}
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "payql-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
    assert used and used <= exported_names(), used - exported_names()


def test_the_alerts_use_only_exported_metrics_and_name_a_runbook() -> None:
    rules = alert_rules()
    used = {name for rule in rules for name in METRIC_NAME.findall(rule["expr"])}
    assert used and used <= exported_names(), used - exported_names()
    assert all(rule["annotations"]["summary"] and "Operating PayQL" in rule["annotations"]["runbook"] for rule in rules)


def test_the_alerts_an_operator_needs_are_there() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "PayQLWebhookLagHigh",
        "PayQLWebhookEventsDead",
        "PayQLReconciliationDiscrepancy",
        "PayQLDeclineRateSpike",
        "PayQLGatewayDown",
    } <= names
