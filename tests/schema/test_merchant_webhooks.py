"""The staff GraphQL of outgoing webhooks: the secret is shown on create and roll only, every change
leaves an audit record without the secret, bad input is a userError that changes nothing, and failed
deliveries since a time are queued again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from db.merchant_models import DeliveryStatus, MerchantDelivery, MerchantEndpoint
from db.models import AuditRecord
from payql.wiring import Services
from tests.merchant_receiver import Receiver, receiving
from tests.testkit import Shopper, eventually

CREATE = """mutation($input: CreateMerchantEndpointInput!) {
  createMerchantEndpoint(input: $input) { endpoint { id eventTypes enabled } secret userErrors { code field message } }
}"""
UPDATE = """mutation($input: UpdateMerchantEndpointInput!) {
  updateMerchantEndpoint(input: $input) { endpoint { id url description eventTypes enabled } userErrors { code field } }
}"""
ROLL = """mutation($input: RollMerchantEndpointSecretInput!) {
  rollMerchantEndpointSecret(input: $input) { secret userErrors { code field } }
}"""
DELETE = "mutation($id: ID!) { deleteMerchantEndpoint(id: $id) { deleted userErrors { code } } }"
TEST_EVENT = "mutation($id: ID!) { sendMerchantTestEvent(endpointId: $id) { delivery { id } userErrors { code } } }"
RESEND_FAILED = """mutation($input: ResendFailedMerchantDeliveriesInput!) {
  resendFailedMerchantDeliveries(input: $input) { count userErrors { code } }
}"""
ENDPOINTS = "{ merchantEndpoints { id url description eventTypes enabled disabledReason } }"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running


@pytest.fixture
async def endpoint(admin: Shopper, receiver: Receiver) -> AsyncIterator[tuple[str, str]]:
    data = await admin.data(CREATE, {"input": {"url": receiver.url, "eventTypes": ["order.paid", "refund.failed"]}})
    payload = data["createMerchantEndpoint"]
    assert payload["userErrors"] == [] and payload["endpoint"]["eventTypes"] == ["order.paid", "refund.failed"]
    yield payload["endpoint"]["id"], payload["secret"]
    await MerchantEndpoint.filter(id=payload["endpoint"]["id"]).delete()


async def test_the_secret_is_shown_once_and_kept_out_of_the_audit_trail(
    admin: Shopper, endpoint: tuple[str, str]
) -> None:
    endpoint_id, secret = endpoint
    listed = json.dumps(await admin.data(ENDPOINTS))
    assert endpoint_id in listed and secret not in listed
    rolled = (await admin.data(ROLL, {"input": {"id": endpoint_id}}))["rollMerchantEndpointSecret"]
    assert rolled["secret"].startswith("whsec_") and rolled["secret"] != secret
    stored = await MerchantEndpoint.get(id=endpoint_id)
    assert (stored.secret, stored.previous_secret) == (rolled["secret"], secret)
    records = await AuditRecord.filter(entity_id=endpoint_id).order_by("id")
    assert [r.action for r in records] == ["merchant_endpoint.created", "merchant_endpoint.secret_rolled"]
    assert all(r.actor == f"admin:{admin.subject}" for r in records)
    trail = json.dumps([r.data for r in records])
    assert secret not in trail and rolled["secret"] not in trail


async def test_each_change_leaves_an_audit_record(admin: Shopper, endpoint: tuple[str, str]) -> None:
    endpoint_id, _ = endpoint
    changed = await admin.data(UPDATE, {"input": {"id": endpoint_id, "description": "CRM", "eventTypes": ["*"]}})
    assert changed["updateMerchantEndpoint"]["endpoint"]["eventTypes"] == ["*"]
    await admin.data(UPDATE, {"input": {"id": endpoint_id, "enabled": False}})
    await admin.data(UPDATE, {"input": {"id": endpoint_id, "enabled": True}})
    await admin.data(TEST_EVENT, {"id": endpoint_id})
    assert (await admin.data(DELETE, {"id": endpoint_id}))["deleteMerchantEndpoint"] == {
        "deleted": True,
        "userErrors": [],
    }
    actions = [r.action for r in await AuditRecord.filter(entity_id=endpoint_id).order_by("id")]
    assert actions == [
        "merchant_endpoint.created",
        "merchant_endpoint.updated",
        "merchant_endpoint.disabled",
        "merchant_endpoint.enabled",
        "merchant_endpoint.test_sent",
        "merchant_endpoint.deleted",
    ]
    assert not await MerchantEndpoint.filter(id=endpoint_id).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ftp://hooks.example/in"}, "url"),
        ({"url": "https://user:password@hooks.example/in"}, "url"),
        ({"eventTypes": ["order.shipped"]}, "eventTypes"),
        ({"description": "x" * 501}, "description"),
    ],
)
async def test_bad_input_is_a_user_error_that_changes_nothing(
    admin: Shopper, receiver: Receiver, endpoint: tuple[str, str], change: dict[str, object], field: str
) -> None:
    endpoint_id, _ = endpoint
    before = await admin.data(ENDPOINTS)
    records = await AuditRecord.filter(entity_id=endpoint_id).count()
    answer = (await admin.data(UPDATE, {"input": {"id": endpoint_id, **change}}))["updateMerchantEndpoint"]
    assert answer == {"endpoint": None, "userErrors": [{"code": "INVALID_INPUT", "field": field}]}
    created = await admin.data(CREATE, {"input": {"url": receiver.url, **change}})
    assert created["createMerchantEndpoint"]["userErrors"][0]["field"] == field
    assert await admin.data(ENDPOINTS) == before
    assert await AuditRecord.filter(entity_id=endpoint_id).count() == records


async def test_an_overlap_beyond_seven_days_is_refused(admin: Shopper, endpoint: tuple[str, str]) -> None:
    endpoint_id, secret = endpoint
    answer = await admin.data(ROLL, {"input": {"id": endpoint_id, "overlapSeconds": 8 * 86400}})
    assert answer["rollMerchantEndpointSecret"] == {
        "secret": None,
        "userErrors": [{"code": "INVALID_INPUT", "field": "overlapSeconds"}],
    }
    assert (await MerchantEndpoint.get(id=endpoint_id)).secret == secret


async def test_customers_cannot_see_or_change_endpoints(shopper: Shopper, endpoint: tuple[str, str]) -> None:
    body = await shopper.gql(ENDPOINTS)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    answer = await shopper.data(ROLL, {"input": {"id": endpoint[0]}})
    assert answer["rollMerchantEndpointSecret"]["userErrors"] == [{"code": "FORBIDDEN", "field": None}]


async def test_failed_deliveries_since_a_time_are_sent_again(
    admin: Shopper, services: Services, receiver: Receiver, endpoint: tuple[str, str]
) -> None:
    endpoint_id, _ = endpoint
    receiver.answer = lambda _request, _before: 500
    sent = [
        (await admin.data(TEST_EVENT, {"id": endpoint_id}))["sendMerchantTestEvent"]["delivery"]["id"] for _ in range(2)
    ]

    async def all_dead() -> bool:
        return await MerchantDelivery.filter(id__in=sent, status=DeliveryStatus.DEAD).count() == 2

    await eventually(all_dead)
    receiver.answer = lambda _request, _before: 204
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    none = await admin.data(RESEND_FAILED, {"input": {"since": later, "endpointId": endpoint_id}})
    assert none["resendFailedMerchantDeliveries"] == {"count": 0, "userErrors": []}
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    resent = await admin.data(RESEND_FAILED, {"input": {"since": earlier, "endpointId": endpoint_id}})
    assert resent["resendFailedMerchantDeliveries"] == {"count": 2, "userErrors": []}

    async def all_delivered() -> bool:
        return await MerchantDelivery.filter(id__in=sent, status=DeliveryStatus.DELIVERED).count() == 2

    await eventually(all_delivered)
    assert await AuditRecord.filter(action="merchant_delivery.resent", entity_id__in=sent).count() == 2
