"""Checkout: price a cart from our own catalog, create the order, then charge it.

Read top-down: `checkout` (idempotent by the client's key), `_create_and_charge` (the whole walk),
then the steps it takes in order; the charge itself is `resolvers.charging`.

The client never sends an amount. The order, its line items and the payment row are committed
in one transaction before the gateway is called.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from tortoise import connections

from db.create_or_read import create_or_read
from db.idempotency import Claim
from db.models import Customer, LineItem, Order, Payment, Price, PriceType
from db.new_rows import new_row
from db.one_connection import one_connection
from db.row_inserts import insert_rows
from db.row_reads import read_rows_with
from db.unit_of_work import unit_of_work
from domain.log_context import bind_log_fields
from gateways.base import PaymentGateway
from resolvers.charging import (
    PaymentChoice,
    charge_routed,
    create_payment,
    remember_payment,
    resolve_gateway,
    resume_or_charge,
    routed_gateways,
    validated_choice,
)
from resolvers.context import Caller, Deps, Principal
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.outcome import Outcome, run_idempotent

MAX_LINE_ITEMS = 50
MAX_QUANTITY = 999


@dataclass(frozen=True, slots=True)
class CartItem:
    price_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    items: list[CartItem]
    choice: PaymentChoice
    idempotency_key: str
    return_url: str | None = None

    def fingerprint(self) -> dict[str, object]:
        return {
            "items": [(item.price_id, item.quantity) for item in self.items],
            "gateway": self.choice.gateway,
            "payment_method": self.choice.payment_method,
            "capture_method": str(self.choice.capture_method),
            "return_url": self.return_url,
            **({"hosted_checkout": True} if self.choice.hosted else {}),
        }


async def checkout(deps: Deps, caller: Caller, request: CheckoutRequest) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        resumed = await resume_or_charge(claim, deps, caller)
        if resumed is not None:
            return resumed
        return await _create_and_charge(deps, caller, request, claim)

    return await run_idempotent(deps, caller, "checkout", request.idempotency_key, request.fingerprint(), handler)


async def _create_and_charge(deps: Deps, caller: Caller, request: CheckoutRequest, claim: Claim) -> Outcome:
    if request.choice.gateway is not None:
        resolve_gateway(deps, request.choice.gateway)
    return_url = validate_return_url(request.return_url, deps.policy.return_origins)
    # The reads and the order's transaction on one connection, given back before the gateway call.
    async with one_connection():
        order, payment, gateways = await _create_order(deps, caller, request, claim, return_url)
    return await charge_routed(order, payment, gateways, request.choice, caller, claim, deps.gateways)


async def _create_order(
    deps: Deps, caller: Caller, request: CheckoutRequest, claim: Claim, return_url: str | None
) -> tuple[Order, Payment, tuple[PaymentGateway, ...]]:
    """The priced order, its lines and its PENDING payment on the first routed gateway, committed."""
    currency, lines = await price_cart(request.items)
    gateways = routed_gateways(deps, currency, request.choice)
    choice = validated_choice(gateways[0], request.choice, return_url)
    customer = await customer_for(caller.require_principal())
    async with unit_of_work() as uow:
        order = new_row(
            Order,
            customer=customer,
            currency=currency,
            total_amount=sum(price.unit_amount * quantity for price, quantity in lines),
            return_url=return_url,
            checkout_ip=caller.source_ip,
            checkout_user_agent=(caller.user_agent or "")[:512] or None,
        )
        await insert_rows([order], uow.connection)
        bind_log_fields(order_id=order.id)
        uow.created_orders.add(order.id)
        await insert_rows(
            [
                new_row(
                    LineItem,
                    order_id=order.id,
                    price_id=price.id,
                    product_name=price.product.name,
                    quantity=quantity,
                    currency=price.currency,
                    unit_amount=price.unit_amount,
                    total_amount=price.unit_amount * quantity,
                )
                for price, quantity in lines
            ],
            uow.connection,
        )
        payment = await create_payment(order, choice, caller, uow, new_order=True)
        await remember_payment(claim, payment, uow)
    return order, payment, gateways


def validate_return_url(url: str | None, allowed_origins: frozenset[str]) -> str | None:
    """An absolute http(s) URL on one of the SPAs' origins; anything else would be an open redirect."""
    if url is None:
        return None
    parsed = urlsplit(url.strip())
    origin = f"{parsed.scheme}://{parsed.netloc}"
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 2000 or origin not in allowed_origins:
        raise UseCaseError(
            ErrorCode.INVALID_INPUT, "The return URL must be a page of this shop's own site.", "returnUrl"
        )
    return url.strip()


async def price_cart(items: list[CartItem]) -> tuple[str, list[tuple[Price, int]]]:
    """Look every price up in the catalog; one currency per order."""
    if not items:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "The cart is empty.", "items")
    if len(items) > MAX_LINE_ITEMS:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"At most {MAX_LINE_ITEMS} lines per order.", "items")
    price_ids: list[uuid.UUID] = []
    for index, item in enumerate(items):
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise UseCaseError(
                ErrorCode.INVALID_INPUT, f"Quantity must be 1 to {MAX_QUANTITY}.", f"items.{index}.quantity"
            )
        try:
            price_ids.append(uuid.UUID(item.price_id))
        except ValueError:
            raise UseCaseError(ErrorCode.NOT_FOUND, "No such price.", f"items.{index}.priceId") from None
    prices = {p.id: p for p in await _active_prices(price_ids)}
    lines: list[tuple[Price, int]] = []
    for index, (price_id, item) in enumerate(zip(price_ids, items, strict=True)):
        price = prices.get(price_id)
        if price is None or not price.product.active:
            raise UseCaseError(ErrorCode.NOT_FOUND, "No such price.", f"items.{index}.priceId")
        if price.type is not PriceType.ONE_TIME:
            raise UseCaseError(
                ErrorCode.INVALID_INPUT,
                "Recurring prices are bought with a subscription.",
                f"items.{index}.priceId",
            )
        lines.append((price, item.quantity))
    currencies = {price.currency for price, _ in lines}
    if len(currencies) != 1:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "All items of an order must share one currency.", "items")
    return currencies.pop(), lines


async def _active_prices(price_ids: list[uuid.UUID]) -> list[Price]:
    """The active prices among `price_ids`, each with its product, in one written-out read: every
    checkout makes it, and the ORM's `select_related` cost four times as much Python."""
    listed = ", ".join(f"${n}" for n in range(1, len(price_ids) + 1))
    where = f'"prices"."id" IN ({listed}) AND "prices"."active"'
    return await read_rows_with(Price, "product", where, list(price_ids), connections.get("default"))


async def customer_for(principal: Principal) -> Customer:
    """The caller's customer row, created on first use; the email follows the identity provider's."""
    customer = await create_or_read(Customer, {"external_id": principal.subject}, {"email": principal.email})
    if principal.email and customer.email != principal.email:
        customer.email = principal.email
        await customer.save(update_fields=["email"])
    return customer
