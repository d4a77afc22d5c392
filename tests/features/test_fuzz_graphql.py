"""Fuzzing `/graphql`: schemathesis over every query and mutation field, hypothesis over the HTTP envelope.

Schemathesis sends every query and mutation field with valid and invalid arguments, as an anonymous
caller, a customer and staff; ID arguments are often the ids of real objects the fuzzing customer
owns (an order, its payment, a subscription, a dispute...), so the fuzzer gets past "not found" into
the use cases. Hypothesis sends random JSON envelopes (query, variables, operationName, extensions
of any type). No answer may be a 5xx, and none may take longer than the hang bound (a timeout is a
failure), and neither may an answer carry the masked "Unexpected error." that an exception in our code
becomes: that is a 500 wearing a 200.

The budget is fixed and the generation derandomized, so a CI run is fast and repeatable. Schemathesis
draws from the schema the server itself introspects, so a new field is fuzzed without touching this
file. The fuzzing runs in a worker thread with a blocking client, because the server under test runs
in the test's own event loop and must keep serving while the fuzzer waits for an answer.

The classes of input this fuzzer found to give a 5xx (#11: bodies that are not JSON objects, not
UTF-8 or nested too deep; NUL characters on PostgreSQL) each keep a targeted test at the end of this
module, so a regression names its class.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.graphql import nodes
from schemathesis.schemas import APIOperation
from schemathesis.specs.graphql.schemas import GraphQLSchema

from db.models import Dispute, Payment
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.features.subscriptions.kit import recurring_price, subscribe
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, settle, token_for

EXAMPLES_PER_MODE = 5
ENVELOPE_EXAMPLES = 150
HANG_BOUND_SECONDS = 10.0
# What an exception in our code becomes once masked: a 200 on the wire, but a server error all the same.
MASKED_ERROR = "Unexpected error."
FUZZ_CUSTOMER = "fuzz-customer"
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "customer": token_for(FUZZ_CUSTOMER),
    "staff": token_for("fuzz-staff", admin=True),
}
# Which real ids schemathesis puts, half of the time, in which ID arguments (the rest stay random).
ID_ARGUMENTS: dict[str, list[str]] = {
    "orders": ["orderId", "input.orderId"],
    "payments": ["paymentId", "input.paymentId"],
    "subscriptions": ["subscriptionId", "input.subscriptionId"],
    "prices": ["priceId", "input.priceId", "input.items[*].priceId"],
    "products": ["productId"],
    "disputes": ["disputeId", "input.disputeId"],
    "any": ["id", "entityId"],
}

# Amounts are integers of any size: the server must refuse what does not fit, never crash on it.
schemathesis.graphql.scalar("MinorUnits", st.integers(min_value=-(2**70), max_value=2**70).map(nodes.Int))


@dataclass(frozen=True)
class Finding:
    field: str
    mode: str
    query: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.field} ({self.mode}): {self.outcome}\n    {self.query}"


def load_schema(base_url: str, ids: dict[str, list[str]]) -> GraphQLSchema:
    everything = {**ids, "any": [one for kind in ids.values() for one in kind]}
    config = SchemathesisConfig.from_dict(
        {
            # NUL characters are a known finding, kept apart in `test_nul_characters_in_string_arguments...`.
            "generation": {"allow-x00": False},
            "dictionaries": {kind: {"values": values} for kind, values in everything.items()},
            "parameters": {
                f"*.*.{argument}": {"dictionary": kind, "probability": 0.5}
                for kind, arguments in ID_ARGUMENTS.items()
                for argument in arguments
            },
        }
    )
    return schemathesis.graphql.from_url(f"{base_url}/graphql", config=config, timeout=HANG_BOUND_SECONDS)


def fuzz_field(
    client: httpx.Client, operation: APIOperation, mode: GenerationMode, examples: int, findings: list[Finding]
) -> int:
    """Send `examples` cases of one field in one mode; record every 5xx, masked error or hang; return the count."""
    sent = 0

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: schemathesis.Case) -> None:
        nonlocal sent
        query = str(case.body)
        sent += 1
        try:
            response = client.post("/graphql", json={"query": query})
        except httpx.TimeoutException:
            findings.append(Finding(operation.label, mode.value, query, f"no answer within {HANG_BOUND_SECONDS} s"))
            return
        if response.status_code >= 500 or MASKED_ERROR in response.text:
            outcome = f"{response.status_code} {response.text[:200]}"
            findings.append(Finding(operation.label, mode.value, query, outcome))

    send()
    return sent


def fuzz(base_url: str, token: str | None, ids: dict[str, list[str]], examples: int) -> tuple[int, list[Finding]]:
    """Fuzz every query and mutation field in both modes; return how many cases were sent and the findings."""
    schema = load_schema(base_url, ids)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    findings: list[Finding] = []
    sent = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=HANG_BOUND_SECONDS) as client:
        for result in schema.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                sent += fuzz_field(client, result.ok(), mode, examples, findings)
    return sent, findings


@pytest.fixture(scope="module")
async def real_ids(http: httpx.AsyncClient, services: Services, sandbox: SandboxProcessor) -> dict[str, list[str]]:
    """Ids of objects the fuzzing customer owns: a paid and disputed order, its payment, a subscription
    with its invoice, and the prices and products behind them."""
    customer = Shopper(http, FUZZ_CUSTOMER)
    price = await make_price(3_000)
    paid = (await customer.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    plan = await recurring_price(1_000)
    other_plan = await recurring_price(2_000)
    subscribed = await subscribe(customer, plan)
    await settle(services)
    payment = await Payment.get(id=paid["payment"]["id"])
    opened = await sandbox.create_dispute(payment.gateway_reference or "", "fraudulent")
    await settle(services)
    dispute = await Dispute.get(gateway="sandbox", gateway_reference=opened.id)
    return {
        "orders": [paid["order"]["id"]],
        "payments": [str(payment.id)],
        "subscriptions": [subscribed["subscription"]["id"]],
        "prices": [str(price.id), str(plan.id), str(other_plan.id)],
        "products": [str(price.product_id), str(plan.product_id)],
        "disputes": [str(dispute.id)],
        "invoices": [subscribed["latestInvoice"]["id"]],
    }


@pytest.mark.parametrize("role", list(ROLES))
async def test_no_generated_request_gets_a_server_error_or_hangs(
    server: str, services: Services, real_ids: dict[str, list[str]], role: str
) -> None:
    sent, findings = await asyncio.to_thread(fuzz, server, ROLES[role], real_ids, EXAMPLES_PER_MODE)
    await settle(services, timeout=60)
    assert sent > 0
    assert not findings, "\n".join(str(finding) for finding in findings)


# --- the HTTP envelope, with hypothesis ------------------------------------------------------------------------

QUERIES = [
    "{ products { id name prices { id } } }",
    "{ gateways }",
    "query($id: ID!) { order(id: $id) { id status } }",
    "query Orders($first: Int!) { orders(first: $first) { edges { node { id } } } }",
    "mutation($input: CheckoutInput!) { checkout(input: $input) { userErrors { code } } }",
]
# JSON nested a few levels at most: deeper nesting is a known finding kept apart below.
texts = st.text(st.characters(codec="utf-8"), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "query": st.one_of(st.sampled_from(QUERIES), texts, json_values),
        "variables": st.one_of(
            st.dictionaries(st.sampled_from(["id", "first", "input", "x"]), json_values), json_values
        ),
        "operationName": st.one_of(st.none(), st.just("Orders"), texts, json_values),
        "extensions": json_values,
    },
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/graphql-response+json",
    "text/plain",
]


@dataclass
class EnvelopeFuzzer:
    """Posts envelopes from the worker thread; records every 5xx or hang."""

    client: httpx.Client
    sent: int = 0
    findings: list[str] = field(default_factory=list)

    def send(self, method: str, **request: Any) -> None:
        self.sent += 1
        try:
            response = self.client.request(method, "/graphql", **request)
        except httpx.TimeoutException:
            self.findings.append(f"no answer within {HANG_BOUND_SECONDS} s to {method} {request!r:.300}")
            return
        if response.status_code >= 500 or MASKED_ERROR in response.text:
            self.findings.append(f"{response.status_code} {response.text[:120]} for {method} {request!r:.300}")


ENVELOPE_SETTINGS = settings(
    max_examples=ENVELOPE_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


async def fuzz_envelopes(server: str, role: str, test: Callable[[EnvelopeFuzzer], None], examples: int) -> None:
    token = ROLES[role]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=server, headers=headers, timeout=HANG_BOUND_SECONDS) as client:
        fuzzer = EnvelopeFuzzer(client)
        await asyncio.to_thread(test, fuzzer)
    assert fuzzer.sent >= examples
    assert not fuzzer.findings, "\n".join(fuzzer.findings)


async def test_random_envelopes_get_no_server_error_or_hang(server: str) -> None:
    def test(fuzzer: EnvelopeFuzzer) -> None:
        @ENVELOPE_SETTINGS
        @given(envelope=envelopes, content_type=st.sampled_from(CONTENT_TYPES), method=st.sampled_from(["POST", "GET"]))
        def send(envelope: dict[str, Any], content_type: str, method: str) -> None:
            if method == "GET":
                params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in envelope.items()}
                fuzzer.send("GET", params=params)
            else:
                body = json.dumps(envelope, ensure_ascii=False).encode()
                fuzzer.send("POST", content=body, headers={"content-type": content_type})

        send()

    await fuzz_envelopes(server, "customer", test, ENVELOPE_EXAMPLES)


# --- findings of this fuzzer (#11), fixed: one regression test per class of input ------------------------------


async def test_json_bodies_that_are_not_objects_get_no_server_error(server: str) -> None:
    def test(fuzzer: EnvelopeFuzzer) -> None:
        @settings(ENVELOPE_SETTINGS, max_examples=10)
        @given(value=st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts)
        def send(value: Any) -> None:
            fuzzer.send("POST", content=json.dumps(value).encode(), headers={"content-type": "application/json"})

        send()

    await fuzz_envelopes(server, "customer", test, 10)


async def test_bodies_that_are_not_utf8_get_no_server_error(server: str) -> None:
    def test(fuzzer: EnvelopeFuzzer) -> None:
        @settings(ENVELOPE_SETTINGS, max_examples=10)
        @given(query=st.sampled_from(QUERIES), junk=st.binary(min_size=1, max_size=8).map(lambda b: b"\xff" + b))
        def send(query: str, junk: bytes) -> None:
            body = b'{"query": "' + query.encode() + junk + b'"}'
            fuzzer.send("POST", content=body, headers={"content-type": "application/json"})

        send()

    await fuzz_envelopes(server, "customer", test, 10)


async def test_deeply_nested_json_bodies_get_no_server_error(server: str) -> None:
    def test(fuzzer: EnvelopeFuzzer) -> None:
        @settings(ENVELOPE_SETTINGS, max_examples=10)
        @given(depth=st.integers(1_000, 100_000), where=st.sampled_from(["variables", "extensions"]))
        def send(depth: int, where: str) -> None:
            nested = b'{"a":' * depth + b"1" + b"}" * depth
            body = b'{"query": "{ gateways }", "' + where.encode() + b'": ' + nested + b"}"
            fuzzer.send("POST", content=body, headers={"content-type": "application/json"})

        send()

    await fuzz_envelopes(server, "customer", test, 10)


NUL_ARGUMENTS: dict[str, tuple[str, Callable[[dict[str, list[str]], str], dict[str, Any]]]] = {
    "checkout.idempotencyKey": (
        "mutation($input: CheckoutInput!) { checkout(input: $input) { userErrors { code } } }",
        lambda ids, text: {
            "input": {"items": [{"priceId": ids["prices"][0]}], "paymentMethod": "pm_card_visa", "idempotencyKey": text}
        },
    ),
    "refundPayment.reason": (
        "mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { userErrors { code } } }",
        lambda ids, text: {
            "input": {"paymentId": ids["payments"][0], "amount": 1, "reason": text, "idempotencyKey": text}
        },
    ),
    "recordFulfillment.carrier": (
        "mutation($input: RecordFulfillmentInput!) { recordFulfillment(input: $input) { userErrors { code } } }",
        lambda ids, text: {
            "input": {"orderId": ids["orders"][0], "carrier": text, "trackingNumber": "JD01", "idempotencyKey": "k"}
        },
    ),
    "addDisputeNote.body": (
        "mutation($input: AddDisputeNoteInput!) { addDisputeNote(input: $input) { userErrors { code } } }",
        lambda ids, text: {"input": {"disputeId": ids["disputes"][0], "body": text}},
    ),
}


async def test_nul_characters_in_string_arguments_get_no_server_error(
    server: str, services: Services, real_ids: dict[str, list[str]]
) -> None:
    def test(fuzzer: EnvelopeFuzzer) -> None:
        @settings(ENVELOPE_SETTINGS, max_examples=12)
        @given(
            argument=st.sampled_from(sorted(NUL_ARGUMENTS)),
            text=st.tuples(texts, texts).map("\x00".join),
        )
        def send(argument: str, text: str) -> None:
            document, variables = NUL_ARGUMENTS[argument]
            fuzzer.send("POST", json={"query": document, "variables": variables(real_ids, text)})

        send()

    await fuzz_envelopes(server, "staff", test, 12)
    await settle(services, timeout=60)
