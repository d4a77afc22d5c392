"""Shutdown waits for the mutations still running (whose callers may be gone) before it closes the
database, for PAYQL_SHUTDOWN_GRACE_SECONDS at most; what is left after that is cancelled."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from payql import app as app_module
from payql.settings import Settings, SettingsError, load_settings
from schema.run_to_completion import RunToCompletion, finish_mutations, running_mutations
from tests.testkit import TEST_DATA_INDEX_KEY, TEST_DATA_KEY, TEST_JWT_SECRET, TEST_WEBHOOK_SECRET

BOUND_SECONDS = 10


@pytest.fixture
def empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYQL_"):
            monkeypatch.delenv(name)


def test_the_grace_defaults_to_30_seconds_and_comes_from_the_environment(
    empty_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().shutdown_grace_seconds == 30

    monkeypatch.setenv("PAYQL_SHUTDOWN_GRACE_SECONDS", "4.5")
    assert load_settings().shutdown_grace_seconds == 4.5

    monkeypatch.setenv("PAYQL_SHUTDOWN_GRACE_SECONDS", "-1")
    with pytest.raises(SettingsError, match="PAYQL_SHUTDOWN_GRACE_SECONDS"):
        load_settings()


def start_mutation(body: Any) -> asyncio.Task[Any]:
    """A mutation as RunToCompletion runs it, for a caller that then goes away."""

    async def resolver(_source: Any, _info: Any) -> Any:
        return await body()

    return asyncio.create_task(RunToCompletion().resolve_async(resolver, None, None))  # type: ignore[arg-type]


async def test_shutdown_cancels_what_is_still_running_after_the_grace() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []

    async def stuck() -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append("stuck")
            raise

    caller = start_mutation(stuck)
    await asyncio.sleep(0)  # one loop turn: the mutation starts
    caller.cancel()

    assert await asyncio.wait_for(finish_mutations(0.05), BOUND_SECONDS) == 1

    assert cancelled == ["stuck"]
    assert running_mutations() == 0


async def test_the_lifespan_closes_the_database_only_after_the_running_mutations_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    shutting_down = asyncio.Event()

    async def checkout() -> None:
        await shutting_down.wait()
        # Many loop turns: a shutdown that did not wait would close the database meanwhile.
        for _ in range(100):
            await asyncio.sleep(0)
        order.append("mutation ended")

    class FakeServices:
        async def aclose(self) -> None:
            order.append("services closed")

    async def open_database(*_: Any) -> None:
        order.append("database opened")

    async def build_services(*_: Any, **__: Any) -> FakeServices:
        return FakeServices()

    async def close_database() -> None:
        order.append("database closed")

    monkeypatch.setattr(app_module, "open_database", open_database)
    monkeypatch.setattr(app_module, "build_services", build_services)
    monkeypatch.setattr(app_module, "close_database", close_database)
    settings = Settings(
        environment="development",
        jwt_secret=TEST_JWT_SECRET,
        data_keys=TEST_DATA_KEY,
        data_index_key=TEST_DATA_INDEX_KEY,
        gateway_settings={
            "sandbox": {
                "webhook_secrets": [TEST_WEBHOOK_SECRET],
                "deliver_webhooks": False,
                "state_path": tmp_path / "sandbox.sqlite3",
            }
        },
        database_url=f"sqlite://{tmp_path / 'unused.sqlite3'}",
        shutdown_grace_seconds=BOUND_SECONDS,
    )
    app = app_module.create_app(settings)

    async with app.router.lifespan_context(app):
        caller = start_mutation(checkout)
        await asyncio.sleep(0)  # one loop turn: the mutation starts
        caller.cancel()  # the client went away
        shutting_down.set()

    assert order == ["database opened", "mutation ended", "services closed", "database closed"]
