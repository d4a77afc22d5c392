"""The checkout floor: a bare Starlette + asyncpg endpoint running the statements a PayQL checkout
runs (read from PayQL's statement log: 19 statements, two transactions and the autocommit ones
around them), on the same PostgreSQL database, over one pooled connection per request; then, after
the response, the 5 statements of its receipt (`receipt`), as PayQL's in-process job runs them for the
benchmark's shopper, who has an email address (or, with FLOOR_RECEIPT_QUEUE and FLOOR_REDIS_URL set,
in `bench.checkout_floor_worker`, as PayQL's run in `payql worker`). `POST /checkout/answered` is the
same request answered with none of that work (`checkout_answered`). When the checkout's statements change, this list
follows, so that the ratio measures PayQL's overhead on the same database work.

What it leaves out is what PayQL adds on top of the same database work: GraphQL, authentication,
the ORM, encryption of personal data, rate limits, the gateway call (the sandbox), the after-commit
publish and enqueue, and the receipt's rendering and writing to the mailbox. `bench.checkout` runs
it with uvicorn in a process of its own:

  FLOOR_DATABASE_URL  postgresql://… of the benchmark's database
  FLOOR_CUSTOMER      the external id of a customer PayQL already made
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.floor_pool import open_floor_pool

PAYMENT_COLUMNS = (
    "capture_method, gateway, order_id, status, amount_authorized, updated_at, next_action, amount, failure_message,"
    " id, payment_method, idempotency_key, currency, amount_captured, amount_refunded, decline_code,"
    " gateway_reference, created_at"
)
PAYMENTS_OF_ORDER = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1"  # noqa: S608 - constants only
PAYMENTS_OF_ORDER_FOR_UPDATE = f"{PAYMENTS_OF_ORDER} FOR UPDATE"
ORDER_OF_PAYMENT_FOR_UPDATE = (
    "SELECT checkout_user_agent, status, updated_at, customer_id, return_url, id, total_amount, currency, created_at"
    " FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1) FOR UPDATE"
)
# The receipt's statements as PayQL runs them (notifications/dispatch.py, notifications/templates.py).
RECEIPT_CLAIM = (
    "UPDATE outbox_messages SET attempts = attempts + 1, next_attempt_at = $3 WHERE id = $1"
    " AND status NOT IN ('SENT', 'DEAD') AND (next_attempt_at IS NULL OR next_attempt_at <= $2) AND attempts < $4"
    " RETURNING id, kind, dedupe_key, payload, attempts"
)
RECEIPT_ORDER = (
    'SELECT "orders"."id", "orders"."status", "orders"."currency", "orders"."total_amount", "orders"."return_url",'
    ' "orders"."checkout_ip", "orders"."checkout_user_agent", "orders"."created_at", "orders"."updated_at",'
    ' "orders"."customer_id", "customers"."id" AS "customer.id", "customers"."external_id" AS "customer.external_id",'
    ' "customers"."email" AS "customer.email", "customers"."email_index" AS "customer.email_index",'
    ' "customers"."gateway_references" AS "customer.gateway_references",'
    ' "customers"."created_at" AS "customer.created_at" FROM "orders"'
    ' JOIN "customers" ON "customers"."id" = "orders"."customer_id" WHERE "orders"."id" = $1'
)
RECEIPT_LINES = (
    'SELECT "line_items"."id", "line_items"."product_name", "line_items"."quantity", "line_items"."currency",'
    ' "line_items"."unit_amount", "line_items"."total_amount", "line_items"."order_id", "line_items"."price_id"'
    ' FROM "line_items" WHERE order_id = $1 ORDER BY product_name, id'
)
RECEIPT_PAYMENT = (
    f"SELECT {PAYMENT_COLUMNS} FROM payments"  # noqa: S608 - constants only
    " WHERE order_id = $1 AND amount_captured > 0 ORDER BY created_at DESC, id DESC LIMIT 1"
)
RECEIPT_FINISH = (
    "UPDATE outbox_messages SET status = $2, next_attempt_at = $3, sent_at = COALESCE($4, sent_at),"
    " last_error = COALESCE($5, last_error) WHERE id = $1 AND status NOT IN ('SENT', 'DEAD')"
    " AND ($2 = 'SENT' OR attempts = $6)"
)
AUDIT_COLUMNS = (
    "actor, action, entity_type, entity_id, status_before, status_after, amount, currency, reason, request_id,"
    " source_ip, data, created_at"
)
# A row of an audit INSERT's parameters: a transaction's audit records are written in one statement as
# it ends, as PayQL does (`db.row_inserts`).
AuditRow = tuple[str, str, str, str, str | None, str, int, str, str, datetime]
_AUDIT_WIDTH = 10


@lru_cache
def audit_insert(rows: int) -> str:
    values = ", ".join(
        "({}, '', ${}, NULL, '{{}}', ${})".format(
            ", ".join(f"${row * _AUDIT_WIDTH + n}" for n in range(1, 9)),
            row * _AUDIT_WIDTH + 9,
            row * _AUDIT_WIDTH + 10,
        )
        for row in range(rows)
    )
    return f"INSERT INTO audit_records ({AUDIT_COLUMNS}) VALUES {values}"  # noqa: S608 - constants only


async def write_audits(db: asyncpg.Connection, audits: list[AuditRow]) -> None:
    await db.execute(audit_insert(len(audits)), *(value for row in audits for value in row))


state: dict[str, asyncpg.Pool] = {}
receipts: set[asyncio.Task[None]] = set()
# With FLOOR_RECEIPT_QUEUE set, receipts go to a worker (`bench.checkout_floor_worker`) as PayQL's go
# to `payql worker`: the message and order ids pushed on this Redis list before the response.
queue: dict[str, Redis] = {}


async def checkout(request: Request) -> JSONResponse:
    body = await request.json()
    price_id, key = uuid.UUID(body["priceId"]), body["idempotencyKey"]
    customer_external_id = os.environ["FLOOR_CUSTOMER"]
    actor, request_id = f"customer:{customer_external_id}", uuid.uuid4().hex
    now = datetime.now(UTC)
    order_id, payment_id, line_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with state["pool"].acquire() as db:
        claim = await db.fetchval(
            "INSERT INTO idempotency_records (scope, key, request_hash, state, response, recovery_point, locked_until,"
            " expires_at, created_at) VALUES ($1, $2, $3, 'IN_PROGRESS', NULL, '', $4, $5, $6)"
            " ON CONFLICT DO NOTHING RETURNING id",
            f"{actor}:checkout",
            key,
            "0" * 64,
            now + timedelta(seconds=30),
            now + timedelta(days=1),
            now,
        )
        price = await db.fetchrow(
            "SELECT prices.id, prices.currency, prices.unit_amount, products.name FROM prices"
            " LEFT OUTER JOIN products ON products.id = prices.product_id WHERE prices.id IN ($1) AND prices.active",
            price_id,
        )
        customer = await db.fetchrow(
            "SELECT email_index, gateway_references, id, external_id, email, created_at FROM customers"
            " WHERE external_id = $1 LIMIT 2",
            customer_external_id,
        )
        amount, currency = price["unit_amount"], price["currency"]
        async with db.transaction():
            await db.execute(
                "INSERT INTO orders (id, status, currency, total_amount, return_url, checkout_ip, checkout_user_agent,"
                " created_at, updated_at, customer_id) VALUES ($1, 'PENDING', $2, $3, NULL, NULL, NULL, $4, $4, $5)",
                order_id,
                currency,
                amount,
                now,
                customer["id"],
            )
            await db.execute(
                "INSERT INTO line_items (id, product_name, quantity, currency, unit_amount, total_amount, order_id,"
                " price_id) VALUES ($1, $2, 1, $3, $4, $4, $5, $6)",
                line_id,
                price["name"],
                currency,
                amount,
                order_id,
                price_id,
            )
            await db.execute(
                "INSERT INTO payments (id, gateway, gateway_reference, idempotency_key, status, capture_method,"
                " payment_method, currency, amount, amount_authorized, amount_captured, amount_refunded, decline_code,"
                " failure_message, next_action, created_at, updated_at, order_id) VALUES ($1, 'sandbox', NULL, $2,"
                " 'PENDING', 'AUTOMATIC', 'pm_card_visa', $3, $4, 0, 0, 0, NULL, NULL, NULL, $5, $5, $6)",
                payment_id,
                f"payql-payment-{payment_id}-1",
                currency,
                amount,
                now,
                order_id,
            )
            await payment_event(db, "CREATED", "created", None, "PENDING", amount, currency, payment_id, now)
            await db.execute("UPDATE orders SET status = 'PROCESSING', updated_at = $1 WHERE id = $2", now, order_id)
            await db.execute("UPDATE idempotency_records SET recovery_point = $1 WHERE id = $2", "floor", claim)
            audits: list[AuditRow] = [
                (
                    actor,
                    "payment.created",
                    "payment",
                    str(payment_id),
                    None,
                    "PENDING",
                    amount,
                    currency,
                    request_id,
                    now,
                ),
                (
                    actor,
                    "order.processing",
                    "order",
                    str(order_id),
                    "PENDING",
                    "PROCESSING",
                    amount,
                    currency,
                    request_id,
                    now,
                ),
            ]
            await write_audits(db, audits)
        async with db.transaction():
            order = await db.fetchrow(ORDER_OF_PAYMENT_FOR_UPDATE, payment_id)
            await db.fetch(PAYMENTS_OF_ORDER_FOR_UPDATE, order["id"])
            fact = f"fact:PENDING>PAID:{amount}:{amount}:0"
            await payment_event(db, "CAPTURED", fact, "PENDING", "PAID", amount, currency, payment_id, now)
            await db.execute(
                "UPDATE payments SET status = 'PAID', amount_authorized = $1, amount_captured = $1,"
                " amount_refunded = 0, next_action = NULL, updated_at = $2, gateway_reference = $3 WHERE id = $4",
                amount,
                now,
                f"pi_floor_{payment_id.hex[:24]}",
                payment_id,
            )
            await db.fetch("SELECT id, url, event_types FROM merchant_endpoints WHERE enabled ORDER BY created_at")
            await db.execute("UPDATE orders SET status = 'PAID', updated_at = $1 WHERE id = $2", now, order_id)
            receipt_id = await db.fetchval(
                "INSERT INTO outbox_messages (kind, dedupe_key, payload, status, attempts, next_attempt_at, last_error,"
                " created_at, sent_at) VALUES ('receipt', $1, $2, 'PENDING', 0, NULL, NULL, $3, NULL)"
                " ON CONFLICT DO NOTHING RETURNING id",
                f"receipt:{order_id}",
                json.dumps({"order_id": str(order_id)}),
                now,
            )
            audits = [
                (
                    actor,
                    "payment.paid",
                    "payment",
                    str(payment_id),
                    "PENDING",
                    "PAID",
                    amount,
                    currency,
                    request_id,
                    now,
                ),
                (actor, "order.paid", "order", str(order_id), "PROCESSING", "PAID", amount, currency, request_id, now),
            ]
            await write_audits(db, audits)
        response = {"order_id": str(order_id), "payment_id": str(payment_id), "errors": []}
        await db.execute(
            "UPDATE idempotency_records SET state = 'COMPLETED', response = $1 WHERE id = $2",
            json.dumps(response),
            claim,
        )
    if queue:
        await queue["redis"].lpush(os.environ["FLOOR_RECEIPT_QUEUE"], f"{receipt_id} {order_id}")
    else:
        # Detached, as PayQL's after-commit job is: the response does not wait for it.
        task = asyncio.create_task(receipt(receipt_id, order_id))
        receipts.add(task)
        task.add_done_callback(receipts.discard)
    return JSONResponse({"order": {"id": str(order["id"]), "status": "PAID"}, "payment": {"status": "PAID"}})


async def receipt(message_id: int, order_id: uuid.UUID) -> None:
    """The receipt's statements, after the response as PayQL's in-process job runs them: claim the outbox
    message, read the order with its customer, its lines and its payment, mark the message sent. Rendering
    and writing the email is left out (it is PayQL's work on top)."""
    now = datetime.now(UTC)
    async with state["pool"].acquire() as db:
        await db.fetch(RECEIPT_CLAIM, message_id, now, now + timedelta(seconds=300), 8)
        await db.fetch(RECEIPT_ORDER, order_id)
        await db.fetch(RECEIPT_LINES, order_id)
        await db.fetch(RECEIPT_PAYMENT, order_id)
        await db.execute(RECEIPT_FINISH, message_id, "SENT", None, now, None, 1)


async def payment_event(
    db: asyncpg.Connection,
    kind: str,
    dedupe_key: str,
    before: str | None,
    after: str,
    amount: int,
    currency: str,
    payment_id: uuid.UUID,
    now: datetime,
) -> None:
    await db.fetchval(
        "INSERT INTO payment_events (type, dedupe_key, source, status_before, status_after, amount, currency, data,"
        " created_at, payment_id) VALUES ($1, $2, 'API', $3, $4, $5, $6, '{}', $7, $8) RETURNING id",
        kind,
        dedupe_key,
        before,
        after,
        amount,
        currency,
        now,
        payment_id,
    )


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    state["pool"] = await open_floor_pool(os.environ["FLOOR_DATABASE_URL"])
    if os.environ.get("FLOOR_RECEIPT_QUEUE"):
        queue["redis"] = Redis.from_url(os.environ["FLOOR_REDIS_URL"])
    try:
        yield
    finally:
        if queue:
            await queue.pop("redis").aclose()
        await state["pool"].close()


async def checkout_answered(request: Request) -> JSONResponse:
    """The floor with its work taken out, as `bench.checkout_ceiling` takes out PayQL's: the request read
    and answered as `checkout` answers it, with no statement and no receipt. `bench.checkout --ceiling`
    subtracts its cost from PayQL's served-without-work cost: what PayQL's way of serving adds."""
    body = await request.json()
    uuid.UUID(body["priceId"])
    str(body["idempotencyKey"])
    return JSONResponse({"order": {"id": str(uuid.uuid4()), "status": "PAID"}, "payment": {"status": "PAID"}})


app = Starlette(
    routes=[
        Route("/checkout", checkout, methods=["POST"]),
        Route("/checkout/answered", checkout_answered, methods=["POST"]),
    ],
    lifespan=lifespan,
)
