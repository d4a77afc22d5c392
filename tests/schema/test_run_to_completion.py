"""RunToCompletion: a mutation whose caller goes away (a websocket `complete`, a closed socket, a
cancelled request) still runs to its end, and a retry with the same idempotency key replays the
result it kept."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from typing import Any

import pytest
import strawberry

from db.models import IdempotencyRecord, IdempotencyState, Payment
from gateways.types import ChargeRequest, PaymentResult
from payql.wiring import Services
from schema.assembly import run_to_completion
from schema.run_to_completion import finish_mutations, running_mutations
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price
from tests.wsclient import graphql_ws

# A bound on waits that end at once when the mutation was not torn; reaching it is a failure.
BOUND_SECONDS = 10


async def within_bound(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, BOUND_SECONDS)


async def test_a_checkout_whose_socket_completes_and_closes_mid_charge_finishes_and_replays(
    services: Services, server: str, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = services.deps.gateways.get("sandbox")
    charging, may_answer = asyncio.Event(), asyncio.Event()
    charges: list[str] = []
    charge = gateway.charge

    async def held_charge(request: ChargeRequest) -> PaymentResult:
        charges.append(request.idempotency_key)
        charging.set()
        await may_answer.wait()
        return await charge(request)

    monkeypatch.setattr(gateway, "charge", held_charge)
    variables = {"input": checkout_input(await make_price(1250))}

    async with graphql_ws(server, shopper.token) as ws:
        operation_id = uuid.uuid4().hex
        payload = {"query": CHECKOUT, "variables": variables}
        await ws.connection.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))
        await within_bound(charging.wait())
        await ws.connection.send(json.dumps({"id": operation_id, "type": "complete"}))
    # The client has cancelled and gone; only then may the gateway answer.
    may_answer.set()
    assert await finish_mutations(BOUND_SECONDS) == 0

    record = await IdempotencyRecord.get(key=variables["input"]["idempotencyKey"])
    assert record.state is IdempotencyState.COMPLETED
    replay = (await within_bound(shopper.data(CHECKOUT, variables)))["checkout"]
    assert replay["userErrors"] == []
    assert replay["payment"]["status"] == "PAID"
    assert replay["order"]["status"] == "PAID"
    assert len(charges) == 1
    assert await Payment.filter(order_id=replay["order"]["id"]).count() == 1


@strawberry.type
class Query:
    ping: str = "pong"


def schema_with(resolver_body: Any) -> strawberry.Schema:
    @strawberry.type
    class Mutation:
        @strawberry.mutation
        async def work(self) -> str:
            result: str = await resolver_body()
            return result

    return strawberry.Schema(query=Query, mutation=run_to_completion(Mutation))


async def test_a_cancelled_execution_leaves_its_mutation_running_to_the_end() -> None:
    started, may_finish = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def body() -> str:
        started.set()
        await may_finish.wait()
        finished.append("work")
        return "done"

    execution = asyncio.create_task(schema_with(body).execute("mutation { work }"))
    await within_bound(started.wait())
    execution.cancel()
    await asyncio.wait([execution])
    assert running_mutations() == 1

    may_finish.set()
    assert await finish_mutations(BOUND_SECONDS) == 0

    assert finished == ["work"]
    assert running_mutations() == 0


async def test_an_uncancelled_mutation_answers_as_before() -> None:
    async def body() -> str:
        return "done"

    result = await schema_with(body).execute("mutation { work }")

    assert result.errors is None
    assert result.data == {"work": "done"}
