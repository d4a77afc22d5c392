"""After the campaign: stop the faults, bring every process back, let reconciliation settle what is in
flight, then check what must hold whatever happened. Each check answers the violations it found (none is
success), read straight from the campaign's database, the sandbox processors' own state and the mailbox."""

from __future__ import annotations

import asyncio
import email
import sqlite3
import time
from collections import Counter
from email import policy
from typing import Any

import asyncpg

from gateways.sandbox.processor import SandboxProcessor
from tests.chaos.campaign import Figures, Shoppers
from tests.chaos.stack import GATEWAYS, Stack
from tests.processes import cli

IN_FLIGHT = ("PENDING", "PROCESSING")
SETTLE_SECONDS = 240.0


async def rows(stack: Stack, sql: str) -> list[dict[str, Any]]:
    """The campaign database's rows for `sql` (no parameters; the same SQL runs on both backends)."""
    url = stack.backend.database_url
    if stack.on_servers:
        connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        try:
            return [dict(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    def read() -> list[dict[str, Any]]:
        with sqlite3.connect(url.removeprefix("sqlite://"), timeout=30) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(sql).fetchall()]

    return await asyncio.to_thread(read)


async def stop_faults(stack: Stack, shoppers: Shoppers) -> None:
    await stack.revive()
    for instance in stack.instances:
        for gateway in GATEWAYS:
            for path, body, method in (
                (f"/{gateway}/faults", None, "DELETE"),
                (f"/{gateway}/webhooks/switches", {"release": True}, "POST"),
                (f"/{gateway}/webhooks/switches", None, "DELETE"),
            ):
                await shoppers.client.request(
                    method, f"{instance.url}{path}", json=body, headers=shoppers.staff_headers()
                )


async def settle(stack: Stack, shoppers: Shoppers) -> dict[str, int]:
    """Faults off, every process up, then reconciliation until nothing is in flight; what was left when
    settling stopped (all zero when it settled)."""
    await stop_faults(stack, shoppers)
    env = stack.env | {"PAYQL_ORPHAN_AGE_SECONDS": "0"}
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        await cli(env, "reconcile", check=False)
        left = await unsettled(stack)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        await asyncio.sleep(1)


async def unsettled(stack: Stack) -> dict[str, int]:
    in_flight = await rows(stack, "SELECT count(*) AS n FROM payments WHERE status IN ('PENDING', 'PROCESSING')")
    refunds = await rows(stack, "SELECT count(*) AS n FROM refunds WHERE status = 'PENDING'")
    outbox = await rows(stack, "SELECT count(*) AS n FROM outbox_messages WHERE status <> 'SENT'")
    webhooks = await rows(stack, "SELECT count(*) AS n FROM webhook_events WHERE status IN ('RECEIVED', 'FAILED')")
    return {
        "payments_in_flight": int(in_flight[0]["n"]),
        "refunds_pending": int(refunds[0]["n"]),
        "emails_unsent": int(outbox[0]["n"]),
        "webhooks_unprocessed": int(webhooks[0]["n"]),
    }


async def violations(stack: Stack, figures: Figures, left: dict[str, int]) -> list[str]:
    found = [f"not settled after {SETTLE_SECONDS:g} s: {name}={count}" for name, count in left.items() if count]
    found += await one_success_per_order(stack)
    found += await charged_once_at_the_gateways(stack)
    found += await ledger_balances(stack)
    found += await orders_final_or_open(stack)
    found += await refunds_within_captures(stack)
    found += await one_paid_invoice_per_period(stack)
    found += await one_receipt_per_paid_order(stack)
    found += [f"a shopper got a server error: {error}" for error in figures.server_errors]
    found += [f"no instance answered {query} after every resend" for query in figures.unanswered]
    return found


async def one_success_per_order(stack: Stack) -> list[str]:
    succeeded = await rows(
        stack,
        "SELECT order_id, count(*) AS n FROM payments WHERE amount_captured > 0 OR status = 'AUTHORIZED'"
        " GROUP BY order_id HAVING count(*) > 1",
    )
    return [
        f"order {row['order_id']} has {row['n']} successful payments: {await payments_of(stack, row['order_id'])}"
        for row in succeeded
    ]


async def payments_of(stack: Stack, order_id: object) -> list[dict[str, Any]]:
    """What a violation's replay starts from: the order's payments, oldest first."""
    return await rows(
        stack,
        "SELECT gateway, status, decline_code, failure_message, created_at FROM payments"
        f" WHERE order_id = '{order_id}' ORDER BY created_at",
    )


async def charged_once_at_the_gateways(stack: Stack) -> list[str]:
    """Across both sandbox processors (their own state, not ours): at most one charge per order."""
    charges: Counter[str] = Counter()
    for gateway in GATEWAYS:
        processor = SandboxProcessor(state_path=stack.state_path(gateway))
        await processor.open()
        try:
            for intent in await processor.list_payment_intents():
                if intent.amount_received:
                    charges[intent.metadata.get("payql_order_id", intent.id)] += 1
        finally:
            await processor.aclose()
    return [f"order {order} was charged {n} times at the gateways" for order, n in charges.items() if n > 1]


async def ledger_balances(stack: Stack) -> list[str]:
    checked = await cli(stack.env, "audit", "check-ledger", check=False)
    return [] if checked.returncode == 0 else [f"payql audit check-ledger: {checked.stdout.strip()}"]


async def orders_final_or_open(stack: Stack) -> list[str]:
    """Final, or PENDING with nothing in flight (a declined order the shopper may still pay)."""
    stuck = await rows(
        stack,
        "SELECT o.id, o.status FROM orders o WHERE o.status IN ('PROCESSING', 'REQUIRES_ACTION')"
        " OR (o.status = 'PENDING' AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id"
        " AND p.status NOT IN ('FAILED', 'CANCELED')))",
    )
    return [f"order {row['id']} is left {row['status']}" for row in stuck]


async def one_paid_invoice_per_period(stack: Stack) -> list[str]:
    """A renewal is billed once: at most one paid invoice per subscription and period, and a paid invoice's
    order is paid (its payment is an ordinary payment, held to the other invariants)."""
    twice = await rows(
        stack,
        "SELECT subscription_id, period_start, count(*) AS n FROM invoices WHERE status = 'PAID'"
        " GROUP BY subscription_id, period_start HAVING count(*) > 1",
    )
    found = [f"subscription {row['subscription_id']} paid {row['n']} invoices for one period" for row in twice]
    unpaid = await rows(
        stack,
        "SELECT i.id, o.status FROM invoices i JOIN orders o ON o.id = i.order_id"
        " WHERE i.status = 'PAID' AND o.status NOT IN ('PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'DISPUTED')",
    )
    found += [f"invoice {row['id']} is paid but its order is {row['status']}" for row in unpaid]
    return found


async def refunds_within_captures(stack: Stack) -> list[str]:
    over = await rows(
        stack,
        "SELECT p.id, p.amount_captured, p.amount_refunded,"
        " (SELECT coalesce(sum(r.amount), 0) FROM refunds r WHERE r.payment_id = p.id"
        "  AND r.status IN ('PENDING', 'SUCCEEDED')) AS asked"
        " FROM payments p",
    )
    return [
        f"payment {row['id']} refunded {row['amount_refunded']} (refunds {row['asked']}) of {row['amount_captured']}"
        for row in over
        if row["amount_refunded"] > row["amount_captured"] or row["asked"] > row["amount_captured"]
    ]


async def one_receipt_per_paid_order(stack: Stack) -> list[str]:
    """Every order that was ever paid has one receipt in the mailbox (one file per Message-ID: a resend of
    the same message replaces its file), and no other order has one."""
    paid = await rows(stack, "SELECT DISTINCT order_id FROM payments WHERE amount_captured > 0")
    expected = {str(row["order_id"])[:8].upper() for row in paid}
    receipts: Counter[str] = Counter()
    for path in stack.mailbox.glob("*.eml") if stack.mailbox.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        subject = str(message["Subject"] or "")
        if subject.startswith("Your receipt for order "):
            receipts[subject.rsplit(" ", 1)[-1]] += 1
    found = [f"order {order} has {n} receipts" for order, n in receipts.items() if n > 1]
    found += [f"order {order} was paid and got no receipt" for order in sorted(expected - set(receipts))]
    found += [f"order {order} got a receipt but was never paid" for order in sorted(set(receipts) - expected)]
    return found


async def failovers(stack: Stack) -> int:
    """Payments made on another gateway after an earlier payment of the same order failed on its gateway:
    each is a failover the routing policy took (an explicit choice is never re-routed)."""
    found = await rows(
        stack,
        "SELECT count(*) AS n FROM payments p WHERE EXISTS (SELECT 1 FROM payments q WHERE q.order_id = p.order_id"
        " AND q.gateway <> p.gateway AND q.status = 'FAILED' AND q.created_at < p.created_at)",
    )
    return int(found[0]["n"])
