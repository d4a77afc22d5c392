"""Depth, alias and token limits are on; unexpected errors are masked; CORS follows the allow-list."""

from __future__ import annotations

import pytest

from resolvers import orders
from schema.assembly import build_schema
from schema.query_cost import QueryLimits
from tests.testkit import Shopper

LIMITS = QueryLimits(max_fields=1000, max_cost=50_000, default_list_size=10)


async def test_queries_deeper_than_the_limit_are_refused() -> None:
    # Our own types are not recursive, so the limit is shown on a schema built with a low one.
    schema = build_schema(
        max_depth=3, max_aliases=10, max_tokens=1000, query_limits=LIMITS, introspection=True, suggestions=True
    )
    shallow = await schema.execute("{ products { id } }")
    assert shallow.errors is None or "depth" not in str(shallow.errors)
    deep = await schema.execute("{ orders { edges { node { payments { id } } } } }")
    assert deep.errors and "exceeds maximum operation depth" in deep.errors[0].message


async def test_production_schema_refuses_introspection() -> None:
    schema = build_schema(
        max_depth=12, max_aliases=10, max_tokens=1000, query_limits=LIMITS, introspection=False, suggestions=True
    )
    result = await schema.execute("{ __schema { types { name } } }")
    assert result.errors and "introspection" in result.errors[0].message.lower()


async def test_alias_floods_are_refused(shopper: Shopper) -> None:
    query = "{ " + " ".join(f"a{i}: products {{ id }}" for i in range(40)) + " }"
    body = await shopper.gql(query)
    assert body.get("data") is None and "aliases" in body["errors"][0]["message"]


async def test_token_floods_are_refused(shopper: Shopper) -> None:
    query = "{ products { " + " ".join(["id"] * 3000) + " } }"
    body = await shopper.gql(query)
    assert body.get("data") is None and "token" in body["errors"][0]["message"].lower()


async def test_unexpected_errors_are_masked(shopper: Shopper, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken() -> list:  # type: ignore[type-arg]
        raise RuntimeError("database password is hunter2 at /srv/payql/db.py line 12")

    monkeypatch.setattr(orders, "list_products", broken)
    body = await shopper.gql("{ products { id } }")
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "hunter2" not in str(body) and "Traceback" not in str(body)


async def test_cors_allows_only_listed_origins(shopper: Shopper) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    allowed = await shopper.http.options("/graphql", headers={"origin": "https://shop.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    refused = await shopper.http.options("/graphql", headers={"origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers


async def test_health_and_readiness(shopper: Shopper) -> None:
    assert (await shopper.http.get("/healthz")).json() == {"status": "ok"}
    ready = await shopper.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
