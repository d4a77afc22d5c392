"""An expected client error is logged in one INFO line without a traceback; an unexpected one keeps
its traceback at ERROR (and the client still only sees "Unexpected error.")."""

from __future__ import annotations

import logging

import httpx
import pytest

from resolvers import orders


def graphql_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("strawberry", "payql.graphql"))]


@pytest.mark.parametrize(
    "query",
    [
        '{ order(id: "3b0c5d0e-0000-4000-8000-000000000000") { id } }',  # anonymous: UNAUTHENTICATED
        "{ products { nope } }",  # validation
        "{ products { id ",  # syntax
    ],
)
async def test_an_anonymous_bad_request_is_one_info_line(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await http.post("/graphql", json={"query": query})
    assert answer.json()["errors"]
    records = graphql_records(caplog)
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert records[0].exc_info is None and records[0].exc_text is None
    assert "\n" not in records[0].getMessage()


async def test_an_unexpected_error_keeps_its_traceback(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise RuntimeError("catalog exploded")

    monkeypatch.setattr(orders, "list_products", broken)
    answer = await http.post("/graphql", json={"query": "{ products { id } }"})
    assert answer.json()["errors"][0]["message"] == "Unexpected error."
    errors = [r for r in graphql_records(caplog) if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], RuntimeError)
