"""Stored events processed in batches (`webhooks.batches`): the jobs waiting while a claim or a final
status runs share the next statement, and each event keeps its own attempt, failure, retry and lease.

Statements are counted through `EventBatches`' statement hooks, and a batch is formed by holding the
statement before it: the jobs started meanwhile queue behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from db.models import WebhookEvent, WebhookStatus
from domain.dunning import BillingPolicy
from gateways.base import PaymentGateway
from payql.wiring import Services
from tests.database_held import BOUND_SECONDS
from tests.webhooks.test_claim import stored_event
from webhooks import batches as batches_module
from webhooks import processing
from webhooks.batches import Batched, BatchFailed, EventBatches
from webhooks.store import ClaimedEvent, RetryPolicy, claim_events, due_event_ids, finish_events, now

POLICY = RetryPolicy(lease_seconds=120.0)


class Crash(Exception):
    """The process dying at this point, as far as the events' rows can tell."""


@dataclass
class Statements:
    """The batches' two statements, counted with the events each took; the first claim can be held
    (`hold_first_claim`) until `release` is set, and the claims can crash after they ran."""

    hold_first_claim: bool = False
    crash_claims: bool = False
    claims: list[list[int]] = field(default_factory=list)
    finishes: list[list[int]] = field(default_factory=list)
    claiming: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def claim(self, event_row_ids: list[int], policy: RetryPolicy) -> list[ClaimedEvent]:
        self.claims.append(event_row_ids)
        if self.hold_first_claim and len(self.claims) == 1:
            self.claiming.set()
            await self.release.wait()
        rows = await claim_events(event_row_ids, policy)
        if self.crash_claims:
            raise Crash
        return rows

    async def finish(self, finished: list[tuple[ClaimedEvent, WebhookStatus]]) -> None:
        self.finishes.append([row.id for row, _ in finished])
        await finish_events(finished)

    def batches(self) -> EventBatches:
        return EventBatches(POLICY, claim=self.claim, finish=self.finish)


