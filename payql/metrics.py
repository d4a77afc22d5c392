"""Every Prometheus metric PayQL exports, defined once, and the text that /metrics answers.

Several processes behind one port (`payql serve --workers N`) share a folder named by
PROMETHEUS_MULTIPROC_DIR, which must be set before this module is first imported; /metrics then
sums the counters of all of them. Labels only ever take values from a bounded set (route templates,
schema field names, gateway and job names, statuses, error class names): never a client's text,
an id or an amount.
"""

from __future__ import annotations

import os
from typing import TypeVar, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

Metric = TypeVar("Metric", Counter, Gauge, Histogram)
_CHILDREN: dict[tuple[object, tuple[str, ...]], object] = {}


def labelled(metric: Metric, *values: str) -> Metric:
    """`metric.labels(*values)`, the values in the order of its label names, kept once made.
    prometheus_client checks the values and takes a lock on every `labels` call: on every request,
    delivery and job that was a few per cent of the process's time. The label sets are bounded (see
    above), so this table is too."""
    key = (metric, values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*values)
    return cast(Metric, child)


# Seconds: from a fast cache hit to a slow gateway.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds from a webhook's arrival to its effect: retries stretch this to hours.
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)

HTTP_REQUESTS = Counter(
    "payql_http_requests", "HTTP requests answered, by route template and status.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "payql_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_OPERATIONS = Counter(
    "payql_graphql_operations",
    "GraphQL operations by type, root field and outcome"
    " (ok; error: an error in the answer; invalid: refused before execution).",
    ["type", "field", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "payql_graphql_operation_duration_seconds",
    "Time to run a GraphQL operation, by type and root field (checkout: the checkout latency).",
    ["type", "field"],
    buckets=LATENCY_BUCKETS,
)
GATEWAY_CALLS = Counter(
    "payql_gateway_calls",
    "Calls to a payment gateway by operation and outcome (ok, or the gateway error's class: PaymentDeclined, ...).",
    ["gateway", "operation", "outcome"],
)
GATEWAY_DURATION = Histogram(
    "payql_gateway_call_duration_seconds",
    "Time a gateway call took.",
    ["gateway", "operation"],
    buckets=LATENCY_BUCKETS,
)
GATEWAY_BULKHEAD_REJECTIONS = Counter(
    "payql_gateway_bulkhead_rejections",
    "Calls to a gateway refused unsent because this process already had as many in flight as it allows.",
    ["gateway", "operation"],
)
PAYMENT_DECLINES = Counter(
    "payql_payment_declines", "Declined charges by normalized decline code.", ["gateway", "decline_code"]
)
STATUS_CHANGES = Counter(
    "payql_status_changes",
    "Committed status changes of payments, refunds, disputes, orders and subscriptions, by new status.",
    ["entity", "status"],
)
WEBHOOKS_RECEIVED = Counter(
    "payql_webhooks_received",
    "Webhook deliveries by outcome: stored, duplicate, rejected (bad signature or timestamp),"
    " too_large, unknown_gateway.",
    ["gateway", "outcome"],
)
WEBHOOK_LAG = Histogram(
    "payql_webhook_processing_lag_seconds",
    "From a webhook's arrival to its processing (PROCESSED or IGNORED).",
    ["gateway"],
    buckets=LAG_BUCKETS,
)
WEBHOOK_ATTEMPTS = Histogram(
    "payql_webhook_processing_attempts",
    "Attempts a webhook event took until processed or dead.",
    ["gateway", "status"],
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20),
)
# Read from the database at each scrape: the same for every instance (multiprocess: the latest).
WEBHOOK_EVENTS = Gauge(
    "payql_webhook_events",
    "Stored webhook events waiting (RECEIVED), failed and to be retried (FAILED) or given up (DEAD).",
    ["status"],
    multiprocess_mode="mostrecent",
)
# Per process (each instance's own breaker): 0 closed, 1 half-open, 2 open.
GATEWAY_CIRCUIT = Gauge(
    "payql_gateway_circuit_state",
    "Each gateway's circuit breaker in this process: 0 closed, 1 half-open, 2 open.",
    ["gateway"],
    multiprocess_mode="max",
)
MERCHANT_DELIVERIES = Gauge(
    "payql_merchant_webhook_deliveries",
    "Outgoing webhook deliveries not yet delivered (PENDING), failed and to be retried (FAILED) or given up (DEAD).",
    ["status"],
    multiprocess_mode="mostrecent",
)
OUTBOX_BACKLOG = Gauge("payql_outbox_backlog", "Outbox messages (emails) not yet sent.", multiprocess_mode="mostrecent")
JOB_QUEUE_DEPTH = Gauge("payql_job_queue_depth", "Jobs queued and not yet started.", multiprocess_mode="mostrecent")
JOB_RUNS = Counter("payql_job_runs", "Job runs by job and outcome (ok, failed, timeout).", ["job", "outcome"])
JOB_DURATION = Histogram("payql_job_duration_seconds", "Time a job run took.", ["job"], buckets=LATENCY_BUCKETS)
OPEN_WEBSOCKETS = Gauge("payql_open_websockets", "GraphQL websocket connections open now.", multiprocess_mode="livesum")
LIVE_SUBSCRIPTIONS = Gauge(
    "payql_live_subscriptions", "GraphQL subscriptions streaming now.", multiprocess_mode="livesum"
)
RECONCILIATION_DISCREPANCIES = Gauge(
    "payql_reconciliation_discrepancies",
    "Discrepancies the last periodic reconciliation found between our records and the gateways', by kind.",
    ["kind"],
    multiprocess_mode="mostrecent",
)
RECONCILIATION_UNREACHABLE = Gauge(
    "payql_reconciliation_unreachable_gateways",
    "Gateways the last periodic reconciliation could not read.",
    multiprocess_mode="mostrecent",
)
DISCREPANCY_KINDS = (
    "missing_ours",
    "missing_theirs",
    "status_mismatch",
    "amount_mismatch",
    "ledger_mismatch",
    "subscription_mismatch",
)
RATE_LIMITED = Counter(
    "payql_rate_limited_requests",
    "Requests refused by a rate limit (anonymous-ip, failed-auth-ip, payments, complete-payment, ...).",
    ["limit"],
)


def record_reconciliation(discrepancy_kinds: list[str], unreachable_gateways: int) -> None:
    """The last run's numbers; every known kind is set, so a resolved discrepancy drops to 0."""
    for kind in {*DISCREPANCY_KINDS, *discrepancy_kinds}:
        RECONCILIATION_DISCREPANCIES.labels(kind=kind).set(discrepancy_kinds.count(kind))
    RECONCILIATION_UNREACHABLE.set(unreachable_gateways)


def serve_metrics_in_background(host: str, port: int) -> None:
    """Prometheus text on http://host:port/ from a daemon thread (`payql worker`, which serves no HTTP)."""
    start_http_server(port, addr=host, registry=_registry())


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render() -> tuple[bytes, str]:
    """The exposition text and its content type; summed over every process when multiprocess."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST
