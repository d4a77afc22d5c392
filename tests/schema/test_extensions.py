"""The schema's card-number refusal and error masking, run on the built schema without a server:
a request carrying a card number, in any spelling and any part of it, gets the refusal alone, and
no error that leaves or is logged repeats the number."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import GraphQLError
from strawberry import Schema

from schema.assembly import build_schema
from schema.extensions import CARD_NUMBER_MESSAGE, should_mask_error
from schema.nul_bytes import NUL_MESSAGE
from schema.query_cost import QueryLimits

PAN = "4242424242424242"
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { userErrors { code } } }"""


@pytest.fixture(scope="module")
def schema() -> Schema:
    limits = QueryLimits(max_fields=1000, max_cost=50_000, default_list_size=10)
    return build_schema(
        max_depth=10, max_aliases=10, max_tokens=2000, query_limits=limits, introspection=False, suggestions=False
    )


def checkout_variables(**changes: Any) -> dict[str, Any]:
    item = {"priceId": "00000000-0000-0000-0000-000000000001", "quantity": 1}
    return {"input": {"items": [item], "paymentMethod": "pm_card_visa", "idempotencyKey": "k-1"} | changes}


def literal_checkout(quantity: str, method: str = '"pm_card_visa"') -> str:
    return (
        f'mutation {{ checkout(input: {{items: [{{priceId: "x", quantity: {quantity}}}], paymentMethod: {method}, '
        'idempotencyKey: "k"}) { userErrors { code } } }'
    )


def assert_refused_alone(errors: list[GraphQLError] | None) -> None:
    assert errors is not None
    assert [(e.message, (e.extensions or {}).get("code")) for e in errors] == [(CARD_NUMBER_MESSAGE, "INVALID_INPUT")]


@pytest.mark.parametrize(
    "variables",
    [
        checkout_variables(paymentMethod="4242.4242.4242.4242"),
        checkout_variables(paymentMethod="4242\u00a04242\u00a04242\u00a04242"),
        checkout_variables(returnUrl="https://shop.example/r?c=4242_4242_4242_4242"),
        checkout_variables(items=[{"priceId": "x", "quantity": PAN}]),
        checkout_variables(items=[{"priceId": "x", "quantity": "4242 4242 4242 4242"}]),
    ],
    ids=["dots", "nbsp", "underscores", "quantity-string", "quantity-spaced"],
)
async def test_a_card_in_the_variables_gets_the_refusal_alone(
    schema: Schema, variables: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await schema.execute(CHECKOUT, variable_values=variables)
    assert_refused_alone(result.errors)
    assert "4242" not in caplog.text


@pytest.mark.parametrize(
    "query",
    [
        literal_checkout(PAN),
        literal_checkout('"4242 4242 4242 4242"'),
        literal_checkout("1", method='"\\u0034242424242424242"'),
        literal_checkout('"\\u0034242424242424242"'),
        f"{{ order(id: {PAN}x) {{ id }} }}",
        "{ order 4242424242424242 }",
    ],
    ids=["int-literal", "string-literal", "escaped", "escaped-quantity", "syntax-error", "unexpected-token"],
)
async def test_a_card_in_the_document_gets_the_refusal_alone(
    schema: Schema, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await schema.execute(query)
    assert_refused_alone(result.errors)
    assert "4242" not in caplog.text


async def test_a_card_in_the_operation_name_gets_the_refusal_alone(schema: Schema) -> None:
    result = await schema.execute("query Mine { __typename }", operation_name="Pay_4242_4242_4242_4242")
    assert_refused_alone(result.errors)


async def test_a_subscription_with_a_card_gets_the_refusal_alone(schema: Schema) -> None:
    stream = await schema.subscribe(
        "subscription($id: ID!) { orderStatus(orderId: $id) { status } }", variable_values={"id": "4242-4242 4242.4242"}
    )
    assert not isinstance(stream, GraphQLError)
    results = [result async for result in stream]
    assert len(results) == 1
    assert_refused_alone(results[0].errors)


async def test_a_request_without_a_card_runs(schema: Schema) -> None:
    result = await schema.execute("query Mine { __typename }", operation_name="Mine")
    assert result.errors is None
    assert result.data == {"__typename": "Query"}


async def test_each_request_of_a_document_gets_its_own_documents_verdict(schema: Schema) -> None:
    """The literals' verdicts are kept per parsed document: every repeat of a refused text is refused
    again, and a clean text sent between them is not judged by another document's verdict."""
    carded = literal_checkout("1", method='"\\u0034242424242424242"')
    nul = literal_checkout("1", method='"pm_\\u0000card"')
    clean = "query Mine { __typename }"
    answers = []
    for query in (carded, clean, nul, carded, clean, nul, clean):
        errors = (await schema.execute(query)).errors or []
        answers.append([e.message for e in errors])
    refused, nothing, nul_refused = [CARD_NUMBER_MESSAGE], [], [NUL_MESSAGE]
    assert answers == [refused, nothing, nul_refused, refused, nothing, nul_refused, nothing]


def test_an_error_whose_message_looks_like_a_card_is_masked() -> None:
    assert should_mask_error(GraphQLError("Int cannot represent non-integer value: '4242 4242 4242 4242'"))
    assert should_mask_error(GraphQLError("boom", original_error=ValueError("x")))
    assert not should_mask_error(GraphQLError("Cannot query field 'x' on type 'Query'."))
    assert not should_mask_error(GraphQLError("Order 0d9c8a63-1c4b-4ec2-9a57-3b5f6f2f9e11 not found."))
