"""The emulator's recurring billing: customers, cards on file, Catalog subscription plans and variations,
subscriptions and the invoices that bill them, with Square's rules for each (Customers, Cards, Catalog,
Subscriptions and Invoices APIs of connect-api-specification's api.json). Charges go through the `Ledger`, so a
subscription's payments are ordinary card payments carrying the invoice's `order_id`.

Time does not pass by itself: a test ends the current billing period with `Billing.renew(subscription_id)`, which
carries out the actions due (a scheduled CANCEL or SWAP_PLAN), starts a PENDING (trialing) subscription, and
bills the next period on the card on file (declined with `emulator.decline_next`). Every change calls
`emit(event_type, object)` for the webhooks. Never imported by PayQL itself.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from tests.square_emulator.errors import SquareError, invalid, not_found
from tests.square_emulator.ledger import (
    TEST_NONCES,
    TOKEN_ERRORS,
    Declined,
    Emit,
    Ledger,
    Merchant,
    Payment,
    now,
    square_id,
)

# SubscriptionCadence → (days, months) per period; the cadences PayQL's intervals map onto.
CADENCES: dict[str, tuple[int, int]] = {
    "DAILY": (1, 0),
    "WEEKLY": (7, 0),
    "EVERY_TWO_WEEKS": (14, 0),
    "THIRTY_DAYS": (30, 0),
    "SIXTY_DAYS": (60, 0),
    "NINETY_DAYS": (90, 0),
    "MONTHLY": (0, 1),
    "EVERY_TWO_MONTHS": (0, 2),
    "QUARTERLY": (0, 3),
    "EVERY_FOUR_MONTHS": (0, 4),
    "EVERY_SIX_MONTHS": (0, 6),
    "ANNUAL": (0, 12),
    "EVERY_TWO_YEARS": (0, 24),
}
PLAN_TYPES = ("SUBSCRIPTION_PLAN", "SUBSCRIPTION_PLAN_VARIATION")


def add_cadence(start: date, cadence: str) -> date:
    days, months = CADENCES[cadence]
    if months:
        month_index = start.month - 1 + months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
    return start + timedelta(days=days)


@dataclass
class Customer:
    id: str
    merchant: Merchant
    email_address: str | None
    reference_id: str | None
    created_at: datetime = field(default_factory=now)


@dataclass
class Card:
    id: str
    merchant: Merchant
    customer_id: str
    reference_id: str | None
    verification_token: str | None
    enabled: bool = True
    created_at: datetime = field(default_factory=now)


@dataclass
class CatalogObject:
    id: str
    merchant: Merchant
    type: str
    data: dict[str, Any]  # subscription_plan_data or subscription_plan_variation_data
    version: int
    updated_at: datetime = field(default_factory=now)


@dataclass
class Invoice:
    id: str
    merchant: Merchant
    subscription_id: str
    customer_id: str
    card_id: str
    order_id: str
    amount: int
    currency: str
    due_date: date
    invoice_number: str
    status: str = "UNPAID"  # UNPAID | SCHEDULED | PAID | CANCELED
    paid: int = 0
    version: int = 0
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    def touch(self) -> None:
        self.version += 1
        self.updated_at = now()


@dataclass
class Subscription:
    id: str
    merchant: Merchant
    plan_variation_id: str
    customer_id: str
    card_id: str | None
    start_date: date
    status: str  # PENDING | ACTIVE | CANCELED | DEACTIVATED | PAUSED
    charged_through_date: date | None = None
    canceled_date: date | None = None
    invoice_ids: list[str] = field(default_factory=list)  # newest first, as Square lists them
    actions: list[dict[str, Any]] = field(default_factory=list)
    version: int = 1
    created_at: datetime = field(default_factory=now)

    def touch(self) -> None:
        self.version += 1


class Billing:
    def __init__(self, ledger: Ledger, emit: Emit) -> None:
        self._ledger = ledger
        self._emit = emit
        self.customers: dict[str, Customer] = {}
        self.cards: dict[str, Card] = {}
        self.catalog: dict[str, CatalogObject] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.invoices: dict[str, Invoice] = {}

    # --- customers and cards -------------------------------------------------------------------------------
    def create_customer(self, merchant: Merchant, body: dict[str, Any]) -> Customer:
        email, reference = body.get("email_address"), body.get("reference_id")
        if not any(
            body.get(name) for name in ("given_name", "family_name", "company_name", "email_address", "phone_number")
        ):
            raise invalid(
                "MISSING_REQUIRED_PARAMETER",
                "At least one of given_name, family_name, company_name, email_address or phone_number is required.",
            )
        if isinstance(reference, str) and len(reference) > 100:
            raise invalid("VALUE_TOO_LONG", "Field must not be greater than 100 length", field="reference_id")
        customer = Customer(
            square_id(26).upper(),
            merchant,
            email if isinstance(email, str) else None,
            reference if isinstance(reference, str) else None,
        )
        self.customers[customer.id] = customer
        return customer

    def customer(self, merchant: Merchant, customer_id: str) -> Customer:
        customer = self.customers.get(customer_id)
        if customer is None or customer.merchant is not merchant:
            raise not_found("customer", customer_id)
        return customer

    def create_card(self, merchant: Merchant, body: dict[str, Any]) -> Card:
        """CreateCard from a Web Payments SDK token: the card is checked with the issuer first, so a declining test
        token is refused with the decline (PAYMENT_METHOD_ERROR), as CreatePayment refuses it."""
        source_id = body.get("source_id")
        card = body.get("card")
        if not isinstance(source_id, str) or not source_id:
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="source_id")
        if not isinstance(card, dict) or not isinstance(card.get("customer_id"), str):
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="card.customer_id")
        customer = self.customer(merchant, card["customer_id"])
        if source_id not in TEST_NONCES and source_id not in self._ledger.sca_nonces:
            raise invalid("INVALID_CARD_DATA", "Invalid card data.", field="source_id")
        verification_token, needs_verification = self._ledger.verification(source_id, body)
        decline = "CARD_DECLINED_VERIFICATION_REQUIRED" if needs_verification else TEST_NONCES.get(source_id)
        if decline in TOKEN_ERRORS:
            raise invalid(str(decline), "Card nonce already used; please request new nonce.", field="source_id")
        if decline is not None:
            raise SquareError(400, "PAYMENT_METHOD_ERROR", decline, f"Authorization error: '{decline}'")
        reference = card.get("reference_id")
        made = Card(
            f"ccof:{square_id(16)}",
            merchant,
            customer.id,
            reference if isinstance(reference, str) else None,
            verification_token,
        )
        self.cards[made.id] = made
        self._ledger.card_ids.add(made.id)
        return made

    # --- catalog -------------------------------------------------------------------------------------------
    def upsert(self, merchant: Merchant, body: dict[str, Any]) -> tuple[CatalogObject, list[dict[str, str]]]:
        """UpsertCatalogObject creating a plan or a variation (of an existing plan, STATIC phases in the merchant's
        currency); answers the object and the temporary id's mapping."""
        obj = body.get("object")
        if not isinstance(obj, dict):
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="object")
        kind, client_id = obj.get("type"), obj.get("id")
        if kind not in PLAN_TYPES:
            raise invalid("INVALID_VALUE", f"The emulator keeps no {kind} objects.", field="object.type")
        if not isinstance(client_id, str) or not client_id:
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="object.id")
        key = "subscription_plan_data" if kind == "SUBSCRIPTION_PLAN" else "subscription_plan_variation_data"
        data = obj.get(key)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field=f"object.{key}.name")
        if kind == "SUBSCRIPTION_PLAN_VARIATION":
            self._check_variation(merchant, data)
        if not client_id.startswith("#"):
            # Updating an object (its id and version) is left out: PayQL never changes a variation once made.
            raise invalid(
                "BAD_REQUEST", "The emulator only creates catalog objects (a #temporary id).", field="object.id"
            )
        made = CatalogObject(square_id(24).upper(), merchant, kind, data, int(now().timestamp() * 1000))
        self.catalog[made.id] = made
        if kind == "SUBSCRIPTION_PLAN_VARIATION":
            plan = self.catalog[data["subscription_plan_id"]]
            plan.data.setdefault("subscription_plan_variations", []).append(made.id)
        return made, [{"client_object_id": client_id, "object_id": made.id}]

    def _check_variation(self, merchant: Merchant, data: dict[str, Any]) -> None:
        plan_id = data.get("subscription_plan_id")
        plan = self.catalog.get(plan_id) if isinstance(plan_id, str) else None
        if plan is None or plan.merchant is not merchant or plan.type != "SUBSCRIPTION_PLAN":
            raise invalid(
                "INVALID_VALUE", "subscription_plan_id must name a SUBSCRIPTION_PLAN.", field="subscription_plan_id"
            )
        phases = data.get("phases")
        if not isinstance(phases, list) or not phases:
            raise invalid("MISSING_REQUIRED_PARAMETER", "Field must be set", field="phases")
        for index, phase in enumerate(phases):
            if not isinstance(phase, dict) or phase.get("cadence") not in CADENCES:
                raise invalid("INVALID_ENUM_VALUE", "Invalid cadence.", field=f"phases[{index}].cadence")
            pricing = phase.get("pricing")
            price = pricing.get("price_money") if isinstance(pricing, dict) else None
            if not isinstance(pricing, dict) or pricing.get("type") != "STATIC" or not isinstance(price, dict):
                raise invalid(
                    "MISSING_REQUIRED_PARAMETER", "A STATIC phase needs pricing.price_money.", field=f"phases[{index}]"
                )
            if price.get("currency") != merchant.currency:
                raise invalid("INVALID_VALUE", f"Prices must be in {merchant.currency}.", field=f"phases[{index}]")

    def catalog_object(self, merchant: Merchant, object_id: str) -> CatalogObject:
        obj = self.catalog.get(object_id)
        if obj is None or obj.merchant is not merchant:
            raise not_found("catalog object", object_id)
        return obj

    def search_catalog(self, merchant: Merchant, body: dict[str, Any]) -> list[CatalogObject]:
        """object_types and an exact_query on `name` (case-insensitive, and partial, as the API says)."""
        types = body.get("object_types") or list(PLAN_TYPES)
        query = body.get("query") or {}
        exact = query.get("exact_query") if isinstance(query, dict) else None
        if exact is not None and (not isinstance(exact, dict) or exact.get("attribute_name") != "name"):
            raise invalid("INVALID_VALUE", "The emulator searches by name only.", field="query.exact_query")
        wanted = str(exact.get("attribute_value", "")).lower() if exact else ""
        return [
            obj
            for obj in self.catalog.values()
            if obj.merchant is merchant and obj.type in types and wanted in str(obj.data.get("name", "")).lower()
        ]

    def _variation(self, merchant: Merchant, variation_id: object) -> CatalogObject:
        variation = self.catalog.get(variation_id) if isinstance(variation_id, str) else None
        if variation is None or variation.merchant is not merchant or variation.type != PLAN_TYPES[1]:
            raise invalid("INVALID_VALUE", f"Plan variation {variation_id} does not exist.", field="plan_variation_id")
        return variation

    # --- subscriptions -------------------------------------------------------------------------------------
    def create_subscription(self, merchant: Merchant, body: dict[str, Any]) -> Subscription:
        if body.get("location_id") != merchant.location_id:
            raise not_found("location", str(body.get("location_id")))
        customer = self.customer(merchant, str(body.get("customer_id")))
        variation = self._variation(merchant, body.get("plan_variation_id"))
        card_id = body.get("card_id")
        if card_id is not None:
            card = self.cards.get(str(card_id))
            if card is None or card.customer_id != customer.id or not card.enabled:
                raise invalid("INVALID_VALUE", "The card does not belong to the customer.", field="card_id")
        start = _date(body.get("start_date"), "start_date") or now().date()
        if start < now().date():
            raise invalid("INVALID_VALUE", "start_date cannot be in the past.", field="start_date")
        subscription = Subscription(
            id=str(uuid.uuid4()),
            merchant=merchant,
            plan_variation_id=variation.id,
            customer_id=customer.id,
            card_id=card_id if isinstance(card_id, str) else None,
            start_date=start,
            status="PENDING",
        )
        self.subscriptions[subscription.id] = subscription
        self._emit("subscription.created", subscription)
        if start <= now().date():
            self._start(subscription)
        return subscription

    def subscription(self, merchant: Merchant, subscription_id: str) -> Subscription:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None or subscription.merchant is not merchant:
            raise not_found("subscription", subscription_id)
        return subscription

    def update_card(self, merchant: Merchant, subscription_id: str, body: dict[str, Any]) -> Subscription:
        """UpdateSubscription, for the one field PayQL changes: `card_id` (the customer's own enabled card)."""
        subscription = self.subscription(merchant, subscription_id)
        change = body.get("subscription")
        card_id = change.get("card_id") if isinstance(change, dict) else None
        card = self.cards.get(card_id) if isinstance(card_id, str) else None
        if card is None or card.customer_id != subscription.customer_id or not card.enabled:
            raise invalid("INVALID_VALUE", "The card does not belong to the customer.", field="subscription.card_id")
        subscription.card_id = card.id
        subscription.touch()
        self._emit("subscription.updated", subscription)
        return subscription

    def cancel(self, merchant: Merchant, subscription_id: str) -> tuple[Subscription, list[dict[str, Any]]]:
        """Schedules a CANCEL at the end of the paid period (Square cancels no sooner)."""
        subscription = self.subscription(merchant, subscription_id)
        if subscription.status in ("CANCELED", "DEACTIVATED") or subscription.canceled_date is not None:
            raise invalid("BAD_REQUEST", f"Subscription {subscription_id} is already canceled or scheduled to be.")
        effective = subscription.charged_through_date or subscription.start_date
        action = {"id": str(uuid.uuid4()), "type": "CANCEL", "effective_date": effective.isoformat()}
        subscription.actions = [a for a in subscription.actions if a["type"] != "CANCEL"] + [action]
        subscription.canceled_date = effective
        subscription.touch()
        self._emit("subscription.updated", subscription)
        return subscription, [action]

    def swap_plan(
        self, merchant: Merchant, subscription_id: str, body: dict[str, Any]
    ) -> tuple[Subscription, list[dict[str, Any]]]:
        """Schedules a SWAP_PLAN for the next billing date: no proration, the new price from the next period."""
        subscription = self.subscription(merchant, subscription_id)
        if subscription.status in ("CANCELED", "DEACTIVATED"):
            raise invalid("BAD_REQUEST", f"Subscription {subscription_id} is {subscription.status}.")
        variation = self._variation(merchant, body.get("new_plan_variation_id"))
        effective = subscription.charged_through_date or subscription.start_date
        action = {
            "id": str(uuid.uuid4()),
            "type": "SWAP_PLAN",
            "effective_date": effective.isoformat(),
            "new_plan_variation_id": variation.id,
        }
        subscription.actions = [a for a in subscription.actions if a["type"] != "SWAP_PLAN"] + [action]
        subscription.touch()
        self._emit("subscription.updated", subscription)
        return subscription, [action]

    def renew(self, subscription_id: str) -> Subscription:
        """The current period ends (a test's switch): due actions are carried out, then the next period is billed."""
        subscription = self.subscriptions[subscription_id]
        for action in list(subscription.actions):
            subscription.actions.remove(action)
            if action["type"] == "SWAP_PLAN":
                subscription.plan_variation_id = action["new_plan_variation_id"]
            elif action["type"] == "CANCEL":
                subscription.status = "CANCELED"
        subscription.touch()
        if subscription.status == "CANCELED":
            self._emit("subscription.updated", subscription)
        elif subscription.status == "PENDING":
            self._start(subscription)
        elif subscription.status == "ACTIVE":
            self._emit("subscription.updated", subscription)
            self._bill(subscription)
        return subscription

    def _start(self, subscription: Subscription) -> None:
        subscription.status = "ACTIVE"
        subscription.touch()
        self._emit("subscription.updated", subscription)
        self._bill(subscription)

    def _bill(self, subscription: Subscription) -> None:
        """One period's invoice, charged at once on the card on file; the subscription is charged through the
        period's end either way (a failed charge leaves the invoice UNPAID for the seller to collect)."""
        phase = self.catalog[subscription.plan_variation_id].data["phases"][0]
        price = phase["pricing"]["price_money"]
        period_start = subscription.charged_through_date or subscription.start_date
        subscription.charged_through_date = add_cadence(period_start, phase["cadence"])
        invoice = Invoice(
            id=f"inv:0-{square_id(26)}",
            merchant=subscription.merchant,
            subscription_id=subscription.id,
            customer_id=subscription.customer_id,
            card_id=subscription.card_id or "",
            order_id=square_id(27),
            amount=int(price["amount"]),
            currency=str(price["currency"]),
            due_date=period_start,
            invoice_number=f"{len(self.invoices) + 1:06d}",
        )
        self.invoices[invoice.id] = invoice
        subscription.invoice_ids.insert(0, invoice.id)
        subscription.touch()
        self._emit("invoice.created", invoice)
        invoice.touch()
        self._emit("invoice.published", invoice)
        if not invoice.card_id:
            return
        body = {
            "idempotency_key": str(uuid.uuid4()),
            "source_id": invoice.card_id,
            "customer_id": invoice.customer_id,
            "amount_money": {"amount": invoice.amount, "currency": invoice.currency},
            "order_id": invoice.order_id,
            "location_id": subscription.merchant.location_id,
        }
        try:
            payment = self._ledger.create_payment(subscription.merchant, body)
        except Declined:
            invoice.touch()
            self._emit("invoice.scheduled_charge_failed", invoice)
            return
        self.payment_made(payment)

    def payment_made(self, payment: Payment) -> None:
        """A completed payment on an invoice's order (its scheduled charge, or CreatePayment with its `order_id`)
        pays the invoice."""
        invoice = next((i for i in self.invoices.values() if i.order_id == payment.order_id), None)
        if invoice is None or payment.status != "COMPLETED" or invoice.status == "PAID":
            return
        invoice.paid += payment.amount
        if invoice.paid >= invoice.amount:
            invoice.status = "PAID"
        invoice.touch()
        self._emit("invoice.payment_made", invoice)

    def invoice(self, merchant: Merchant, invoice_id: str) -> Invoice:
        invoice = self.invoices.get(invoice_id)
        if invoice is None or invoice.merchant is not merchant:
            raise not_found("invoice", invoice_id)
        return invoice

    def check_order(self, merchant: Merchant, body: dict[str, Any]) -> None:
        """CreatePayment with an `order_id`: the order must exist (here: be an open invoice's) and the amount be
        what it still owes."""
        order_id = body.get("order_id")
        if order_id is None:
            return
        invoice = next((i for i in self.invoices.values() if i.order_id == order_id), None)
        if invoice is None or invoice.merchant is not merchant:
            raise not_found("order", str(order_id))
        amount = body.get("amount_money")
        owed = invoice.amount - invoice.paid
        if invoice.status == "PAID" or not isinstance(amount, dict) or amount.get("amount") != owed:
            raise invalid("BAD_REQUEST", f"The payment amount must match the order's amount due ({owed}).")


def _date(value: object, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise invalid("INVALID_DATE", "The date is not in YYYY-MM-DD format.", field=name) from None
