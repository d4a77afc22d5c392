"""The runner of every operation's extension hooks: those of the operation, its parsing, validation and
execution looked up once per extension class (`schema.extension_hooks`), and what Strawberry does for
each streamed result (every live update of every subscriber), without asking the extensions that have
nothing to do then.

Strawberry's own runner looks up every extension's `on_stream_result` and `get_results` hook for
each result, and `MaskErrors` checks each result against a runtime Protocol: with a dozen
extensions, that cost more per subscriber than sending the frame. The hooks that run, and what they
do, are Strawberry's; the extensions left at the default hook are skipped, and so is `MaskErrors`
for a result without errors (it has nothing to mask there). Nothing here changes a result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.utils.await_maybe import await_maybe

from schema.extension_hooks import ExecutingHooks, OperationHooks, ParsingHooks, ValidationHooks

if TYPE_CHECKING:
    from strawberry.types import ExecutionContext, StreamExecutionResult


_IMPLEMENTS: dict[tuple[type[SchemaExtension], str], bool] = {}


def _implements(extension: type[SchemaExtension], hook: str) -> bool:
    """Whether `extension` overrides `hook` (a class's hooks never change: asked once per class)."""
    known = _IMPLEMENTS.get((extension, hook))
    if known is None:
        known = _IMPLEMENTS[(extension, hook)] = getattr(extension, hook) is not getattr(SchemaExtension, hook)
    return known


class HookedOnlyRunner(SchemaExtensionsRunner):
    def operation(self) -> OperationHooks:
        return OperationHooks(self.extensions)

    def validation(self) -> ValidationHooks:
        return ValidationHooks(self.extensions)

    def parsing(self) -> ParsingHooks:
        return ParsingHooks(self.extensions)

    def executing(self) -> ExecutingHooks:
        return ExecutingHooks(self.extensions)

    def on_stream_result(self, result: StreamExecutionResult) -> StreamResultContextManager:
        has_errors = bool(getattr(result, "errors", None))
        hooked = [
            extension
            for extension in self.extensions
            if _implements(type(extension), "on_stream_result")
            and (has_errors or not isinstance(extension, MaskErrorsWhenAny))
        ]
        return StreamResultContextManager(hooked, result) if hooked else _NoHooks(result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self.extensions:
            if _implements(type(extension), "get_results"):
                data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data


class _NoHooks(StreamResultContextManager):
    """No extension has anything to do with this result: entering and leaving do nothing."""

    def __init__(self, result: StreamExecutionResult) -> None:
        self.result = result
        self.hooks = []

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


class MaskErrorsWhenAny(MaskErrors):
    """`MaskErrors`, which looks at a result's errors only when it has some: the runner does not
    even call its hook for a streamed result without errors. Its end-of-operation pass then looks at
    the last result again, which changes nothing: a result with errors went through the hook."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)
