"""The campaign's operations and faults: a seeded random mix of checkouts (some sent twice at once),
payOrders after declines and staff refunds (some racing each other), with gateway, webhook, process, Redis
and PostgreSQL faults injected between waves. Shoppers behave like a careful SPA: a request that got no answer
(its instance died) is sent again, with the same idempotency key, to an instance that is up."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.stack import BACKUP, GATEWAYS, PRIMARY, Stack
from tests.testkit import CHECKOUT, PAY_ORDER, token_for

REFUND = (
    "mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {"
    " refund { id status amount { amount } } userErrors { code message } } }"
)
PRICES = (
    "{ products { prices { id type metered recurringInterval recurringIntervalCount"
    " unitAmount { amount currency } } } }"
)
SUBSCRIBE = (
    "mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) {"
    " subscription { id status } userErrors { code message } } }"
)
ADVANCE_CLOCK = "mutation($id: ID!, $seconds: Int!) { advanceClock(subscriptionId: $id, seconds: $seconds) { now } }"
# A renewal: past the end of a monthly period.
A_MONTH_AND_A_DAY = 32 * 24 * 3600
STAFF = "chaos-staff"
# How often a request without an answer is sent, and how long it may wait for an instance to be up, before
# the campaign counts it as unanswered.
MAX_SENDS = 12
WAIT_FOR_AN_INSTANCE_SECONDS = 120.0


@dataclass
class Figures:
    operations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    checkout_seconds: list[float] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    resent: int = 0
    told_to_retry: int = 0


@dataclass
class Ledger:
    """What the shoppers saw: orders by status, for the next operations to pick from."""

    declined: list[str] = field(default_factory=list)
    paid_payments: list[tuple[str, int]] = field(default_factory=list)
    owner: dict[str, str] = field(default_factory=dict)
    subscriptions: list[str] = field(default_factory=list)


class Shoppers:
    def __init__(self, stack: Stack, rng: random.Random, figures: Figures) -> None:
        self.stack = stack
        self.rng = rng
        self.figures = figures
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def post(self, subject: str, query: str, variables: dict[str, Any], *, admin: bool = False) -> Any:
        """The answer's `data`, after sending again (same body, same key) while no instance answered."""
        body = {"query": query, "variables": variables}
        headers = {"authorization": f"Bearer {token_for(subject, admin=admin)}"}
        sends = 0
        deadline = time.monotonic() + WAIT_FOR_AN_INSTANCE_SECONDS
        while sends < MAX_SENDS and time.monotonic() < deadline:
            urls = self.stack.live_urls()
            if not urls:
                # Every instance is down (the embedded backend's one is restarting): wait, as a load balancer would.
                await asyncio.sleep(0.2)
                continue
            url = self.rng.choice(urls)
            sends += 1
            try:
                response = await self.client.post(f"{url}/graphql", json=body, headers=headers)
            except httpx.TransportError:
                self.figures.resent += 1
                await asyncio.sleep(min(0.1 * 2**sends, 2))
                continue
            if response.status_code >= 500:
                self.figures.server_errors.append(f"{response.status_code} {response.text[:300]}")
                await asyncio.sleep(min(0.1 * 2**sends, 2))
                continue
            if response.status_code == 429:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            payload = response.json()
            errors = payload.get("errors") or []
            if errors and all(error.get("extensions", {}).get("code") == "RATE_LIMITED" for error in errors):
                # "Busy, retry shortly": what a careful SPA does is wait Retry-After and send it again.
                self.figures.told_to_retry += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if errors:
                self.figures.server_errors.append(f"GraphQL errors: {errors}")
            return payload.get("data")
        self.figures.unanswered.append(query.split("{")[1].split("(")[0].strip() if "{" in query else query)
        return None

    def staff_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {token_for(STAFF, admin=True)}"}

    async def staff_call(
        self, path: str, body: dict[str, Any] | None, method: str = "POST", *, url: str | None = None
    ) -> None:
        """A sandbox switch (faults, webhooks) on `url`, or on one live instance; a dead one is skipped."""
        urls = self.stack.live_urls()
        if not urls:
            return
        # A switch sent to an instance that is being killed is lost, as it would be in production.
        with contextlib.suppress(httpx.TransportError):
            target = url or self.rng.choice(urls)
            await self.client.request(method, f"{target}{path}", json=body, headers=self.staff_headers())


