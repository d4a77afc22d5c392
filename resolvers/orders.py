"""Reading orders and the catalog: customers see their own orders, staff see all.

Pagination is keyset on (created_at, id), so pages stay stable while new orders arrive.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q, Subquery

from db.models import Customer, Order, Payment, Product
from domain.statuses import OrderStatus
from resolvers.context import Caller
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.payments import load_owned_order

MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[Order]
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(order: Order) -> str:
    return base64.urlsafe_b64encode(f"{order.created_at.isoformat()}|{order.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, _, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(created), uuid.UUID(order_id)
    except (ValueError, UnicodeDecodeError):
        raise UseCaseError(ErrorCode.INVALID_INPUT, "Invalid cursor.", "after") from None


async def list_products() -> list[Product]:
    return await Product.filter(active=True).order_by("name").prefetch_related("prices")


async def get_order(caller: Caller, order_id: str) -> Order:
    return await load_owned_order(caller, order_id)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What staff search orders by; a customer sees only their own orders and filters by status and date."""

    status: OrderStatus | None = None
    customer: str | None = None  # the customer's subject (`sub`)
    email: str | None = None
    gateway: str | None = None  # orders with a payment on this gateway
    created_after: datetime | None = None
    created_before: datetime | None = None


async def list_orders(caller: Caller, first: int, after: str | None, search: OrderFilter) -> OrderPage:
    principal = caller.require_principal()
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"first must be 1 to {MAX_PAGE_SIZE}.", "first")
    staff_only = {"customer": search.customer, "email": search.email, "gateway": search.gateway}
    if not principal.is_admin and any(value is not None for value in staff_only.values()):
        field = next(name for name, value in staff_only.items() if value is not None)
        raise UseCaseError(ErrorCode.FORBIDDEN, "Only staff search orders by customer, email or gateway.", field)
    query = Order.all()
    if not principal.is_admin:
        query = query.filter(customer__external_id=principal.subject)
    if search.status is not None:
        query = query.filter(status=search.status)
    if search.customer is not None:
        query = query.filter(customer__external_id=search.customer)
    if search.email is not None:
        # The email column is sealed: customers are found by its blind index.
        query = query.filter(customer_id__in=Subquery(Customer.with_email(search.email).values("id")))
    if search.gateway is not None:
        query = query.filter(id__in=Subquery(Payment.filter(gateway=search.gateway).values("order_id")))
    if search.created_after is not None:
        query = query.filter(created_at__gte=search.created_after)
    if search.created_before is not None:
        query = query.filter(created_at__lt=search.created_before)
    if after:
        created_at, order_id = decode_cursor(after)
        query = query.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=order_id))
    rows = await query.order_by("-created_at", "-id").limit(first + 1)
    page = rows[:first]
    return OrderPage(page, len(rows) > first, encode_cursor(page[-1]) if page else None)