async def started(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Until each task has run its first step: tasks run in the order they were created, so one
    pass of the loop (this task yielding once) runs every earlier one first."""
    await asyncio.sleep(0)
    assert not any(task.done() for task in tasks)


async def held_batch(
    statements: Statements, first: int, job: Callable[[int], Awaitable[None]], ids: list[int]
) -> list[BaseException | None]:
    """`job(first)` holds its claim; `job(each of ids)` are started meanwhile, and then all of them run.
    Each job's outcome, in the order of [first, *ids]: None, or what it raised (a crash or a batch's failure)."""
    statements.hold_first_claim = True
    leader = asyncio.create_task(job(first))
    await statements.claiming.wait()
    waiting = [asyncio.create_task(job(event_id)) for event_id in ids]
    await started(waiting)
    statements.release.set()
    outcomes = await asyncio.gather(leader, *waiting, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, BatchFailed | Crash):
            raise outcome
    return outcomes


async def ids_of(count: int) -> list[int]:
    return [(await stored_event()).id for _ in range(count)]


async def test_events_waiting_during_a_claim_are_claimed_by_one_statement(services: Services) -> None:
    first, *others = await ids_of(9)
    statements = Statements()
    batches = statements.batches()
    claimed: dict[int, ClaimedEvent | None] = {}

    async def claim(event_id: int) -> None:
        claimed[event_id] = await batches.claim(event_id)

    await held_batch(statements, first, claim, others)
    assert statements.claims == [[first], sorted(others)]
    assert all(row is not None and row.id == event_id for event_id, row in claimed.items())
    assert {row.attempts for row in await WebhookEvent.filter(id__in=[first, *others])} == {1}


async def test_events_finishing_during_a_final_status_are_finished_by_one_statement(services: Services) -> None:
    rows = await claim_events(await ids_of(7), POLICY)
    statements = Statements()
    batches = statements.batches()
    first, *others = rows
    status = {row.id: WebhookStatus.IGNORED if row.id % 2 else WebhookStatus.PROCESSED for row in rows}
    leader = asyncio.create_task(batches.finish(first, status[first.id]))
    waiting = [asyncio.create_task(batches.finish(row, status[row.id])) for row in others]
    await asyncio.gather(leader, *waiting)
    # Started together, they all queued before the first statement ran: one statement for all.
    assert statements.finishes == [[row.id for row in rows]]
    for stored in await WebhookEvent.filter(id__in=list(status)):
        assert (stored.status, stored.next_attempt_at) == (status[stored.id], None)


async def test_one_event_twice_in_a_batch_is_claimed_once(services: Services) -> None:
    first, twice = await ids_of(2)
    statements = Statements()
    batches = statements.batches()
    claims: list[ClaimedEvent | None] = []

    async def claim(event_id: int) -> None:
        claims.append(await batches.claim(event_id))

    await held_batch(statements, first, claim, [twice, twice, twice])
    assert statements.claims == [[first], [twice]]
    assert [row.id for row in claims if row is not None and row.id == twice] == [twice]
    assert sum(row is None for row in claims) == 2
    assert (await WebhookEvent.get(id=twice)).attempts == 1


async def test_a_job_cancelled_before_its_batch_runs_claims_nothing(services: Services) -> None:
    first, cancelled, kept = await ids_of(3)
    statements = Statements(hold_first_claim=True)
    batches = statements.batches()
    leader = asyncio.create_task(batches.claim(first))
    await statements.claiming.wait()
    waiting = [asyncio.create_task(batches.claim(cancelled)), asyncio.create_task(batches.claim(kept))]
    await started(waiting)
    waiting[0].cancel()
    statements.release.set()
    await asyncio.gather(leader, *waiting, return_exceptions=True)
    assert statements.claims == [[first], [kept]]
    assert (await WebhookEvent.get(id=cancelled)).attempts == 0


async def test_a_job_cancelled_while_its_batch_runs_takes_no_other_jobs_claim_with_it(services: Services) -> None:
    # The first job is the one whose claim started the batch: the one that ran its statement, before.
    cancelled, first, kept = await ids_of(3)
    statements = Statements(hold_first_claim=True)
    batches = statements.batches()
    jobs = [asyncio.create_task(batches.claim(event_id)) for event_id in (cancelled, first, kept)]
    await statements.claiming.wait()
    assert statements.claims == [[cancelled, first, kept]]
    jobs[0].cancel()  # its job timed out, or its worker is stopping, during the statement
    statements.release.set()
    _, one, other = await asyncio.gather(*jobs, return_exceptions=True)
    assert jobs[0].cancelled()
    assert isinstance(one, ClaimedEvent) and one.id == first
    assert isinstance(other, ClaimedEvent) and other.id == kept
    # The cancelled job's event was claimed with its batch, for nobody: its lease lapses for the sweeper.
    assert (await WebhookEvent.get(id=cancelled)).attempts == 1
    assert cancelled not in await due_event_ids(grace_seconds=0)
    await lease_lapses([cancelled])
    assert cancelled in await due_event_ids(grace_seconds=0)


async def test_nothing_submitted_runs_nothing() -> None:
    ran: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        ran.append(items)
        return items

    batched: Batched[int, int] = Batched(run, could_grow=lambda: False)
    assert await batched.submit_many([]) == []
    assert await batched.submit_many([7]) == [7]
    assert ran == [[7]]


async def test_batches_stopped_mid_statement_fail_their_waiting_submitters_instead_of_leaving_them_waiting() -> None:
    running, never = asyncio.Event(), asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        running.set()
        await never.wait()
        return items

    batched: Batched[int, int] = Batched(run, could_grow=lambda: False)
    in_statement = asyncio.create_task(batched.submit(1))
    await running.wait()
    waiting = asyncio.create_task(batched.submit(2))
    await started([waiting])
    (runner,) = [task for task in asyncio.all_tasks() if task.get_name() == "webhooks:batches"]
    runner.cancel()  # the process stopping
    async with asyncio.timeout(BOUND_SECONDS):
        outcomes = await asyncio.gather(in_statement, waiting, return_exceptions=True)
    assert all(isinstance(outcome, BatchFailed) for outcome in outcomes)


class Jobs:
    """`WebhookProcessing.event` for several events on one process's batches, with the events in
    `failing` raising in their handler and those in `slow` waiting for `go_on` there."""

    def __init__(self, services: Services, statements: Statements, monkeypatch: pytest.MonkeyPatch) -> None:
        self.services = services
        self.batches = statements.batches()
        self.failing: set[int] = set()
        self.slow: set[int] = set()
        self.go_on = asyncio.Event()
        self.retries: list[int] = []
        self.applied: list[int] = []
        original = processing.apply_event

        async def apply_event(row: WebhookEvent, gateway: PaymentGateway, billing: BillingPolicy) -> bool:
            self.applied.append(row.id)
            if row.id in self.slow:
                await self.go_on.wait()
            if row.id in self.failing:
                raise RuntimeError(f"handler failed on {row.id}")
            return await original(row, gateway, billing)

        monkeypatch.setattr(processing, "apply_event", apply_event)

    def processor(self) -> processing.WebhookProcessing:
        return processing.WebhookProcessing(
            gateways=self.services.deps.gateways,
            policy=POLICY,
            schedule_retry=self.schedule_retry,
            billing=BillingPolicy(),
            batches=self.batches,
        )

    async def run(self, event_row_id: int) -> None:
        await self.processor().event(event_row_id)

    async def run_batch(self, event_row_ids: list[int]) -> None:
        """The job of one batch of deliveries (`WebhookProcessing.events`)."""
        await self.processor().events(event_row_ids)

    async def schedule_retry(self, event_row_id: int, delay: float) -> None:
        self.retries.append(event_row_id)


async def statuses(ids: list[int]) -> dict[int, WebhookStatus]:
    return {row.id: row.status for row in await WebhookEvent.filter(id__in=ids)}


def statements_ids(statements: list[list[int]]) -> list[int]:
    return sorted(event_id for statement in statements for event_id in statement)


async def lease_lapses(ids: list[int]) -> None:
    """As if the lease (or the retry's delay) had run out."""
    await WebhookEvent.filter(id__in=ids).update(next_attempt_at=now() - timedelta(seconds=1))


async def test_a_failing_event_in_a_batch_retries_alone_while_the_others_finish(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, *others = await ids_of(6)
    failing = others[2]
    statements = Statements()
    jobs = Jobs(services, statements, monkeypatch)
    jobs.failing.add(failing)
    await held_batch(statements, first, jobs.run, others)
    assert len(statements.claims) == 2
    assert statements_ids(statements.finishes) == sorted(set([first, *others]) - {failing})
    assert jobs.retries == [failing]
    ended = await statuses([first, *others])
    assert ended.pop(failing) == WebhookStatus.FAILED
    assert set(ended.values()) == {WebhookStatus.IGNORED}
    failed = await WebhookEvent.get(id=failing)
    assert failed.attempts == 1
    assert "handler failed" in (failed.last_error or "")
    # Its retry, fixed: applied on its own second attempt; its neighbours are not taken again.
    jobs.failing.clear()
    await lease_lapses([failing])
    for event_id in [first, *others]:
        await jobs.run(event_id)
    assert (await WebhookEvent.get(id=failing)).attempts == 2
    assert set((await statuses([first, *others])).values()) == {WebhookStatus.IGNORED}
    assert sorted(jobs.applied) == sorted([first, *others, failing])


async def test_a_slow_event_in_a_batch_does_not_hold_back_its_neighbours(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, *others = await ids_of(5)
    slow = others[0]
    statements = Statements()
    jobs = Jobs(services, statements, monkeypatch)
    jobs.slow.add(slow)
    statements.hold_first_claim = True
    leader = asyncio.create_task(jobs.run(first))
    await statements.claiming.wait()
    waiting = {event_id: asyncio.create_task(jobs.run(event_id)) for event_id in others}
    await started(list(waiting.values()))
    statements.release.set()
    await asyncio.gather(leader, *(task for event_id, task in waiting.items() if event_id != slow))
    ended = await statuses([first, *others])
    assert ended.pop(slow) == WebhookStatus.RECEIVED
    assert set(ended.values()) == {WebhookStatus.IGNORED}
    jobs.go_on.set()
    await waiting[slow]
    assert (await WebhookEvent.get(id=slow)).status == WebhookStatus.IGNORED


async def test_a_crash_after_a_batch_is_claimed_leaves_every_event_to_the_sweeper(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, *others = await ids_of(4)
    ids = [first, *others]
    statements = Statements(crash_claims=True)
    jobs = Jobs(services, statements, monkeypatch)
    outcomes = await held_batch(statements, first, jobs.run, others)
    assert jobs.applied == []
    # Two statements, each its own batch's only one: every job of each was told of its failure,
    # rather than running a statement of its own.
    assert statements.claims == [[first], sorted(others)]
    assert all(isinstance(outcome, BatchFailed) and isinstance(outcome.__cause__, Crash) for outcome in outcomes)
    for row in await WebhookEvent.filter(id__in=ids):
        assert (row.status, row.attempts) == (WebhookStatus.RECEIVED, 1)
        assert row.next_attempt_at is not None
        assert row.next_attempt_at > now()  # held by the lost attempt until its lease lapses
    assert not set(ids) & set(await due_event_ids(grace_seconds=0))
    await lease_lapses(ids)
    assert set(ids) <= set(await due_event_ids(grace_seconds=0))
    statements.crash_claims = False
    for event_id in ids:
        await jobs.run(event_id)
    assert set((await statuses(ids)).values()) == {WebhookStatus.IGNORED}
    assert sorted(jobs.applied) == sorted(ids)


async def test_a_crash_before_a_batch_is_finished_leaves_it_to_the_sweeper_to_apply_once_more(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await ids_of(4)
    statements = Statements()
    jobs = Jobs(services, statements, monkeypatch)

    # The final status is lost as with a lost connection: before its statement runs.
    async def lost(finished: list[tuple[WebhookEvent, WebhookStatus]]) -> None:
        statements.finishes.append([row.id for row, _ in finished])
        raise Crash

    jobs.batches = EventBatches(POLICY, claim=statements.claim, finish=lost)
    outcomes = await asyncio.gather(*(jobs.run(event_id) for event_id in ids), return_exceptions=True)
    assert all(isinstance(outcome, Crash | BatchFailed) for outcome in outcomes)
    assert set((await statuses(ids)).values()) == {WebhookStatus.RECEIVED}
    await lease_lapses(ids)
    assert set(ids) <= set(await due_event_ids(grace_seconds=0))
    jobs.batches = statements.batches()
    for event_id in ids:
        await jobs.run(event_id)
    assert set((await statuses(ids)).values()) == {WebhookStatus.IGNORED}
    assert {row.attempts for row in await WebhookEvent.filter(id__in=ids)} == {2}


# Longer than any test may take: a batch that waits out its pause fails the test.
LONG_PAUSE_SECONDS = 600.0


async def done_before_the_pause(jobs: Awaitable[Any]) -> None:
    try:
        async with asyncio.timeout(BOUND_SECONDS):
            await jobs
    except TimeoutError:
        raise AssertionError("a batch waited out its pause although every attempt was waiting for it") from None


async def test_a_batch_does_not_wait_out_its_pause_once_every_attempt_waits_for_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches_module, "BATCH_SPACING_SECONDS", LONG_PAUSE_SECONDS)
    ids = await ids_of(6)
    statements = Statements()
    jobs = Jobs(services, statements, monkeypatch)
    # Each round's second claim and second final status come within the pause of its first ones.
    await done_before_the_pause(asyncio.gather(*(jobs.run(event_id) for event_id in ids[:3])))
    await done_before_the_pause(asyncio.gather(*(jobs.run(event_id) for event_id in ids[3:])))
    assert set((await statuses(ids)).values()) == {WebhookStatus.IGNORED}
    assert statements_ids(statements.claims) == statements_ids(statements.finishes) == sorted(ids)


async def test_a_final_status_waits_within_its_pause_for_an_attempt_still_at_work(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches_module, "BATCH_SPACING_SECONDS", LONG_PAUSE_SECONDS)
    leader, slow, fast = await ids_of(3)
    statements = Statements()
    jobs = Jobs(services, statements, monkeypatch)
    jobs.slow.add(slow)
    fast_finishing = asyncio.Event()
    finish = jobs.batches.finish

    async def noting_finish(row: WebhookEvent, status: WebhookStatus) -> None:
        if row.id == fast:
            fast_finishing.set()
        await finish(row, status)

    monkeypatch.setattr(jobs.batches, "finish", noting_finish)
    # The leader's claim and final status start both pauses; `slow` and `fast`, queued behind its
    # claim, are claimed together once the leader's attempt is over.
    statements.hold_first_claim = True
    first = asyncio.create_task(jobs.run(leader))
    await statements.claiming.wait()
    at_work, waiting = asyncio.create_task(jobs.run(slow)), asyncio.create_task(jobs.run(fast))
    await started([at_work, waiting])
    statements.release.set()
    await done_before_the_pause(first)
    await done_before_the_pause(fast_finishing.wait())
    # `fast`'s final status is held by its pause while `slow` is at work, then both go in one statement.
    assert statements.claims == [[leader], sorted([slow, fast])]
    assert statements.finishes == [[leader]]
    jobs.go_on.set()
    await done_before_the_pause(asyncio.gather(at_work, waiting))
    assert statements.finishes == [[leader], [fast, slow]]
    assert set((await statuses([leader, slow, fast])).values()) == {WebhookStatus.IGNORED}


async def test_a_batch_job_claims_its_events_together_and_one_failure_stops_no_other(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await ids_of(5)
    statements = Statements()
    jobs = Jobs(services, statements, monkeypatch)
    jobs.failing.add(ids[1])
    await jobs.run_batch(ids)
    # One job's events start together: one claim for all of them.
    assert statements.claims == [sorted(ids)]
    assert statements_ids(statements.finishes) == sorted(set(ids) - {ids[1]})
    assert jobs.retries == [ids[1]]
    ended = await statuses(ids)
    assert ended.pop(ids[1]) == WebhookStatus.FAILED
    assert set(ended.values()) == {WebhookStatus.IGNORED}


async def test_a_batch_job_whose_claim_fails_raises_for_the_sweeper_and_applies_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await ids_of(3)
    statements = Statements(crash_claims=True)
    jobs = Jobs(services, statements, monkeypatch)
    with pytest.raises(BatchFailed) as failed:
        await jobs.run_batch(ids)
    assert isinstance(failed.value.__cause__, Crash)  # the statement's own error, told
    assert jobs.applied == []
    assert {(row.status, row.attempts) for row in await WebhookEvent.filter(id__in=ids)} == {
        (WebhookStatus.RECEIVED, 1)
    }


async def test_an_event_whose_failure_cannot_be_recorded_is_left_to_the_sweeper_and_the_others_finish(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await ids_of(4)
    statements = Statements()
    jobs = Jobs(services, statements, monkeypatch)
    jobs.failing.add(ids[2])

    async def database_gone(row: WebhookEvent, error: BaseException, policy: RetryPolicy) -> float | None:
        raise Crash

    monkeypatch.setattr(processing, "mark_failed", database_gone)
    with pytest.raises(ExceptionGroup) as raised:
        await jobs.run_batch(ids)
    assert [type(error) for error in raised.value.exceptions] == [Crash]
    assert statements_ids(statements.finishes) == sorted(set(ids) - {ids[2]})
    held = await WebhookEvent.get(id=ids[2])
    assert (held.status, held.attempts) == (WebhookStatus.RECEIVED, 1)
    assert held.next_attempt_at is not None and held.next_attempt_at > now()  # its lease, until it lapses
