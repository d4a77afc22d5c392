"""The caller's customer row, made on first use: one row however many first uses race, and a
cancellation anywhere in making it leaves nothing held (tortoise's get_or_create could leave the
SQLite lock or a pooled connection taken)."""

from __future__ import annotations

import asyncio
import uuid

from db.models import Customer
from resolvers.checkout import customer_for
from resolvers.context import Principal
from tests.database_held import assert_nothing_held, within_bound

MAX_TURNS = 20_000


def a_new_principal() -> Principal:
    subject = f"customer-{uuid.uuid4().hex[:12]}"
    return Principal(subject, email=f"{subject}@shoppers.example")


async def test_a_cancellation_anywhere_in_the_first_use_leaves_nothing_held(server: str) -> None:
    for turns in range(MAX_TURNS):
        principal = a_new_principal()
        task = asyncio.create_task(customer_for(principal))
        for _ in range(turns):
            await asyncio.sleep(0)  # one loop turn: the cancellation lands at the next await point
        ended_first = task.done()
        task.cancel()
        await within_bound(asyncio.wait([task]), "the cancelled first use ending")
        await assert_nothing_held()
        assert await Customer.filter(external_id=principal.subject).count() <= 1
        if ended_first:
            assert (await Customer.get(external_id=principal.subject)).email == principal.email
            break
    assert turns > 3


async def test_racing_first_uses_make_one_customer(server: str) -> None:
    principal = a_new_principal()

    customers = await asyncio.gather(*(customer_for(principal) for _ in range(5)))

    assert len({customer.id for customer in customers}) == 1
    assert await Customer.filter(external_id=principal.subject).count() == 1
