"""Mutation fields: thin adapters from inputs to the use cases in `resolvers`."""

from __future__ import annotations

import strawberry

from domain.statuses import CaptureMethod
from resolvers import payments, refunds
from resolvers.charging import PaymentChoice
from resolvers.checkout import CartItem, CheckoutRequest, checkout
from schema.inputs import (
    CancelOrderInput,
    CancelPaymentInput,
    CapturePaymentInput,
    CheckoutInput,
    CompletePaymentInput,
    PayOrderInput,
    RefundPaymentInput,
)
from schema.payloads import payment_payload, refund_payload
from schema.types import GraphQLInfo, PaymentPayload, RefundPayload


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an order from catalog prices and pay it.")
    async def checkout(self, info: GraphQLInfo, input: CheckoutInput) -> PaymentPayload:
        request = CheckoutRequest(
            items=[CartItem(str(item.price_id), item.quantity) for item in input.items],
            choice=PaymentChoice(
                input.gateway, input.payment_method, CaptureMethod(input.capture_method), input.hosted_checkout
            ),
            idempotency_key=input.idempotency_key,
            return_url=input.return_url,
        )
        outcome = await checkout(info.context.deps, info.context.caller, request)
        return await payment_payload(outcome)

    @strawberry.mutation(description="Pay an existing unpaid order again, e.g. with another card.")
    async def pay_order(self, info: GraphQLInfo, input: PayOrderInput) -> PaymentPayload:
        request = payments.PayOrderRequest(
            order_id=str(input.order_id),
            choice=PaymentChoice(
                input.gateway, input.payment_method, CaptureMethod(input.capture_method), input.hosted_checkout
            ),
            idempotency_key=input.idempotency_key,
        )
        return await payment_payload(await payments.pay_order(info.context.deps, info.context.caller, request))

    @strawberry.mutation(description="Staff only: capture all or part of an authorized payment.")
    async def capture_payment(self, info: GraphQLInfo, input: CapturePaymentInput) -> PaymentPayload:
        outcome = await payments.capture_payment(
            info.context.deps,
            info.context.caller,
            str(input.payment_id),
            int(input.amount) if input.amount is not None else None,
            input.idempotency_key,
        )
        return await payment_payload(outcome)

    @strawberry.mutation(description="Staff only: void an authorized, uncaptured payment.")
    async def cancel_payment(self, info: GraphQLInfo, input: CancelPaymentInput) -> PaymentPayload:
        outcome = await payments.cancel_payment(
            info.context.deps, info.context.caller, str(input.payment_id), input.idempotency_key
        )
        return await payment_payload(outcome)

    @strawberry.mutation(
        description="Ask the gateway for the payment's state after a customer action (e.g. 3-D Secure)."
    )
    async def complete_payment(self, info: GraphQLInfo, input: CompletePaymentInput) -> PaymentPayload:
        returned = [(value.name, value.value) for value in input.returned]
        outcome = await payments.complete_payment(
            info.context.deps, info.context.caller, str(input.payment_id), returned
        )
        return await payment_payload(outcome)

    @strawberry.mutation(
        description="Staff only: refund a captured payment (all that is left when no amount); "
        "an uncaptured authorization is voided instead."
    )
    async def refund_payment(self, info: GraphQLInfo, input: RefundPaymentInput) -> RefundPayload:
        outcome = await refunds.refund_payment(
            info.context.deps,
            info.context.caller,
            str(input.payment_id),
            int(input.amount) if input.amount is not None else None,
            input.reason,
            input.idempotency_key,
        )
        return await refund_payload(outcome)

    @strawberry.mutation(description="Staff only: cancel an order, refunding or voiding what was paid.")
    async def cancel_order(self, info: GraphQLInfo, input: CancelOrderInput) -> RefundPayload:
        outcome = await refunds.cancel_order(
            info.context.deps, info.context.caller, str(input.order_id), input.reason, input.idempotency_key
        )
        return await refund_payload(outcome)
