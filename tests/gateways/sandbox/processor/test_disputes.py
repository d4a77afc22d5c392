"""The sandbox's disputes: Stripe-shaped objects and events, the test switches and their HTTP routes,
the adapter's dispute verbs, and disputes kept in the shared state file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from domain.money import Money
from domain.statuses import DisputeStatus
from gateways.errors import InvalidGatewayRequest
from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor, sandbox_routes
from gateways.sandbox.processor.disputes import EVIDENCE_WINDOW_SECONDS
from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import JsonDict, SandboxPaymentIntent
from gateways.types import DisputeEvidence, DisputeObserved, DisputeResult, VerifiedEvent
from tests.gateways.sandbox_access import STAFF_HEADERS, guard_for_tests


@pytest.fixture
def processor() -> SandboxProcessor:
    return SandboxProcessor()


@pytest.fixture
async def client(processor: SandboxProcessor) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Mount("/sandbox", routes=sandbox_routes(processor, guard=guard_for_tests()))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://payql.test", headers=STAFF_HEADERS
    ) as client:
        yield client


async def paid(processor: SandboxProcessor, amount: int = 5_000, key: str = "k1") -> SandboxPaymentIntent:
    return await processor.create_payment_intent(
        amount=amount, currency="USD", payment_method="pm_card_visa", idempotency_key=key
    )


def recorder(processor: SandboxProcessor) -> list[JsonDict]:
    seen: list[JsonDict] = []

    async def listen(event: JsonDict) -> None:
        seen.append(event)

    processor.on_event = listen
    return seen


def dispute_effect(event: JsonDict, gateway: SandboxGateway) -> DisputeResult:
    verified = VerifiedEvent(str(event["id"]), str(event["type"]), int(str(event["created"])), event)
    [effect] = gateway.interpret_event(verified)
    assert isinstance(effect, DisputeObserved)
    return effect.result


async def test_a_dispute_withdraws_then_is_answered_and_won(processor: SandboxProcessor) -> None:
    gateway = SandboxGateway(processor, public_base_url="http://payql.test")
    intent = await paid(processor)
    events = recorder(processor)
    opened = await processor.create_dispute(intent.id, "product_not_received", amount=3_000)
    assert [e["type"] for e in events] == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    body = events[0]["data"]["object"]  # type: ignore[index]
    assert body["object"] == "dispute" and body["status"] == "needs_response" and body["payment_intent"] == intent.id
    assert body["evidence_details"]["due_by"] == opened.created + EVIDENCE_WINDOW_SECONDS
    result = dispute_effect(events[0], gateway)
    assert (result.status, result.amount, result.reason) == (
        DisputeStatus.NEEDS_RESPONSE,
        Money(3_000, "USD"),
        "product_not_received",
    )
    assert result.payment_reference == intent.id and result.evidence_due_by == opened.due_by

    answered = await gateway.submit_dispute_evidence(
        opened.id, DisputeEvidence(shipping_tracking_number="JD0001", uncategorized_text="Delivered.")
    )
    assert answered.status is DisputeStatus.UNDER_REVIEW
    assert events[-1]["type"] == "charge.dispute.updated"
    stored = await processor.retrieve_dispute(opened.id)
    assert stored.evidence == {"shipping_tracking_number": "JD0001", "uncategorized_text": "Delivered."}
    assert stored.submission_count == 1
    with pytest.raises(InvalidGatewayRequest):
        await gateway.submit_dispute_evidence(opened.id, DisputeEvidence(uncategorized_text="Again."))

    await processor.close_dispute(opened.id, won=True)
    assert [e["type"] for e in events[-2:]] == ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
    assert dispute_effect(events[-1], gateway).status is DisputeStatus.WON
    assert (await gateway.retrieve_dispute(opened.id)).status is DisputeStatus.WON
    with pytest.raises(SandboxInvalidRequest):
        await processor.close_dispute(opened.id, won=False)


async def test_a_lost_dispute_emits_only_closed(processor: SandboxProcessor) -> None:
    intent = await paid(processor)
    opened = await processor.create_dispute(intent.id, "fraudulent")
    assert opened.amount == 5_000
    events = recorder(processor)
    closed = await processor.close_dispute(opened.id, won=False)
    assert closed.status == "lost" and [e["type"] for e in events] == ["charge.dispute.closed"]


async def test_what_cannot_be_disputed_is_refused(processor: SandboxProcessor) -> None:
    intent = await paid(processor)
    await processor.refund(intent.id, idempotency_key="r1", amount=4_000)
    with pytest.raises(SandboxInvalidRequest, match="from 1 to 1000"):
        await processor.create_dispute(intent.id, "general", amount=1_001)
    with pytest.raises(SandboxInvalidRequest, match="Unknown dispute reason"):
        await processor.create_dispute(intent.id, "changed my mind")
    held = await processor.create_payment_intent(
        amount=900, currency="USD", payment_method="pm_card_visa", idempotency_key="k2", capture_method="manual"
    )
    with pytest.raises(SandboxInvalidRequest, match="succeeded"):
        await processor.create_dispute(held.id, "general")
    assert (await processor.create_dispute(intent.id, "general")).amount == 1_000
    with pytest.raises(SandboxInvalidRequest, match="already disputed"):
        await processor.create_dispute(intent.id, "general")
    with pytest.raises(SandboxInvalidRequest, match="No such dispute"):
        await processor.retrieve_dispute("dp_sbx_missing")


async def test_the_routes_open_and_close_a_dispute(client: httpx.AsyncClient, processor: SandboxProcessor) -> None:
    intent = await paid(processor)
    opened = await client.post("/sandbox/disputes", json={"payment_intent": intent.id, "reason": "duplicate"})
    assert opened.status_code == 200
    dispute = opened.json()
    assert (dispute["status"], dispute["reason"], dispute["amount"]) == ("needs_response", "duplicate", 5_000)
    refused = await client.post(f"/sandbox/disputes/{dispute['id']}/close", json={"won": "yes"})
    assert refused.status_code == 400
    closed = await client.post(f"/sandbox/disputes/{dispute['id']}/close", json={"won": True})
    assert closed.status_code == 200 and closed.json()["status"] == "won"
    missing = await client.post("/sandbox/disputes", json={"payment_intent": "pi_sbx_nope"})
    assert missing.status_code == 404


async def test_disputes_are_kept_in_the_shared_state_file(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    writer = SandboxProcessor(state_path=path)
    intent = await paid(writer)
    opened = await writer.create_dispute(intent.id, "fraudulent")
    reader = SandboxProcessor(state_path=path)
    await reader.submit_dispute_evidence(opened.id, {"customer_email_address": "a@b.example"})
    assert (await writer.retrieve_dispute(opened.id)).status == "under_review"
    await writer.aclose()
    await reader.aclose()
    again = SandboxProcessor(state_path=path)
    kept = await again.retrieve_dispute(opened.id)
    assert kept.evidence == {"customer_email_address": "a@b.example"}
    assert json.loads(json.dumps(kept.to_dict()))["evidence_details"]["submission_count"] == 1
    await again.aclose()
