"""GET /metrics counts what an operator watches: a checkout, a decline, a refund and a webhook each
show up, labelled only with bounded values; the endpoint needs PAYQL_METRICS_TOKEN when one is set
and is not served in production without one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from db.merchant_models import DeliveryStatus, MerchantDelivery, MerchantEndpoint, MerchantEvent
from jobs.reconcile import Discrepancy, ReconciliationReport
from payql.app import create_app
from payql.metrics import RATE_LIMITED, labelled
from payql.settings import Settings
from payql.wiring import Services
from tests.features.test_refunds import refund
from tests.testkit import (
    CHECKOUT,
    TEST_DATA_INDEX_KEY,
    TEST_DATA_KEY,
    Shopper,
    checkout_input,
    eventually,
    make_price,
    settle,
)
from tests.wsclient import graphql_ws

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
METRICS_TOKEN = "metrics-token-for-the-scraper-0123456789"


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_a_checkout_a_decline_a_refund_and_a_webhook_are_each_counted(
    http: httpx.AsyncClient, shopper: Shopper, admin: Shopper, services: Services
) -> None:
    await settle(services)
    before = await scrape(http)
    price = await make_price(2500)
    paid = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    assert paid["payment"]["status"] == "PAID" and declined["payment"]["declineCode"] == "generic_decline"
    assert (await refund(admin, paid["payment"]["id"]))["userErrors"] == []
    await settle(services)
    after = await scrape(http)

    calls = "payql_gateway_calls_total"
    assert grew(before, after, calls, gateway="sandbox", operation="charge", outcome="ok") == 1
    assert grew(before, after, calls, gateway="sandbox", operation="charge", outcome="PaymentDeclined") == 1
    assert grew(before, after, calls, gateway="sandbox", operation="refund", outcome="ok") == 1
    assert grew(before, after, "payql_gateway_call_duration_seconds_count", gateway="sandbox", operation="charge") == 2
    declines = "payql_payment_declines_total"
    assert grew(before, after, declines, gateway="sandbox", decline_code="generic_decline") == 1
    operations = "payql_graphql_operations_total"
    assert grew(before, after, operations, type="mutation", field="checkout", outcome="ok") == 2
    assert grew(before, after, operations, type="mutation", field="refundPayment", outcome="ok") == 1
    assert grew(before, after, "payql_graphql_operation_duration_seconds_count", type="mutation", field="checkout") == 2
    assert grew(before, after, "payql_status_changes_total", entity="payment", status="PAID") >= 1
    assert grew(before, after, "payql_status_changes_total", entity="payment", status="FAILED") >= 1
    assert sum(grew(before, after, "payql_status_changes_total", entity="refund", status=s) for s in STATUSES) >= 1
    assert grew(before, after, "payql_webhooks_received_total", gateway="sandbox", outcome="stored") >= 1
    assert grew(before, after, "payql_webhook_processing_lag_seconds_count", gateway="sandbox") >= 1
    assert grew(before, after, "payql_job_runs_total", job="process_webhook_event", outcome="ok") >= 1
    http_requests = "payql_http_requests_total"
    assert grew(before, after, http_requests, method="POST", route="/graphql", status="200") >= 3
    assert grew(before, after, http_requests, method="POST", route="/webhooks/{gateway}", status="200") >= 1
    assert value(after, "payql_webhook_events", status="DEAD") >= 0
    assert ("payql_job_queue_depth", frozenset()) in after and ("payql_outbox_backlog", frozenset()) in after


STATUSES = ("PENDING", "SUCCEEDED", "FAILED")


async def test_labels_never_carry_client_text(http: httpx.AsyncClient, shopper: Shopper) -> None:
    await shopper.gql("query SecretOperationName { products { id } }")
    await http.post("/graphql", json={"query": "{ noSuchField_visible }"})
    await http.get("/no/such/path/visible")
    await http.post("/webhooks/made-up-gateway-visible", content=b"{}")
    text = (await http.get("/metrics")).text
    assert "SecretOperationName" not in text and "visible" not in text
    assert 'field="products"' in text and 'field="unknown"' in text and 'route="unmatched"' in text


def app_with(**overrides: object) -> httpx.AsyncClient:
    settings = Settings(
        **{  # type: ignore[arg-type]
            "environment": "production",
            "redis_url": "redis://127.0.0.1:1/0",
            "database_url": "postgres://payql@127.0.0.1:1/never-opened",
            "jwt_secret": SecretStr("a-production-secret-of-more-than-32-characters"),
            "gateways": ["stripe"],
            "gateway_settings": {"stripe": {"secret_key": "sk_test_unused", "webhook_secrets": ["whsec_unused"]}},
            "smtp_host": "127.0.0.1",
            "data_keys": SecretStr(TEST_DATA_KEY),
            "data_index_key": SecretStr(TEST_DATA_INDEX_KEY),
        }
        | overrides
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://payql.test")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_metrics_need_the_token_when_one_is_set() -> None:
    async with app_with(metrics_token=SecretStr(METRICS_TOKEN)) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer not-the-token"})
        right = await client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert missing.status_code == wrong.status_code == 401
    assert right.status_code == 200 and "payql_http_requests_total" in right.text


async def test_production_without_a_token_does_not_serve_metrics() -> None:
    async with app_with() as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_a_reconciliation_run_sets_its_discrepancies(http: httpx.AsyncClient, services: Services) -> None:
    found = [
        Discrepancy("amount_mismatch", "sandbox", "ch_1", None, "100", "90"),
        Discrepancy("amount_mismatch", "sandbox", "ch_2", None, "100", "90"),
        Discrepancy("missing_ours", "sandbox", "ch_3", None, None, "PAID"),
    ]
    assert services.jobs.on_reconciled is not None
    services.jobs.on_reconciled(ReconciliationReport(since=datetime.now(UTC), discrepancies=found))
    first = await scrape(http)
    services.jobs.on_reconciled(ReconciliationReport(since=datetime.now(UTC), unreachable_gateways=["stripe"]))
    second = await scrape(http)
    gauge = "payql_reconciliation_discrepancies"
    assert value(first, gauge, kind="amount_mismatch") == 2 and value(first, gauge, kind="missing_ours") == 1
    assert value(second, gauge, kind="amount_mismatch") == 0  # the last run's numbers, not a running total
    assert value(second, "payql_reconciliation_unreachable_gateways") == 1


async def test_open_websockets_and_live_subscriptions_are_gauged(
    http: httpx.AsyncClient, shopper: Shopper, server: str
) -> None:
    price = await make_price(700)
    order = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    before = await scrape(http)
    async with graphql_ws(server, shopper.token) as ws:
        stream = ws.subscribe(ORDER_STATUS, {"id": order["order"]["id"]})
        await asyncio.wait_for(anext(stream), timeout=10)  # subscribed and streaming
        during = await scrape(http)
    assert grew(before, during, "payql_open_websockets") == 1
    assert grew(before, during, "payql_live_subscriptions") == 1

    async def closed() -> bool:
        after = await scrape(http)
        return value(after, "payql_open_websockets") == value(before, "payql_open_websockets") and value(
            after, "payql_live_subscriptions"
        ) == value(before, "payql_live_subscriptions")

    await eventually(closed)


ORDER_STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status } }"


async def test_outgoing_webhook_deliveries_that_gave_up_are_counted(http: httpx.AsyncClient) -> None:
    before = await scrape(http)
    # Disabled, and deleted after: an enabled endpoint left behind would get a delivery for every later
    # test's event, each retried to an address that does not resolve (seconds of every later settle).
    endpoint = await MerchantEndpoint.create(
        url="https://merchant.example/events", event_types=["*"], secret="s" * 32, enabled=False
    )
    try:
        event = await MerchantEvent.create(
            public_id=f"evt_{uuid.uuid4().hex}",
            type="order.paid",
            object_type="order",
            object_id=str(uuid.uuid4()),
            object_version=1,
            dedupe_key=f"metrics-test:{uuid.uuid4()}",
            body="{}",
        )
        await MerchantDelivery.create(event=event, endpoint=endpoint, status=DeliveryStatus.DEAD, attempts=17)
        after = await scrape(http)
    finally:
        await MerchantEndpoint.filter(id=endpoint.id).delete()
    assert grew(before, after, "payql_merchant_webhook_deliveries", status="DEAD") == 1
    assert grew(before, after, "payql_merchant_webhook_deliveries", status="PENDING") == 0


def test_a_kept_labelled_child_counts_into_the_series_labels_names() -> None:
    limit = f"kept-{uuid.uuid4().hex[:8]}"
    child = labelled(RATE_LIMITED, limit)
    assert labelled(RATE_LIMITED, limit) is child  # made once, then kept
    child.inc()
    child.inc()
    assert REGISTRY.get_sample_value("payql_rate_limited_requests_total", {"limit": limit}) == 2.0
    RATE_LIMITED.labels(limit=limit).inc()
    assert REGISTRY.get_sample_value("payql_rate_limited_requests_total", {"limit": limit}) == 3.0
