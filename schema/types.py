"""GraphQL object types, built from models; lists of children come through per-request DataLoaders."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry.types import Info

from db.models import (
    AuditRecord,
    EventSource,
    LineItem,
    Order,
    Payment,
    PaymentEvent,
    PaymentEventType,
    Price,
    PriceType,
    Product,
    RecurringInterval,
    Refund,
)
from domain.money import Money as DomainMoney
from domain.statuses import CaptureMethod, NextActionType, OrderStatus, PaymentStatus, RefundStatus
from resolvers import ledger
from resolvers.errors import ErrorCode
from schema.context import GraphQLContext
from schema.errors import PublicErrors
from schema.scalars import MinorUnits

OrderStatusEnum = strawberry.enum(OrderStatus, name="OrderStatus")
PaymentStatusEnum = strawberry.enum(PaymentStatus, name="PaymentStatus")
CaptureMethodEnum = strawberry.enum(CaptureMethod, name="CaptureMethod")
NextActionTypeEnum = strawberry.enum(NextActionType, name="NextActionType")
ErrorCodeEnum = strawberry.enum(ErrorCode, name="ErrorCode")
RefundStatusEnum = strawberry.enum(RefundStatus, name="RefundStatus")
PriceTypeEnum = strawberry.enum(PriceType, name="PriceType")
RecurringIntervalEnum = strawberry.enum(RecurringInterval, name="RecurringInterval")
LedgerEventTypeEnum = strawberry.enum(PaymentEventType, name="LedgerEventType")
LedgerEventSourceEnum = strawberry.enum(EventSource, name="LedgerEventSource")

GraphQLInfo = Info[GraphQLContext, None]


@strawberry.type(description="An exact amount: integer minor units plus an ISO-4217 currency.")
class Money:
    amount: MinorUnits
    currency: str
    exponent: int = strawberry.field(description="Decimal digits of the minor unit (JPY 0, USD 2, KWD 3).")
    decimal: str = strawberry.field(description="The amount in major units as an exact decimal string.")

    @classmethod
    def of(cls, amount: int, currency: str) -> Money:
        money = DomainMoney(amount, currency)
        return cls(
            amount=MinorUnits(money.amount),
            currency=money.currency,
            exponent=money.exponent,
            decimal=money.decimal_string(),
        )


@strawberry.type
class UserError:
    code: ErrorCodeEnum  # type: ignore[valid-type]
    message: str
    field: str | None = None


@strawberry.type
class NextAction:
    type: NextActionTypeEnum  # type: ignore[valid-type]
    redirect_url: str | None = None
    client_secret: str | None = None
    gateway: str | None = strawberry.field(
        default=None, description="COLLECT_PAYMENT_METHOD: the gateway to tokenize on (see paymentOptions)."
    )

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> NextAction | None:
        if not data:
            return None
        return cls(
            type=NextActionType(data["type"]),
            redirect_url=data.get("redirect_url"),
            client_secret=data.get("client_secret"),
            gateway=data.get("gateway"),
        )


@strawberry.type(name="Price")
class PriceType_:
    id: strawberry.ID
    product_id: strawberry.ID
    lookup_key: str | None
    unit_amount: Money
    type: PriceTypeEnum  # type: ignore[valid-type]
    recurring_interval: RecurringIntervalEnum | None  # type: ignore[valid-type]
    recurring_interval_count: int
    metered: bool = strawberry.field(description="Recurring and billed on reported usage, in arrears.")

    @classmethod
    def from_model(cls, price: Price) -> PriceType_:
        return cls(
            id=strawberry.ID(str(price.id)),
            product_id=strawberry.ID(str(price.product_id)),
            lookup_key=price.lookup_key,
            unit_amount=Money.of(price.unit_amount, price.currency),
            type=price.type,
            recurring_interval=price.recurring_interval,
            recurring_interval_count=price.recurring_interval_count,
            metered=bool(price.metered),
        )


@strawberry.type(name="Product")
class ProductType:
    id: strawberry.ID
    name: str
    description: str
    prices: list[PriceType_]

    @classmethod
    def from_model(cls, product: Product) -> ProductType:
        prices = sorted(product.prices, key=lambda p: (p.currency, p.unit_amount))
        return cls(
            id=strawberry.ID(str(product.id)),
            name=product.name,
            description=product.description,
            prices=[PriceType_.from_model(p) for p in prices if p.active],
        )


@strawberry.type(name="LineItem")
class LineItemType:
    id: strawberry.ID
    price_id: strawberry.ID
    product_name: str
    quantity: int
    unit_amount: Money
    total: Money

    @classmethod
    def from_model(cls, item: LineItem) -> LineItemType:
        return cls(
            id=strawberry.ID(str(item.id)),
            price_id=strawberry.ID(str(item.price_id)),
            product_name=item.product_name,
            quantity=item.quantity,
            unit_amount=Money.of(item.unit_amount, item.currency),
            total=Money.of(item.total_amount, item.currency),
        )


@strawberry.type(name="Payment")
class PaymentType:
    id: strawberry.ID
    order_id: strawberry.ID
    gateway: str
    gateway_reference: str | None
    status: PaymentStatusEnum  # type: ignore[valid-type]
    capture_method: CaptureMethodEnum  # type: ignore[valid-type]
    amount: Money
    amount_authorized: Money
    amount_captured: Money
    amount_refunded: Money
    decline_code: str | None
    failure_message: str | None
    next_action: NextAction | None
    created_at: datetime
    payment_uuid: strawberry.Private[UUID]

    @strawberry.field(description="The payment's refunds, oldest first.")
    async def refunds(self, info: GraphQLInfo) -> list[RefundType]:
        return [RefundType.from_model(refund) for refund in await info.context.loaders.refunds.load(self.payment_uuid)]

    @strawberry.field(
        description=(
            "Staff only: the payment's append-only ledger, oldest first. Null, with a FORBIDDEN error, for anyone else."
        ),
        extensions=[PublicErrors()],
    )
    async def ledger_events(self, info: GraphQLInfo) -> list[LedgerEventRow] | None:
        events = await ledger.payment_ledger(info.context.caller, self.payment_uuid, info.context.loaders.ledger.load)
        return [LedgerEventRow.from_model(event) for event in events]

    @classmethod
    def from_model(cls, payment: Payment) -> PaymentType:
        currency = payment.currency
        return cls(
            id=strawberry.ID(str(payment.id)),
            order_id=strawberry.ID(str(payment.order_id)),
            gateway=payment.gateway,
            gateway_reference=payment.gateway_reference,
            status=payment.status,
            capture_method=payment.capture_method,
            amount=Money.of(payment.amount, currency),
            amount_authorized=Money.of(payment.amount_authorized, currency),
            amount_captured=Money.of(payment.amount_captured, currency),
            amount_refunded=Money.of(payment.amount_refunded, currency),
            decline_code=payment.decline_code,
            failure_message=payment.failure_message,
            next_action=NextAction.from_json(payment.next_action),
            created_at=payment.created_at,
            payment_uuid=payment.id,
        )


@strawberry.type(
    name="LedgerEvent", description="One row of a payment's ledger: what happened to its money or status, once."
)
class LedgerEventRow:
    id: strawberry.ID
    created_at: datetime
    type: LedgerEventTypeEnum  # type: ignore[valid-type]
    source: LedgerEventSourceEnum  # type: ignore[valid-type]
    payment_id: strawberry.ID
    refund_id: strawberry.ID | None = strawberry.field(description="The refund a REFUNDED or REFUND_REVERSED event is.")
    dispute_id: strawberry.ID | None = strawberry.field(description="The dispute a DISPUTE_* event is.")
    status_before: PaymentStatusEnum | None  # type: ignore[valid-type]
    status_after: PaymentStatusEnum  # type: ignore[valid-type]
    amount: Money

    @classmethod
    def from_model(cls, event: PaymentEvent) -> LedgerEventRow:
        data = event.data if isinstance(event.data, dict) else {}
        refund_id, dispute_id = data.get("refund_id"), data.get("dispute_id")
        return cls(
            id=strawberry.ID(str(event.id)),
            created_at=event.created_at,
            type=event.type,
            source=event.source,
            payment_id=strawberry.ID(str(event.payment_id)),
            refund_id=strawberry.ID(str(refund_id)) if refund_id else None,
            dispute_id=strawberry.ID(str(dispute_id)) if dispute_id else None,
            status_before=event.status_before,
            status_after=event.status_after,
            amount=Money.of(event.amount, event.currency),
        )


@strawberry.type(name="Order")
class OrderType:
    id: strawberry.ID
    status: OrderStatusEnum  # type: ignore[valid-type]
    total: Money
    created_at: datetime
    updated_at: datetime
    order_id: strawberry.Private[UUID]

    @strawberry.field
    async def line_items(self, info: GraphQLInfo) -> list[LineItemType]:
        items = await info.context.loaders.line_items.load(self.order_id)
        return [LineItemType.from_model(item) for item in items]

    @strawberry.field
    async def payments(self, info: GraphQLInfo) -> list[PaymentType]:
        payments = await info.context.loaders.payments.load(self.order_id)
        return [PaymentType.from_model(payment) for payment in payments]

    @classmethod
    def from_model(cls, order: Order) -> OrderType:
        return cls(
            id=strawberry.ID(str(order.id)),
            status=order.status,
            total=Money.of(order.total_amount, order.currency),
            created_at=order.created_at,
            updated_at=order.updated_at,
            order_id=order.id,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class OrderEdge:
    cursor: str
    node: OrderType


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo


@strawberry.type(description="The result of a money-moving mutation.")
class PaymentPayload:
    order: OrderType | None
    payment: PaymentType | None
    next_action: NextAction | None
    user_errors: list[UserError]


@strawberry.type(name="Refund")
class RefundType:
    id: strawberry.ID
    payment_id: strawberry.ID
    status: RefundStatusEnum  # type: ignore[valid-type]
    amount: Money
    reason: str
    failure_reason: str | None
    gateway_reference: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, refund: Refund) -> RefundType:
        return cls(
            id=strawberry.ID(str(refund.id)),
            payment_id=strawberry.ID(str(refund.payment_id)),
            status=refund.status,
            amount=Money.of(refund.amount, refund.currency),
            reason=refund.reason,
            failure_reason=refund.failure_reason,
            gateway_reference=refund.gateway_reference,
            created_at=refund.created_at,
        )


@strawberry.type(description="The result of a refund or an order cancellation.")
class RefundPayload:
    refund: RefundType | None
    payment: PaymentType | None
    order: OrderType | None
    user_errors: list[UserError]


@strawberry.type(name="AuditRecord", description="Who did what to which entity, when and why (append-only).")
class AuditRecordType:
    id: strawberry.ID
    created_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    status_before: str | None
    status_after: str | None
    amount: Money | None
    reason: str
    request_id: str | None
    source_ip: str | None

    @classmethod
    def from_model(cls, record: AuditRecord) -> AuditRecordType:
        amount = Money.of(record.amount, record.currency) if record.amount is not None and record.currency else None
        return cls(
            id=strawberry.ID(str(record.id)),
            created_at=record.created_at,
            actor=record.actor,
            action=record.action,
            entity_type=record.entity_type,
            entity_id=record.entity_id,
            status_before=record.status_before,
            status_after=record.status_after,
            amount=amount,
            reason=record.reason,
            request_id=record.request_id,
            source_ip=record.source_ip,
        )
