"""How much the parser and validation caches save on a small mutation's parse + validate path.

Run: .venv/bin/python -m bench.graphql_caches
Measures strawberry's own pipeline up to (not including) resolvers: the query is a checkout
mutation whose input fails fast (no database), executed repeatedly with and without the caches.
Timing lives here, never in the test suite.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from typing import Any

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.analytics import AnalyticsQuery
from schema.assembly import build_schema
from schema.extensions import RefuseCardNumbers
from schema.mutations import Mutation
from schema.queries import Query
from schema.query_cost import QueryLimits
from schema.scalars import SCALAR_MAP

QUERY = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  order { id status total { amount currency decimal } lineItems { productName quantity } }
  payment { id status } nextAction { type redirectUrl } userErrors { code field message } } }"""
# An invalid variable makes execution stop at variable coercion: parse + validate dominate.
VARIABLES: dict[str, Any] = {"input": {"items": [], "paymentMethod": "pm_card_visa", "idempotencyKey": 7}}
ROUNDS, CALLS = 5, 400


def schema_without_caches() -> strawberry.Schema:
    return strawberry.Schema(
        query=merge_types("Query", (Query, AnalyticsQuery)),
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[RefuseCardNumbers],
    )


def schema_with_caches_only() -> strawberry.Schema:
    return strawberry.Schema(
        query=merge_types("Query", (Query, AnalyticsQuery)),
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024), RefuseCardNumbers],
    )


async def per_call_us(schema: strawberry.Schema) -> float:
    # The variable error is the expected outcome; silence strawberry's error log for the run.
    logging.getLogger("strawberry.execution").disabled = True
    await schema.execute(QUERY, variable_values=VARIABLES)
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            await schema.execute(QUERY, variable_values=VARIABLES)
        samples.append((time.perf_counter() - start) / CALLS * 1e6)
    return statistics.median(samples)


async def main() -> None:
    results = {
        "no caches": await per_call_us(schema_without_caches()),
        "parser + validation caches": await per_call_us(schema_with_caches_only()),
        "PayQL schema (caches + limits + masking)": await per_call_us(
            build_schema(
                max_depth=12,
                max_aliases=15,
                max_tokens=2000,
                query_limits=QueryLimits(max_fields=1000, max_cost=50_000, default_list_size=10),
                introspection=True,
                suggestions=True,
            )
        ),
    }
    base = results["no caches"]
    for name, micros in results.items():
        print(f"{name:45s} {micros:8.1f} µs/call  ({base / micros:4.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
