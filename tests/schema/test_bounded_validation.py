"""Validation stops early with a clear code, and production answers a mistyped field, argument or
enum value without suggesting the right one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import strawberry
from pydantic import SecretStr
from starlette.routing import Route

from payql.app import create_app
from payql.body_limit import BodySizeLimit
from payql.graphql_view import PayQLGraphQL
from payql.settings import Settings
from schema.assembly import build_schema
from schema.query_cost import QUERY_TOO_COMPLEX, QueryLimits
from tests.testkit import TEST_DATA_INDEX_KEY, TEST_DATA_KEY

LIMITS = QueryLimits(max_fields=1000, max_cost=50_000, default_list_size=10)

MISTAKES: list[tuple[str, dict[str, Any]]] = [
    ("{ ordr { id } }", {}),  # "Cannot query field 'ordr' … Did you mean 'order'?"
    ("{ orders(frist: 5) { edges { cursor } } }", {}),  # unknown argument
    ("{ orders(status: PAIDD) { edges { cursor } } }", {}),  # enum literal
    ("query($s: OrderStatus) { orders(status: $s) { edges { cursor } } }", {"s": "PAIDD"}),  # enum variable
]


def schema_with(*, suggestions: bool) -> strawberry.Schema:
    return build_schema(
        max_depth=12,
        max_aliases=15,
        max_tokens=2000,
        query_limits=LIMITS,
        introspection=suggestions,
        suggestions=suggestions,
    )


async def messages(schema: strawberry.Schema, query: str, variables: dict[str, Any]) -> str:
    result = await schema.execute(query, variable_values=variables)
    assert result.errors, query
    return " ".join(error.message for error in result.errors)


@pytest.mark.parametrize(("query", "variables"), MISTAKES)
async def test_development_suggests_the_right_name(query: str, variables: dict[str, Any]) -> None:
    assert "Did you mean" in await messages(schema_with(suggestions=True), query, variables)


@pytest.mark.parametrize(("query", "variables"), MISTAKES)
async def test_production_does_not_suggest(query: str, variables: dict[str, Any]) -> None:
    text = await messages(schema_with(suggestions=False), query, variables)
    assert "Did you mean" not in text and "PAID'" not in text and "'order'" not in text, text


async def test_the_production_app_is_built_without_suggestions() -> None:
    settings = Settings(
        environment="production",
        redis_url="redis://cache.internal:6379/0",
        database_url="postgres://payql@127.0.0.1:1/never-opened",
        jwt_secret=SecretStr("a-production-secret-of-more-than-32-characters"),
        gateways=["stripe"],
        gateway_settings={"stripe": {"secret_key": SecretStr("sk_test_unused"), "webhook_secrets": ["whsec_unused"]}},
        smtp_host="127.0.0.1",
        data_keys=TEST_DATA_KEY,
        data_index_key=TEST_DATA_INDEX_KEY,
    )
    graphql_route = next(r for r in create_app(settings).routes if isinstance(r, Route) and r.path == "/graphql")
    assert isinstance(graphql_route.endpoint, BodySizeLimit)
    view = graphql_route.endpoint.app
    assert isinstance(view, PayQLGraphQL)
    assert "Did you mean" not in await messages(view.schema, "{ ordr { id } }", {})  # type: ignore[arg-type]


@pytest.mark.timeout(60)
async def test_many_copies_of_one_field_stop_validation_early_with_a_clear_code() -> None:
    # Checking that same-named fields merge compares every pair: 100 copies of `products { id }`
    # (within the token and field limits) spend about 25,000 units, within graphql-core's own
    # budget of 500,000 (seconds of work at 490 copies) but over ours.
    schema = build_schema(
        max_depth=12, max_aliases=15, max_tokens=2000, query_limits=LIMITS, introspection=True, suggestions=True
    )
    result = await asyncio.wait_for(schema.execute("{ " + "products { id } " * 100 + "}"), 30)
    assert result.errors and [error.extensions for error in result.errors] == [{"code": QUERY_TOO_COMPLEX}]
    assert "too much work" in result.errors[0].message
