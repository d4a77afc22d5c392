"""schema.extension_hooks: an operation's hooks, looked up once per class, run exactly as Strawberry's own
context managers run them: the same hooks, in the same order, each on its own request's instance."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)

from schema.error_logging import PayQLSchema
from schema.extension_hooks import ExecutingHooks, OperationHooks, ParsingHooks, ValidationHooks

PAIRS: list[tuple[type[ExtensionContextManagerBase], type[ExtensionContextManagerBase]]] = [
    (OperationContextManager, OperationHooks),
    (ValidationContextManager, ValidationHooks),
    (ParsingContextManager, ParsingHooks),
    (ExecutingContextManager, ExecutingHooks),
]
HOOKS = ["on_operation", "on_validate", "on_parse", "on_execute"]


class Recorded(SchemaExtension):
    """Records each hook's start and end on a log shared by the test, with the instance's own name."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log


def _generator_hook(self: Recorded) -> Iterator[None]:
    self.log.append(f"{self.name} in")
    try:
        yield
    except ValueError as error:
        self.log.append(f"{self.name} saw {error}")
        raise
    self.log.append(f"{self.name} out")


async def _async_generator_hook(self: Recorded) -> AsyncIterator[None]:
    self.log.append(f"{self.name} async in")
    try:
        yield
    except ValueError as error:
        self.log.append(f"{self.name} async saw {error}")
        raise
    self.log.append(f"{self.name} async out")


async def _coroutine_hook(self: Recorded) -> None:
    self.log.append(f"{self.name} awaited")


def _plain_hook(self: Recorded) -> None:
    self.log.append(f"{self.name} called")


def _with_every_hook(kind: str, implementation: Any) -> type[Recorded]:
    return type(f"{kind.title()}Hooks", (Recorded,), dict.fromkeys(HOOKS, implementation))


KINDS = {
    "generator": _with_every_hook("generator", _generator_hook),
    "async generator": _with_every_hook("async generator", _async_generator_hook),
    "coroutine": _with_every_hook("coroutine", _coroutine_hook),
    "plain": _with_every_hook("plain", _plain_hook),
}


def _extensions(log: list[str]) -> list[SchemaExtension]:
    """One of each kind, and one that leaves every hook at the default, in a fixed order."""
    return [cls(kind, log) for kind, cls in KINDS.items()] + [Recorded("none", log)]


async def _run(
    manager: type[ExtensionContextManagerBase], extensions: list[SchemaExtension], log: list[str], fail: bool
) -> None:
    context = manager(extensions)
    try:
        async with context:
            log.append("body")
            if fail:
                raise ValueError("boom")
    except ValueError:
        log.append("raised")


@pytest.mark.parametrize(("strawberrys", "ours"), PAIRS, ids=HOOKS)
@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
async def test_each_kind_of_hook_runs_as_strawberrys_own_manager_runs_it(
    strawberrys: type[ExtensionContextManagerBase], ours: type[ExtensionContextManagerBase], fail: bool
) -> None:
    expected: list[str] = []
    await _run(strawberrys, _extensions(expected), expected, fail)
    for _ in range(2):  # the second time from what the first worked out
        seen: list[str] = []
        await _run(ours, _extensions(seen), seen, fail)
        assert seen == expected
    assert expected.index("body") == 4  # every hook but the default one entered before the body


@pytest.mark.parametrize(("strawberrys", "ours"), PAIRS, ids=HOOKS)
def test_synchronous_entry_runs_and_refuses_as_strawberrys_own_manager_does(
    strawberrys: type[ExtensionContextManagerBase], ours: type[ExtensionContextManagerBase]
) -> None:
    for manager in (strawberrys, ours):
        log: list[str] = []
        with manager([KINDS["generator"]("sync", log), KINDS["plain"]("plain", log)]):
            log.append("body")
        assert log == ["sync in", "plain called", "body", "sync out"]
        with (
            pytest.raises(RuntimeError, match="failed to complete synchronously"),
            manager([KINDS["async generator"]("async", [])]),
        ):
            pass


async def test_each_request_runs_the_hook_on_its_own_instance() -> None:
    first: list[str] = []
    second: list[str] = []
    async with (
        OperationHooks([KINDS["generator"]("first", first)]),
        OperationHooks([KINDS["generator"]("second", second)]),
    ):
        pass
    assert first == ["first in", "first out"]
    assert second == ["second in", "second out"]


def test_a_hook_that_cannot_be_called_is_refused_as_strawberry_refuses_it() -> None:
    broken = type("Broken", (SchemaExtension,), {"on_operation": 42})
    for manager in (OperationContextManager, OperationHooks):
        with pytest.raises(ValueError, match="must be callable"):
            manager([broken()])


async def test_payqls_schema_runs_an_operations_hooks_through_them() -> None:
    log: list[str] = []

    class Tracked(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("operation in")
            yield
            log.append("operation out")

        def on_parse(self) -> Iterator[None]:
            log.append("parse")
            yield

        def on_validate(self) -> Iterator[None]:
            log.append("validate")
            yield

        def on_execute(self) -> Iterator[None]:
            log.append("execute in")
            yield
            log.append("execute out")

    @strawberry.type
    class Query:
        @strawberry.field
        def answer(self) -> int:
            log.append("resolved")
            return 42

    schema = PayQLSchema(query=Query, extensions=[Tracked])
    runner = schema.create_extensions_runner(None, [Tracked()])  # type: ignore[arg-type]
    assert isinstance(runner.operation(), OperationHooks)
    result = await schema.execute("{ answer }")
    assert result.errors is None and result.data == {"answer": 42}
    assert log == ["operation in", "parse", "validate", "execute in", "resolved", "execute out", "operation out"]
