"""`list_payments` and `find_payment` on the wire, against a scripted server in Stripe's list and search
shapes: pagination is followed to the end, the `created` filter is sent, and the fallbacks (no search,
no `created` filter — both the case with localstripe) still find the right intents."""

from __future__ import annotations

from typing import Any

from domain.statuses import PaymentStatus
from gateways.stripe.adapter import StripeGateway
from tests.gateways.stripe.conftest import recorded_object
from tests.gateways.stripe.servers import Answer, ScriptedStripe


def _intent(number: int, *, created: int = 1_764_115_100, payql_id: str | None = None) -> dict[str, Any]:
    intent = recorded_object("payment_intent.succeeded")
    intent.update(id=f"pi_{number:04d}", created=created, amount_received=intent["amount"])
    intent["metadata"] = {"payql_payment_id": payql_id or f"pay_{number}"}
    return intent


def _page(intents: list[dict[str, Any]], *, has_more: bool, search: bool = False) -> Answer:
    url = "/v1/payment_intents/search" if search else "/v1/payment_intents"
    kind = "search_result" if search else "list"
    return Answer.json(200, {"object": kind, "url": url, "has_more": has_more, "data": intents})


async def test_list_payments_follows_every_page_with_the_created_filter(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    stripe.answers += [
        _page([_intent(3), _intent(2)], has_more=True),
        _page([_intent(1)], has_more=False),
        _page([], has_more=False),  # no hosted Checkout Sessions
    ]

    listed = await gateway.list_payments(1_764_000_000)

    assert [result.reference for result in listed] == ["pi_0003", "pi_0002", "pi_0001"]
    assert all(result.status is PaymentStatus.PAID for result in listed)
    first, second, sessions = stripe.requests
    assert sessions.path == "/v1/checkout/sessions"
    assert sessions.form["created[gte]"] == "1764000000"
    assert first.form["created[gte]"] == "1764000000"
    assert first.form["limit"] == "100"
    assert second.form["starting_after"] == "pi_0002"
    assert second.form["created[gte]"] == "1764000000"


async def test_list_payments_filters_here_when_the_server_refuses_the_created_filter(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    stripe.answers += [
        Answer.json(400, {"error": {"type": "invalid_request_error", "message": "Unexpected created"}}),
        _page([_intent(1, created=1_700_000_000), _intent(2, created=1_764_115_100)], has_more=False),
    ]

    listed = await gateway.list_payments(1_764_000_000)

    assert [result.reference for result in listed] == ["pi_0002"]
    assert "created[gte]" not in stripe.requests[1].form


async def test_find_payment_uses_search_first(scripted: tuple[ScriptedStripe, StripeGateway]) -> None:
    stripe, gateway = scripted
    stripe.answers.append(
        _page(
            [_intent(1, created=100, payql_id="pay_x"), _intent(2, created=200, payql_id="pay_x")],
            has_more=False,
            search=True,
        )
    )

    found = await gateway.find_payment("pay_x")

    assert found is not None and found.reference == "pi_0002"  # the newest of two attempts
    [search] = stripe.requests
    assert search.path == "/v1/payment_intents/search"
    assert search.form["query"] == "metadata['payql_payment_id']:'pay_x'"


async def test_find_payment_scans_recent_intents_when_search_misses_or_is_unavailable(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    stripe.answers += [
        # Search lags writes by up to a minute: an empty answer is not trusted as "no such payment".
        _page([], has_more=False, search=True),
        _page([_intent(1, payql_id="pay_other"), _intent(2, payql_id="pay_y")], has_more=False),
        # Search not available at all (localstripe answers 404; some regions refuse it).
        Answer.json(404, {"error": {"type": "invalid_request_error", "message": "Not Found"}}),
        _page([_intent(3, payql_id="pay_z")], has_more=False),
    ]

    assert (found := await gateway.find_payment("pay_y")) is not None and found.reference == "pi_0002"
    assert (found := await gateway.find_payment("pay_z")) is not None and found.reference == "pi_0003"
    assert [request.path for request in stripe.requests] == [
        "/v1/payment_intents/search",
        "/v1/payment_intents",
        "/v1/payment_intents/search",
        "/v1/payment_intents",
    ]


async def test_an_id_that_cannot_be_quoted_safely_is_never_put_in_a_search_query(
    scripted: tuple[ScriptedStripe, StripeGateway],
) -> None:
    stripe, gateway = scripted
    stripe.answers += [_page([_intent(1)], has_more=False), _page([], has_more=False)]

    assert await gateway.find_payment("x' OR metadata['a']:'b") is None
    only, sessions = stripe.requests
    assert only.path == "/v1/payment_intents"
    assert sessions.path == "/v1/checkout/sessions"
