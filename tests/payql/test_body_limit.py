"""/graphql refuses a body over PAYQL_GRAPHQL_MAX_BODY_BYTES with 413, declared or chunked, before buffering it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from payql.settings import Settings

QUERY = b'{"query": "{ __typename }", "padding": "'


async def chunked(total: int) -> AsyncIterator[bytes]:
    yield QUERY
    sent = len(QUERY)
    while sent < total:
        yield b"x" * 8192
        sent += 8192
    yield b'"}'


async def test_a_declared_oversized_body_is_refused(http: httpx.AsyncClient, server_settings: Settings) -> None:
    body = QUERY + b"x" * server_settings.graphql_max_body_bytes + b'"}'
    response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_chunked_oversized_body_without_length_is_refused(
    http: httpx.AsyncClient, server_settings: Settings
) -> None:
    response = await http.post(
        "/graphql",
        content=chunked(server_settings.graphql_max_body_bytes + 8192),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_a_body_under_the_cap_is_served(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", content=chunked(4096), headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}
