"""The authorization matrix: every query, mutation and subscription field, called for real by an
anonymous caller, by customer A on customer B's objects, and by staff, answers as the table says.

The schema is walked by introspection: a root field without a row in `MATRIX` fails the test, so a
new field cannot ship without someone deciding who may call it. Each row names the document to send
(its variables point at objects customer B owns, created once for this module) and what each caller
gets:

- UNAUTHENTICATED, FORBIDDEN, NOT_FOUND: that error code (a query's GraphQL error, a mutation's
  first userError, or the websocket's first message);
- ALLOWED: none of those three codes (a business answer such as INVALID_STATE or ALREADY_PAID means
  the caller got past authorization; an error without a code never counts as allowed);
- OWN_ONLY: answered, and nothing of customer B's is in the answer.

Staff rows run last within each field and may change B's objects (refund, cancel, pause...): the
expectations hold in any state those objects reach.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.merchant_models import DeliveryStatus, MerchantDelivery, MerchantEndpoint, MerchantEvent
from db.models import Dispute, Payment
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.features.subscriptions.kit import recurring_price, subscribe
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, new_key, settle
from tests.wsclient import graphql_ws

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
ALLOWED = "allowed"
OWN_ONLY = "own only"
AUTHORIZATION_CODES = frozenset({UNAUTHENTICATED, FORBIDDEN, NOT_FOUND})
HANG_BOUND_SECONDS = 10.0


@dataclass(frozen=True)
class Access:
    anonymous: str
    other_customer: str
    staff: str


ANYONE = Access(ALLOWED, ALLOWED, ALLOWED)
SIGNED_IN = Access(UNAUTHENTICATED, ALLOWED, ALLOWED)
OWN_OR_ALL = Access(UNAUTHENTICATED, OWN_ONLY, ALLOWED)
OWNER_OR_STAFF = Access(UNAUTHENTICATED, NOT_FOUND, ALLOWED)
STAFF_ONLY = Access(UNAUTHENTICATED, FORBIDDEN, ALLOWED)


@dataclass(frozen=True)
class Objects:
    """Customer B's objects, which the matrix points customer A and staff at."""

    order_id: str
    payment_id: str
    price_id: str
    subscription_id: str
    invoice_id: str
    plan_product_id: str
    other_plan_price_id: str
    dispute_id: str

    def owned_ids(self) -> list[str]:
        return [
            self.order_id,
            self.payment_id,
            self.subscription_id,
            self.invoice_id,
            self.plan_product_id,
            self.dispute_id,
        ]


Variables = Callable[[Objects], dict[str, Any]]


def no_variables(_: Objects) -> dict[str, Any]:
    return {}


def mentions_b(data: dict[str, Any], b: Objects) -> bool:
    text = json.dumps(data)
    return any(owned in text for owned in b.owned_ids())


@dataclass(frozen=True)
class Entry:
    access: Access
    document: str
    variables: Variables = no_variables
    # For OWN_ONLY: whether customer A's answer shows anything of B's.
    leaks: Callable[[dict[str, Any], Objects], bool] = mentions_b


def window(_: Objects) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"since": (now - timedelta(days=2)).isoformat(), "until": (now + timedelta(days=1)).isoformat()}


def subscription_input(b: Objects, **extra: Any) -> dict[str, Any]:
    return {"input": {"subscriptionId": b.subscription_id, "idempotencyKey": new_key(), **extra}}


def payment_input(b: Objects, **extra: Any) -> dict[str, Any]:
    return {"input": {"paymentId": b.payment_id, "idempotencyKey": new_key(), **extra}}


ERRORS = "userErrors { code }"
# Disabled webhook endpoints (one for the delete row) and a dead delivery, made by `merchant_rows`:
# staff calls on them answer without sending anything anywhere.
MERCHANT: dict[str, str] = {}

