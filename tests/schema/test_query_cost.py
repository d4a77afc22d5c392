"""Validation work is bounded whatever the document: fragments are measured once each, expanded
documents and costly ones are refused before the validation rules walk them, over HTTP and over
the websocket, while the server keeps answering."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, parse

from schema.assembly import build_schema
from schema.query_cost import QUERY_TOO_COMPLEX, QueryLimits, measure
from tests.wsclient import graphql_ws

UNBOUNDED = QueryLimits(max_fields=10**9, max_cost=10**12, default_list_size=10)
# The server's own defaults (payql/settings.py).
DEFAULTS = QueryLimits(max_fields=1000, max_cost=50_000, default_list_size=10)


def doubling(levels: int, *, operation: str = "query", on: str = "Query", leaf: str = "__typename") -> str:
    """834 bytes at 20 levels: F1 spreads F0 twice, F2 spreads F1 twice, … so F<n> is 2**n leaves."""
    fragments = [f"fragment F0 on {on} {{ {leaf} }}"]
    fragments += [f"fragment F{i} on {on} {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)]
    return f"{operation} {{ ...F{levels} }} " + " ".join(fragments)


def graphql_schema(limits: QueryLimits = DEFAULTS, *, suggestions: bool = True) -> GraphQLSchema:
    return build_schema(
        max_depth=12, max_aliases=15, max_tokens=2000, query_limits=limits, introspection=True, suggestions=suggestions
    )._schema


def cost_of(query: str, variables: dict[str, Any] | None = None) -> int:
    return measure(graphql_schema(), parse(query), variables or {}, UNBOUNDED).cost


def assert_too_complex(body: dict[str, Any]) -> None:
    assert body.get("data") is None, body
    assert [error["extensions"]["code"] for error in body["errors"]] == [QUERY_TOO_COMPLEX], body


@pytest.mark.timeout(60)
def test_fragments_are_counted_once_each_not_once_per_spread() -> None:
    schema = graphql_schema()
    assert measure(schema, parse(doubling(10)), {}, UNBOUNDED).fields == 2**10
    # 2**60 leaves, counted in sixty steps; the count stops just above the limit.
    assert measure(schema, parse(doubling(60)), {}, DEFAULTS).fields == DEFAULTS.max_fields + 1


def test_lists_weigh_by_their_size_argument_or_the_default() -> None:
    assert cost_of("{ products { id name } }") == 1 + 10 * 2
    assert cost_of('{ auditLog(entityId: "x", limit: 3) { id } }') == 1 + 3
    # A connection counts its page once: edges come once per order, not ten times more.
    assert cost_of("{ orders(first: 5) { edges { node { id } } } }") == 1 + 5 * (1 + 1 * (1 + 1))
    assert cost_of("{ orders { edges { node { id } } } }") == 1 + 20 * 3  # the schema's default first
    sized_by_variable = "query($n: Int = 7) { orders(first: $n) { edges { node { id } } } }"
    assert cost_of(sized_by_variable, {"n": 50}) == 1 + 50 * 3
    assert cost_of(sized_by_variable) == 1 + 7 * 3
    assert cost_of("{ orders(first: 2) { edges { node { lineItems { productName } } } } }") == 1 + 2 * (
        1 + (1 + (1 + 10 * 1))
    )


@pytest.mark.timeout(60)
async def test_a_forty_level_fragment_doubling_is_refused_before_validation() -> None:
    schema = build_schema(
        max_depth=12, max_aliases=15, max_tokens=2000, query_limits=DEFAULTS, introspection=True, suggestions=True
    )
    result = await asyncio.wait_for(schema.execute(doubling(40)), 30)
    assert result.errors and [error.extensions for error in result.errors] == [{"code": QUERY_TOO_COMPLEX}]
    assert "fragments are expanded" in result.errors[0].message


@pytest.mark.timeout(60)
async def test_fragment_cycles_are_refused_before_the_rules_walk_every_path() -> None:
    # Ten fragments that each spread the nine others: the depth and alias rules would each walk
    # all 9! paths through them (half a minute here) before graphql-core reports the cycle.
    names = [f"C{i}" for i in range(10)]
    fragments = " ".join(
        f"fragment {name} on Query {{ __typename {' '.join(f'...{other}' for other in names if other != name)} }}"
        for name in names
    )
    schema = build_schema(
        max_depth=12, max_aliases=15, max_tokens=2000, query_limits=DEFAULTS, introspection=True, suggestions=True
    )
    result = await asyncio.wait_for(schema.execute(f"{{ ...C0 }} {fragments}"), 30)
    assert result.errors and [error.extensions for error in result.errors] == [{"code": QUERY_TOO_COMPLEX}]
    assert "spreads itself" in result.errors[0].message


@pytest.mark.timeout(120)
async def test_an_anonymous_doubling_is_refused_while_healthz_keeps_answering(http: httpx.AsyncClient) -> None:
    query = http.post("/graphql", json={"query": doubling(40)})
    health = http.get("/healthz")
    refused, healthy = await asyncio.wait_for(asyncio.gather(query, health), 60)
    assert refused.status_code == 200
    assert_too_complex(refused.json())
    assert healthy.status_code == 200 and healthy.json() == {"status": "ok"}


@pytest.mark.timeout(120)
async def test_the_doubling_is_refused_over_the_websocket_as_a_query_and_as_a_subscription(server: str) -> None:
    live = doubling(40, operation="subscription", on="LiveUpdates", leaf='orderStatus(orderId: "1") { id }')
    async with graphql_ws(server, token=None) as ws:
        for document in (doubling(40), live):
            messages = await asyncio.wait_for(_all(ws.subscribe(document, {})), 60)
            assert [message["type"] for message in messages] == ["error"], messages
            assert [error["extensions"]["code"] for error in messages[0]["payload"]] == [QUERY_TOO_COMPLEX]
    # The same server still answers plain HTTP afterwards.
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_costly_queries_are_refused_and_small_pages_are_not(http: httpx.AsyncClient) -> None:
    costly = await http.post("/graphql", json={"query": '{ auditLog(entityId: "1", limit: 100000) { id } }'})
    assert_too_complex(costly.json())
    page = "query($n: Int!) { orders(first: $n) { edges { node { id lineItems { productName } } } } }"
    too_big = await http.post("/graphql", json={"query": page, "variables": {"n": 100_000}})
    assert_too_complex(too_big.json())
    small = (await http.post("/graphql", json={"query": page, "variables": {"n": 5}})).json()
    # Anonymous callers are refused by the resolver, not by the cost limit.
    assert all(error.get("extensions", {}).get("code") != QUERY_TOO_COMPLEX for error in small["errors"]), small
    assert "cost" not in str(small)


async def _all(stream: Any) -> list[dict[str, Any]]:
    return [message async for message in stream]
