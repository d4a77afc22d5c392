"""The request deadline: read by every call inside it, never extended by a nested one, absent outside."""

from __future__ import annotations

import asyncio

from gateways.deadline import gateway_deadline, remaining


async def test_no_deadline_outside_a_request() -> None:
    assert remaining() is None


async def test_a_nested_deadline_never_extends_the_enclosing_one() -> None:
    with gateway_deadline(5):
        outer = remaining()
        assert outer is not None and 0 < outer <= 5
        with gateway_deadline(3600):
            inner = remaining()
            assert inner is not None and inner <= 5
        with gateway_deadline(0):
            assert remaining() == 0
    assert remaining() is None


async def test_tasks_started_inside_see_the_deadline() -> None:
    async def seen() -> float | None:
        return remaining()

    with gateway_deadline(0):
        task = asyncio.create_task(seen())
    assert await task == 0
