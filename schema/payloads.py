"""Turning a use-case outcome into a mutation payload: the order and payment it names, as the use case
committed them or else read again."""

from __future__ import annotations

from db.models import Order, Payment, Refund
from resolvers.outcome import Outcome
from schema.errors import user_errors
from schema.types import NextAction, OrderType, PaymentPayload, PaymentType, RefundPayload, RefundType


async def payment_payload(outcome: Outcome) -> PaymentPayload:
    order = outcome.committed_order
    if order is None and outcome.order_id:
        order = await Order.get_or_none(id=outcome.order_id)
    payment = outcome.committed_payment
    if payment is None and outcome.payment_id:
        payment = await Payment.get_or_none(id=outcome.payment_id)
    return PaymentPayload(
        order=OrderType.from_model(order) if order else None,
        payment=PaymentType.from_model(payment) if payment else None,
        next_action=NextAction.from_json(outcome.next_action),
        user_errors=user_errors(outcome.errors),
    )


async def refund_payload(outcome: Outcome) -> RefundPayload:
    payment_payload_ = await payment_payload(outcome)
    refund = await Refund.get_or_none(id=outcome.refund_id) if outcome.refund_id else None
    return RefundPayload(
        refund=RefundType.from_model(refund) if refund else None,
        payment=payment_payload_.payment,
        order=payment_payload_.order,
        user_errors=payment_payload_.user_errors,
    )