class Campaign:
    def __init__(self, stack: Stack, *, seed: int, operations: int, concurrency: int, fault_rate: float) -> None:
        self.stack = stack
        self.rng = random.Random(seed)
        self.operations = operations
        self.concurrency = concurrency
        self.fault_rate = fault_rate
        self.figures = Figures()
        self.seen = Ledger()
        self.shoppers = Shoppers(stack, self.rng, self.figures)
        self.price_id = ""
        self.plan_id = ""
        self.dead: list[int] = []
        self.deck: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    async def run(self) -> Figures:
        prices = await self.shoppers.post("chaos-browser", PRICES, {})
        self.price_id = next(
            price["id"]
            for product in prices["products"]
            for price in product["prices"]
            if price["type"] == "ONE_TIME" and price["unitAmount"]["currency"] == "USD"
        )
        self.plan_id = next(
            price["id"]
            for product in prices["products"]
            for price in product["prices"]
            if price["type"] == "RECURRING"
            and not price["metered"]
            and price["recurringInterval"] == "MONTH"
            and price["recurringIntervalCount"] == 1
            and price["unitAmount"]["currency"] == "USD"
        )
        done = 0
        while done < self.operations:
            wave = min(self.concurrency, self.operations - done)
            work = [self.one_operation() for _ in range(wave)]
            if self.rng.random() < self.fault_rate:
                # Injected while the wave's requests are in flight: a killed instance drops them mid-way.
                work.append(self.fault_after(self.rng.uniform(0, 0.3)))
            await asyncio.gather(*work)
            done += wave
            await self.maybe_revive()
        return self.figures

    async def aclose(self) -> None:
        await self.shoppers.aclose()

    # --- operations ----------------------------------------------------------------------------------------
    async def one_operation(self) -> None:
        roll = self.rng.random()
        if roll < 0.12 and self.seen.declined:
            await self.pay_order()
        elif roll < 0.24 and self.seen.paid_payments:
            await self.refund()
        elif roll < 0.30 and len(self.seen.subscriptions) < 8:
            await self.subscribe()
        elif roll < 0.38 and self.seen.subscriptions:
            await self.renew()
        elif roll < 0.46:
            await self.checkout(twice=True)
        else:
            await self.checkout()

    async def checkout(self, *, twice: bool = False) -> None:
        self.figures.operations["checkout_twice" if twice else "checkout"] += 1
        subject = f"chaos-shopper-{self.rng.randrange(20)}"
        method = "pm_card_chargeDeclined" if self.rng.random() < 0.2 else "pm_card_visa"
        variables = {
            "input": {
                "items": [{"priceId": self.price_id, "quantity": self.rng.randint(1, 3)}],
                "paymentMethod": method,
                "idempotencyKey": f"chaos-{uuid.uuid4().hex}",
            }
        }
        started = time.perf_counter()
        copies = 2 if twice else 1
        answers = await asyncio.gather(*(self.shoppers.post(subject, CHECKOUT, variables) for _ in range(copies)))
        self.figures.checkout_seconds.append(time.perf_counter() - started)
        for answer in answers:
            self.record(answer, "checkout", subject)

    async def pay_order(self) -> None:
        self.figures.operations["pay_order"] += 1
        order_id = self.seen.declined.pop(self.rng.randrange(len(self.seen.declined)))
        subject = self.seen.owner[order_id]
        variables = {
            "input": {
                "orderId": order_id,
                "paymentMethod": "pm_card_visa",
                "idempotencyKey": f"chaos-{uuid.uuid4().hex}",
            }
        }
        self.record(await self.shoppers.post(subject, PAY_ORDER, variables), "payOrder", subject)

    async def refund(self) -> None:
        self.figures.operations["refund"] += 1
        payment_id, captured = self.rng.choice(self.seen.paid_payments)
        copies = 2 if self.rng.random() < 0.3 else 1

        async def one() -> None:
            amount = None if self.rng.random() < 0.4 else self.rng.randint(1, max(1, captured // 2))
            variables = {
                "input": {"paymentId": payment_id, "amount": amount, "idempotencyKey": f"chaos-{uuid.uuid4().hex}"}
            }
            answer = await self.shoppers.post(STAFF, REFUND, variables, admin=True)
            refunded = (answer or {}).get("refundPayment") or {}
            codes = [error["code"] for error in refunded.get("userErrors", [])]
            self.figures.outcomes[f"refund:{codes[0] if codes else 'ok'}"] += 1

        await asyncio.gather(*(one() for _ in range(copies)))

    async def subscribe(self) -> None:
        self.figures.operations["subscribe"] += 1
        subject = f"chaos-subscriber-{self.rng.randrange(1_000_000)}"
        variables = {
            "input": {
                "priceId": self.plan_id,
                "paymentMethod": "pm_card_visa",
                "idempotencyKey": f"chaos-{uuid.uuid4().hex}",
            }
        }
        answer = (await self.shoppers.post(subject, SUBSCRIBE, variables) or {}).get("createSubscription") or {}
        codes = [error["code"] for error in answer.get("userErrors", [])]
        subscription = answer.get("subscription") or {}
        self.figures.outcomes[f"createSubscription:{codes[0] if codes else subscription.get('status')}"] += 1
        if subscription.get("id"):
            self.seen.subscriptions.append(subscription["id"])

    async def renew(self) -> None:
        """Staff move the subscription's test clock past its period: the gateway bills the renewal."""
        self.figures.operations["renewal"] += 1
        subscription_id = self.rng.choice(self.seen.subscriptions)
        variables = {"id": subscription_id, "seconds": A_MONTH_AND_A_DAY}
        answer = await self.shoppers.post(STAFF, ADVANCE_CLOCK, variables, admin=True)
        self.figures.outcomes[f"renewal:{'ok' if (answer or {}).get('advanceClock') else 'none'}"] += 1

    def record(self, answer: Any, mutation: str, subject: str) -> None:
        payload = (answer or {}).get(mutation) or {}
        codes = [error["code"] for error in payload.get("userErrors", [])]
        order = payload.get("order") or {}
        payment = payload.get("payment") or {}
        status = payment.get("status") or "none"
        self.figures.outcomes[f"{mutation}:{codes[0] if codes else status}"] += 1
        if order.get("id"):
            self.seen.owner[order["id"]] = subject
        if order.get("id") and payment.get("declineCode") and order["id"] not in self.seen.declined:
            self.seen.declined.append(order["id"])
        if status == "PAID":
            self.seen.paid_payments.append((payment["id"], int(payment["amountCaptured"]["amount"])))

    # --- faults --------------------------------------------------------------------------------------------
    async def fault_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.one_fault()

    async def one_fault(self) -> None:
        """The next fault from a shuffled deck of every kind, so even a short run injects each kind once."""
        if not self.deck:
            self.deck = self.fault_kinds()
            self.rng.shuffle(self.deck)
        name, inject = self.deck.pop()
        self.figures.faults[name] += 1
        await inject()

    def fault_kinds(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        kinds: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("gateway_unavailable", lambda: self.gateway_fault("unavailable")),
            ("gateway_timeout", lambda: self.gateway_fault("timeout")),
            ("gateway_slow", lambda: self.gateway_fault("hold")),
            ("webhooks_duplicated", lambda: self.webhook_switch({"duplicate": self.rng.randint(2, 3)})),
            ("webhooks_delayed", lambda: self.webhook_switch({"delay": self.rng.choice([0.2, 0.5, 1.0])})),
            ("webhooks_dropped", lambda: self.webhook_switch({"drop": self.rng.randint(1, 3)})),
            ("webhooks_held", lambda: self.webhook_switch({"hold": True})),
            ("webhooks_released_reordered", lambda: self.webhook_switch({"release": True, "reverse": True})),
            ("webhooks_normal", self.webhooks_normal),
            ("serve_killed", self.kill_serve),
        ]
        if self.stack.on_servers:
            kinds += [
                ("worker_killed", self.stack.kill_worker),
                ("redis_restarted", self.restart_redis),
                ("postgres_connections_killed", self.kill_connections),
            ]
        return kinds

    async def gateway_fault(self, mode: str) -> None:
        """Armed on every live instance (each process has its own switches), mostly on the primary, which
        routed payments try first."""
        gateway = PRIMARY if self.rng.random() < 0.75 else BACKUP
        count = self.rng.randint(1, 3)
        for url in self.stack.live_urls():
            await self.shoppers.staff_call(f"/{gateway}/faults", {"mode": mode, "count": count}, url=url)

    async def webhook_switch(self, switch: dict[str, Any]) -> None:
        await self.shoppers.staff_call(f"/{self.rng.choice(GATEWAYS)}/webhooks/switches", switch)

    async def webhooks_normal(self) -> None:
        for gateway in GATEWAYS:
            await self.shoppers.staff_call(f"/{gateway}/webhooks/switches", None, method="DELETE")

    async def kill_serve(self) -> None:
        alive = [index for index, instance in enumerate(self.stack.instances) if instance.alive]
        index = self.rng.choice(alive)
        await self.stack.kill_instance(index)
        self.dead.append(index)
        if not self.stack.live_urls():
            # The embedded backend runs one instance: it comes back before the next wave.
            await self.maybe_revive(force=True)

    async def restart_redis(self) -> None:
        await asyncio.to_thread(self.stack.restart_redis)

    async def kill_connections(self) -> None:
        await self.stack.terminate_database_connections()

    async def maybe_revive(self, *, force: bool = False) -> None:
        """A killed instance comes back a wave or two later, as an orchestrator would restart it."""
        if self.dead and (force or self.rng.random() < 0.5):
            index = self.dead.pop(0)
            await self.stack.start_instance(self.stack.instances[index])
