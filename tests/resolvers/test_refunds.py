"""Two refunds of one payment whose transactions overlap on PostgreSQL: the row locks make the
second wait for the first, so PENDING + SUCCEEDED refunds never exceed the capture in the database.

The first refund's transaction is held open, after its row is inserted, until the second one is
either waiting on a lock (seen in pg_stat_activity) or has inserted its own row. Both gateway calls
wait until both transactions are over, so the database is checked before the gateway could refuse
an over-refund (which would hide the overlap behind an error code).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from db.models import Payment, Refund
from resolvers import refunds
from tests.backends import Backend, backend_name
from tests.database_held import until_blocked_on_a_lock_or
from tests.features.test_refunds import paid, refund
from tests.testkit import Shopper

pytestmark = pytest.mark.skipif(
    backend_name() != "servers",
    reason="SQLite runs one write transaction at a time: refund transactions can overlap only on PostgreSQL",
)


class Overlap:
    """Hooks into the refund use case that hold the first transaction open and the gateway calls back."""

    def __init__(self) -> None:
        self.recovery_points = 0
        self.first_inserted = asyncio.Event()
        self.second_inserted = asyncio.Event()
        self.release_first = asyncio.Event()
        self.creates_done = 0
        self.both_created = asyncio.Event()
        self.checked = asyncio.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        save_recovery_point, create, send_refund = refunds.save_recovery_point, refunds._create, refunds.send_refund

        async def held_save_recovery_point(*args: Any) -> None:
            self.recovery_points += 1
            if self.recovery_points == 1:
                self.first_inserted.set()
                await self.release_first.wait()  # inside the first refund's transaction, row inserted
            else:
                self.second_inserted.set()
            await save_recovery_point(*args)

        async def counted_create(*args: Any) -> Refund:
            try:
                return await create(*args)
            finally:
                self.creates_done += 1
                if self.creates_done == 2:
                    self.both_created.set()

        async def checked_send_refund(*args: Any) -> Any:
            await self.checked.wait()
            return await send_refund(*args)

        monkeypatch.setattr(refunds, "save_recovery_point", held_save_recovery_point)
        monkeypatch.setattr(refunds, "_create", counted_create)
        monkeypatch.setattr(refunds, "send_refund", checked_send_refund)


async def second_waits_or_inserts(database_url: str, overlap: Overlap) -> None:
    await until_blocked_on_a_lock_or(database_url, overlap.second_inserted)
    overlap.release_first.set()


async def test_overlapping_refunds_never_reserve_more_than_the_capture(
    shopper: Shopper, admin: Shopper, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await paid(shopper, 1_000)
    payment_id = order["payment"]["id"]
    overlap = Overlap()
    overlap.install(monkeypatch)

    first = asyncio.create_task(refund(admin, payment_id, 700))
    await asyncio.wait_for(overlap.first_inserted.wait(), 10)
    second = asyncio.create_task(refund(admin, payment_id, 700))
    await asyncio.wait_for(second_waits_or_inserts(backend.database_url, overlap), 10)
    await asyncio.wait_for(overlap.both_created.wait(), 10)

    reserved = await Refund.filter(payment_id=payment_id, status__in=["PENDING", "SUCCEEDED"])
    captured = (await Payment.get(id=payment_id)).amount_captured
    overlap.checked.set()
    results = await asyncio.wait_for(asyncio.gather(first, second), 20)

    assert sum(r.amount for r in reserved) <= captured == 1_000
    assert sorted(e["code"] for r in results for e in r["userErrors"]) == ["INVALID_INPUT"]
    assert [r.amount for r in await Refund.filter(payment_id=payment_id, status="SUCCEEDED")] == [700]