MATRIX: dict[str, Entry] = {
    # --- queries ---------------------------------------------------------------------------------------------
    "Query.products": Entry(ANYONE, "{ products { id } }"),
    "Query.gateways": Entry(ANYONE, "{ gateways }"),
    "Query.stripePublishableKey": Entry(ANYONE, "{ stripePublishableKey }"),
    "Query.paymentOptions": Entry(ANYONE, "{ paymentOptions { gateway } }"),
    "Query.order": Entry(
        OWNER_OR_STAFF, "query($id: ID!) { order(id: $id) { id payments { id } } }", lambda b: {"id": b.order_id}
    ),
    "Query.orders": Entry(OWN_OR_ALL, "{ orders(first: 50) { edges { node { id } } } }"),
    "Query.auditLog": Entry(
        STAFF_ONLY, "query($id: ID!) { auditLog(entityId: $id) { id } }", lambda b: {"id": b.order_id}
    ),
    "Query.revenueByDay": Entry(
        STAFF_ONLY,
        "query($since: DateTime!, $until: DateTime!) { revenueByDay(since: $since, until: $until) { day } }",
        window,
    ),
    "Query.paymentOutcomes": Entry(
        STAFF_ONLY,
        "query($since: DateTime!, $until: DateTime!) { paymentOutcomes(since: $since, until: $until) { __typename } }",
        window,
    ),
    "Query.declineReasons": Entry(
        STAFF_ONLY,
        "query($since: DateTime!, $until: DateTime!) { declineReasons(since: $since, until: $until) { count } }",
        window,
    ),
    "Query.disputeRate": Entry(
        STAFF_ONLY,
        "query($since: DateTime!, $until: DateTime!) { disputeRate(since: $since, until: $until) { currency } }",
        window,
    ),
    "Query.subscriptions": Entry(OWN_OR_ALL, "{ subscriptions(first: 50) { id } }"),
    "Query.subscription": Entry(
        OWNER_OR_STAFF, "query($id: ID!) { subscription(id: $id) { id } }", lambda b: {"id": b.subscription_id}
    ),
    "Query.invoices": Entry(
        OWNER_OR_STAFF,
        "query($id: ID!) { invoices(subscriptionId: $id) { id } }",
        lambda b: {"id": b.subscription_id},
    ),
    "Query.entitlements": Entry(OWN_OR_ALL, "{ entitlements }"),
    "Query.hasAccess": Entry(
        OWN_OR_ALL,
        "query($id: ID!) { hasAccess(productId: $id) }",
        lambda b: {"id": b.plan_product_id},
        leaks=lambda data, _: data["hasAccess"] is not False,
    ),
    "Query.previewSubscriptionChange": Entry(
        OWNER_OR_STAFF,
        "query($id: ID!, $price: ID!) { previewSubscriptionChange(subscriptionId: $id, priceId: $price) "
        "{ amountDueNow { amount } } }",
        lambda b: {"id": b.subscription_id, "price": b.other_plan_price_id},
    ),
    "Query.disputes": Entry(STAFF_ONLY, "{ disputes { id } }"),
    "Query.dispute": Entry(STAFF_ONLY, "query($id: ID!) { dispute(id: $id) { id } }", lambda b: {"id": b.dispute_id}),
    # --- mutations -------------------------------------------------------------------------------------------
    "Mutation.checkout": Entry(
        SIGNED_IN,
        f"mutation($input: CheckoutInput!) {{ checkout(input: $input) {{ {ERRORS} }} }}",
        lambda b: {
            "input": {"items": [{"priceId": b.price_id}], "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
        },
    ),
    "Mutation.payOrder": Entry(
        OWNER_OR_STAFF,
        f"mutation($input: PayOrderInput!) {{ payOrder(input: $input) {{ {ERRORS} }} }}",
        lambda b: {"input": {"orderId": b.order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}},
    ),
    "Mutation.capturePayment": Entry(
        STAFF_ONLY,
        f"mutation($input: CapturePaymentInput!) {{ capturePayment(input: $input) {{ {ERRORS} }} }}",
        payment_input,
    ),
    "Mutation.cancelPayment": Entry(
        STAFF_ONLY,
        f"mutation($input: CancelPaymentInput!) {{ cancelPayment(input: $input) {{ {ERRORS} }} }}",
        payment_input,
    ),
    "Mutation.completePayment": Entry(
        OWNER_OR_STAFF,
        f"mutation($input: CompletePaymentInput!) {{ completePayment(input: $input) {{ {ERRORS} }} }}",
        lambda b: {"input": {"paymentId": b.payment_id}},
    ),
    "Mutation.refundPayment": Entry(
        STAFF_ONLY,
        f"mutation($input: RefundPaymentInput!) {{ refundPayment(input: $input) {{ {ERRORS} }} }}",
        lambda b: payment_input(b, amount=100),
    ),
    "Mutation.cancelOrder": Entry(
        STAFF_ONLY,
        f"mutation($input: CancelOrderInput!) {{ cancelOrder(input: $input) {{ {ERRORS} }} }}",
        lambda b: {"input": {"orderId": b.order_id, "idempotencyKey": new_key()}},
    ),
    "Mutation.createSubscription": Entry(
        SIGNED_IN,
        f"mutation($input: CreateSubscriptionInput!) {{ createSubscription(input: $input) {{ {ERRORS} }} }}",
        lambda b: {
            "input": {"priceId": b.other_plan_price_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
        },
    ),
    "Mutation.changeSubscriptionPlan": Entry(
        OWNER_OR_STAFF,
        f"mutation($input: ChangeSubscriptionPlanInput!) {{ changeSubscriptionPlan(input: $input) {{ {ERRORS} }} }}",
        lambda b: subscription_input(b, priceId=b.other_plan_price_id, proration="AT_PERIOD_END"),
    ),
    "Mutation.cancelSubscription": Entry(
        OWNER_OR_STAFF,
        f"mutation($input: CancelSubscriptionInput!) {{ cancelSubscription(input: $input) {{ {ERRORS} }} }}",
        lambda b: subscription_input(b, atPeriodEnd=True),
    ),
    "Mutation.pauseSubscription": Entry(
        OWNER_OR_STAFF,
        f"mutation($input: SubscriptionActionInput!) {{ pauseSubscription(input: $input) {{ {ERRORS} }} }}",
        subscription_input,
    ),
    "Mutation.resumeSubscription": Entry(
        OWNER_OR_STAFF,
        f"mutation($input: SubscriptionActionInput!) {{ resumeSubscription(input: $input) {{ {ERRORS} }} }}",
        subscription_input,
    ),
    "Mutation.reportUsage": Entry(
        OWNER_OR_STAFF,
        f"mutation($input: ReportUsageInput!) {{ reportUsage(input: $input) {{ {ERRORS} }} }}",
        lambda b: subscription_input(b, priceId=b.other_plan_price_id, quantity=1),
    ),
    "Mutation.updateDefaultPaymentMethod": Entry(
        OWNER_OR_STAFF,
        "mutation($input: UpdateDefaultPaymentMethodInput!) "
        f"{{ updateDefaultPaymentMethod(input: $input) {{ {ERRORS} }} }}",
        lambda b: subscription_input(b, paymentMethod="pm_card_visa"),
    ),
    "Mutation.advanceClock": Entry(
        STAFF_ONLY,
        "mutation($id: ID!) { advanceClock(subscriptionId: $id, seconds: 60) { now } }",
        lambda b: {"id": b.subscription_id},
    ),
    "Mutation.recordFulfillment": Entry(
        STAFF_ONLY,
        f"mutation($input: RecordFulfillmentInput!) {{ recordFulfillment(input: $input) {{ {ERRORS} }} }}",
        lambda b: {
            "input": {"orderId": b.order_id, "carrier": "DHL", "trackingNumber": "JD01", "idempotencyKey": new_key()}
        },
    ),
    "Mutation.addDisputeNote": Entry(
        STAFF_ONLY,
        f"mutation($input: AddDisputeNoteInput!) {{ addDisputeNote(input: $input) {{ {ERRORS} }} }}",
        lambda b: {"input": {"disputeId": b.dispute_id, "body": "Called the customer."}},
    ),
    "Mutation.submitDisputeEvidence": Entry(
        STAFF_ONLY,
        f"mutation($input: SubmitDisputeEvidenceInput!) {{ submitDisputeEvidence(input: $input) {{ {ERRORS} }} }}",
        lambda b: {"input": {"disputeId": b.dispute_id, "idempotencyKey": new_key()}},
    ),
    # --- subscriptions (websocket) ---------------------------------------------------------------------------
    "Subscription.orderStatus": Entry(
        OWNER_OR_STAFF, "subscription($id: ID!) { orderStatus(orderId: $id) { id } }", lambda b: {"id": b.order_id}
    ),
    # --- outgoing webhooks: staff only; rows refused as bad input or aimed at MERCHANT's disabled rows --------
    "Query.merchantEndpoints": Entry(STAFF_ONLY, "{ merchantEndpoints { id } }"),
    "Query.merchantDeliveries": Entry(STAFF_ONLY, "{ merchantDeliveries(first: 5) { id } }"),
    "Mutation.createMerchantEndpoint": Entry(
        STAFF_ONLY,
        f"mutation($input: CreateMerchantEndpointInput!) {{ createMerchantEndpoint(input: $input) {{ {ERRORS} }} }}",
        lambda _: {"input": {"url": "ftp://matrix.invalid/hook"}},
    ),
    "Mutation.updateMerchantEndpoint": Entry(
        STAFF_ONLY,
        f"mutation($input: UpdateMerchantEndpointInput!) {{ updateMerchantEndpoint(input: $input) {{ {ERRORS} }} }}",
        lambda _: {"input": {"id": MERCHANT["endpoint"], "description": "matrix"}},
    ),
    "Mutation.disableMerchantEndpoint": Entry(
        STAFF_ONLY,
        f"mutation($id: ID!) {{ disableMerchantEndpoint(id: $id) {{ {ERRORS} }} }}",
        lambda _: {"id": MERCHANT["endpoint"]},
    ),
    "Mutation.deleteMerchantEndpoint": Entry(
        STAFF_ONLY,
        f"mutation($id: ID!) {{ deleteMerchantEndpoint(id: $id) {{ {ERRORS} }} }}",
        lambda _: {"id": MERCHANT["doomed"]},
    ),
    "Mutation.rollMerchantEndpointSecret": Entry(
        STAFF_ONLY,
        "mutation($input: RollMerchantEndpointSecretInput!) "
        f"{{ rollMerchantEndpointSecret(input: $input) {{ {ERRORS} }} }}",
        lambda _: {"input": {"id": MERCHANT["endpoint"]}},
    ),
    "Mutation.resendMerchantDelivery": Entry(
        STAFF_ONLY,
        f"mutation($id: ID!) {{ resendMerchantDelivery(id: $id) {{ {ERRORS} }} }}",
        lambda _: {"id": MERCHANT["delivery"]},
    ),
    "Mutation.resendFailedMerchantDeliveries": Entry(
        STAFF_ONLY,
        "mutation($input: ResendFailedMerchantDeliveriesInput!) "
        f"{{ resendFailedMerchantDeliveries(input: $input) {{ {ERRORS} }} }}",
        lambda _: {"input": {"since": (datetime.now(UTC) + timedelta(days=1)).isoformat()}},
    ),
    "Mutation.sendMerchantTestEvent": Entry(
        STAFF_ONLY,
        f"mutation($id: ID!) {{ sendMerchantTestEvent(endpointId: $id) {{ {ERRORS} }} }}",
        lambda _: {"id": MERCHANT["endpoint"]},
    ),
    "Subscription.subscriptionStatus": Entry(
        OWNER_OR_STAFF,
        "subscription($id: ID!) { subscriptionStatus(subscriptionId: $id) { id } }",
        lambda b: {"id": b.subscription_id},
    ),
}

# Rows whose answer depends on an argument: run like MATRIX rows, not counted as fields.
VARIANTS: dict[str, Entry] = {
    "Query.subscriptions(all: true)": Entry(STAFF_ONLY, "{ subscriptions(all: true, first: 50) { id } }"),
}

# Deprecated fields too: they still answer until they are removed.
ROOT_FIELDS = """{ __schema {
  queryType { fields(includeDeprecated: true) { name } } mutationType { fields(includeDeprecated: true) { name } }
  subscriptionType { fields(includeDeprecated: true) { name } } } }"""


@pytest.fixture(scope="module")
async def customer_b(http: httpx.AsyncClient) -> Shopper:
    return Shopper(http, f"customer-b-{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
async def objects(customer_b: Shopper, services: Services, sandbox: SandboxProcessor) -> AsyncIterator[Objects]:
    """Customer B's order (paid, disputed), payment, subscription with its invoice, and the prices used."""
    price = await make_price(4_000)
    paid = (await customer_b.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    plan = await recurring_price(1_500)
    other_plan = await recurring_price(2_500, product=None)
    subscribed = await subscribe(customer_b, plan)
    assert not subscribed["userErrors"], subscribed
    await settle(services)
    payment = await Payment.get(id=paid["payment"]["id"])
    opened = await sandbox.create_dispute(payment.gateway_reference or "", "fraudulent")
    await settle(services)
    dispute = await Dispute.get(gateway="sandbox", gateway_reference=opened.id)
    yield Objects(
        order_id=paid["order"]["id"],
        payment_id=str(payment.id),
        price_id=str(price.id),
        subscription_id=subscribed["subscription"]["id"],
        invoice_id=subscribed["latestInvoice"]["id"],
        plan_product_id=str(plan.product_id),
        other_plan_price_id=str(other_plan.id),
        dispute_id=str(dispute.id),
    )
    await settle(services)


@pytest.fixture(scope="module", autouse=True)
async def merchant_rows(server: str) -> AsyncIterator[None]:
    url = "https://matrix.invalid/hook"
    kept = await MerchantEndpoint.create(url=url, event_types=["*"], secret="whsec_matrix", enabled=False)
    doomed = await MerchantEndpoint.create(url=url, event_types=["*"], secret="whsec_matrix", enabled=False)
    event = await MerchantEvent.create(
        public_id=f"evt_{uuid.uuid4().hex}", type="endpoint.test", object_type="endpoint",
        object_id=str(kept.id), object_version=0, dedupe_key=f"matrix:{uuid.uuid4()}", body="{}",
    )  # fmt: skip
    delivery = await MerchantDelivery.create(event_id=event.id, endpoint_id=kept.id, status=DeliveryStatus.DEAD)
    MERCHANT.update(endpoint=str(kept.id), doomed=str(doomed.id), delivery=str(delivery.id))
    yield
    await MerchantEndpoint.filter(id__in=[kept.id, doomed.id]).delete()


async def root_fields(http: httpx.AsyncClient) -> set[str]:
    response = await http.post("/graphql", json={"query": ROOT_FIELDS})
    schema = response.json()["data"]["__schema"]
    return {
        f"{root}.{field['name']}"
        for root, key in (("Query", "queryType"), ("Mutation", "mutationType"), ("Subscription", "subscriptionType"))
        for field in schema[key]["fields"]
    }


async def test_every_root_field_has_a_row_in_the_matrix(http: httpx.AsyncClient) -> None:
    fields = await root_fields(http)
    assert sorted(fields - MATRIX.keys()) == [], "decide who may call these fields and add them to MATRIX"
    assert sorted(MATRIX.keys() - fields) == [], "these rows name fields the schema no longer has"


def error_codes(body: dict[str, Any], field: str) -> list[str]:
    """The codes of a GraphQL answer's errors, else of its payload's userErrors (`?` for an error without one)."""
    if body.get("errors"):
        return [
            str((error.get("extensions") or {}).get("code", f"? {error.get('message')}")) for error in body["errors"]
        ]
    payload = (body.get("data") or {}).get(field)
    if isinstance(payload, dict) and isinstance(payload.get("userErrors"), list):
        return [str(error["code"]) for error in payload["userErrors"]]
    return []


async def call_http(shopper: Shopper | None, http: httpx.AsyncClient, entry: Entry, b: Objects) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {shopper.token}"} if shopper else {}
    request = http.post("/graphql", json={"query": entry.document, "variables": entry.variables(b)}, headers=headers)
    response = await asyncio.wait_for(request, HANG_BOUND_SECONDS)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def call_websocket(shopper: Shopper | None, server: str, entry: Entry, b: Objects) -> dict[str, Any]:
    """The first message of the subscription, as an HTTP-like body (`data` or `errors`)."""

    async def first_message() -> dict[str, Any]:
        async with graphql_ws(server, shopper.token if shopper else None) as socket:
            async for message in socket.subscribe(entry.document, entry.variables(b)):
                if message["type"] == "error":
                    return {"errors": message["payload"]}
                payload: dict[str, Any] = message["payload"]
                return payload
        raise AssertionError("the subscription completed without a message")

    return await asyncio.wait_for(first_message(), HANG_BOUND_SECONDS)


def verdict(body: dict[str, Any], field: str, expected: str, entry: Entry, b: Objects) -> str:
    """What the caller got, in the matrix's terms: an authorization code, ALLOWED, OWN_ONLY, or what else."""
    codes = error_codes(body, field)
    refused = [code for code in codes if code in AUTHORIZATION_CODES]
    if refused:
        return refused[0]
    if any(code.startswith("?") for code in codes):
        return f"uncoded error {codes}"
    if expected == OWN_ONLY:
        if codes:
            return f"errors {codes}"
        return f"leaked {body['data']}" if entry.leaks(body["data"], b) else OWN_ONLY
    return ALLOWED


@pytest.mark.parametrize("name", [*sorted(MATRIX), *sorted(VARIANTS)])
async def test_each_caller_gets_what_the_matrix_says(
    name: str, http: httpx.AsyncClient, server: str, objects: Objects, admin: Shopper
) -> None:
    entry = MATRIX.get(name) or VARIANTS[name]
    root, _, rest = name.partition(".")
    field = rest.partition("(")[0]
    customer_a = Shopper(http, f"customer-a-{uuid.uuid4().hex[:10]}")
    got: dict[str, str] = {}
    for role, caller in (("anonymous", None), ("other_customer", customer_a), ("staff", admin)):
        expected = getattr(entry.access, role)
        if root == "Subscription":
            body = await call_websocket(caller, server, entry, objects)
        else:
            body = await call_http(caller, http, entry, objects)
        got[role] = verdict(body, field, expected, entry, objects)
    assert got == {
        "anonymous": entry.access.anonymous,
        "other_customer": entry.access.other_customer,
        "staff": entry.access.staff,
    }
